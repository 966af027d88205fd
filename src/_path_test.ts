import assert from "node:assert/strict";
import nodePath from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as ours from "./_path.ts";

const posixPaths = [
  "",
  ".",
  "..",
  "/",
  "//",
  "///",
  "a",
  "a/",
  "/a",
  "/a/",
  "a/b",
  "a//b",
  "a/./b",
  "a/../b",
  "../a",
  "../../a/b",
  "/..",
  "/../a",
  "a/b/..",
  "a/b/../..",
  "a/b/../../..",
  "./",
  "./a",
  "/a/b/c/",
  "/a/b//c//",
  "foo/bar/baz.txt",
  ".flowstate/state.db",
  "/tmp/x y/z%20",
  "a/.b",
  ".hidden",
  "a/..b/c",
  "a/b./",
  "...",
  "/a/b/c/../../d",
  "~/x",
  "a\\b",
  "/a/./",
];
const winPaths = [
  "",
  ".",
  "..",
  "\\",
  "/",
  "C:",
  "C:\\",
  "C:/",
  "c:\\a",
  "C:\\a\\",
  "C:a",
  "C:a\\b",
  "C:\\a\\..\\b",
  "\\\\server\\share",
  "\\\\server\\share\\",
  "\\\\server\\share\\a\\b",
  "//server/share/a",
  "\\\\?\\C:\\a",
  "a\\b",
  "a/b",
  "a\\..\\..\\b",
  "\\a\\b",
  "D:\\x\\y\\..\\z",
  "C:\\a\\b.txt",
  "C:\\a\\.\\",
  "\\\\?\\C:\\a\\.\\",
  "\\\\?\\x",
  "\\\\.\\",
  "a\\\\b",
  "\\\\server",
  "\\\\\\a",
  "C:\\..",
  "..\\a",
  "\\\\.\\x\\a",
  "\\\\?\\x\\a\\..",
  "C:\\a\\.\\",
];

function each(fn: (a: string, b: string) => void, paths: string[]) {
  for (const a of paths) for (const b of paths) fn(a, b);
}

Deno.test("posix helpers match node:path.posix", () => {
  for (const p of posixPaths) {
    assert.equal(ours.posix.normalize(p), nodePath.posix.normalize(p), `normalize ${p}`);
    assert.equal(ours.posix.isAbsolute(p), nodePath.posix.isAbsolute(p), `isAbsolute ${p}`);
    assert.equal(ours.posix.dirname(p), nodePath.posix.dirname(p), `dirname ${p}`);
    assert.equal(ours.posix.basename(p), nodePath.posix.basename(p), `basename ${p}`);
    for (const ext of [".txt", ".db", "c", "a", p]) {
      assert.equal(
        ours.posix.basename(p, ext),
        nodePath.posix.basename(p, ext),
        `basename ${p} ${ext}`,
      );
    }
    assert.equal(ours.posix.resolve(p), nodePath.posix.resolve(p), `resolve ${p}`);
  }
  each((a, b) => {
    assert.equal(ours.posix.join(a, b), nodePath.posix.join(a, b), `join ${a} ${b}`);
    assert.equal(ours.posix.resolve(a, b), nodePath.posix.resolve(a, b), `resolve ${a} ${b}`);
    assert.equal(ours.posix.relative(a, b), nodePath.posix.relative(a, b), `relative ${a} ${b}`);
  }, posixPaths);
  assert.equal(ours.posix.join(), nodePath.posix.join());
  assert.equal(
    ours.posix.join("a", "b", "../c", "d/"),
    nodePath.posix.join("a", "b", "../c", "d/"),
  );
  assert.equal(ours.posix.resolve(), nodePath.posix.resolve());
});

Deno.test("win32 helpers match node:path.win32", () => {
  for (const p of winPaths) {
    assert.equal(ours.win32.normalize(p), nodePath.win32.normalize(p), `normalize ${p}`);
    assert.equal(ours.win32.isAbsolute(p), nodePath.win32.isAbsolute(p), `isAbsolute ${p}`);
    assert.equal(ours.win32.dirname(p), nodePath.win32.dirname(p), `dirname ${p}`);
    assert.equal(ours.win32.basename(p), nodePath.win32.basename(p), `basename ${p}`);
    assert.equal(
      ours.win32.basename(p, ".txt"),
      nodePath.win32.basename(p, ".txt"),
      `basename ${p}`,
    );
  }
  // Absolute paths only where the current directory would come in (it is a POSIX one here).
  const absolute = winPaths.filter((p) =>
    nodePath.win32.isAbsolute(p) && /^[a-z]:|^[\\/]{2}/i.test(p)
  );
  each((a, b) => {
    assert.equal(ours.win32.join(a, b), nodePath.win32.join(a, b), `join ${a} ${b}`);
  }, winPaths);
  each((a, b) => {
    assert.equal(ours.win32.resolve(a, b), nodePath.win32.resolve(a, b), `resolve ${a} ${b}`);
    assert.equal(ours.win32.relative(a, b), nodePath.win32.relative(a, b), `relative ${a} ${b}`);
  }, absolute);
  for (const a of absolute) {
    for (const b of ["x", "..\\y", "C:z", "\\w", ""]) {
      assert.equal(ours.win32.resolve(a, b), nodePath.win32.resolve(a, b), `resolve ${a} ${b}`);
    }
  }
});

Deno.test("the platform's helpers are node:path's", () => {
  assert.equal(ours.join("a", "b"), nodePath.join("a", "b"));
  assert.equal(ours.resolve("x"), nodePath.resolve("x"));
  assert.equal(ours.relative("/a/b", "/a/c"), nodePath.relative("/a/b", "/a/c"));
  assert.equal(ours.sep, nodePath.sep);
});

Deno.test("toFileUrl and fromFileUrl match node:url on POSIX", {
  ignore: Deno.build.os === "windows",
}, () => {
  for (
    const p of [
      "/",
      "/a/b",
      "/a b/c",
      "/a%b",
      "/a#b?c",
      "/a\\b",
      "/x/\n\t\r",
      "/é/ü",
      "/a/",
      "rel/x",
      "./y/",
      "/a/../b",
      "/~user/`{}`",
      "/a;b=c&d",
      "/\u{1F600}",
    ]
  ) {
    assert.equal(ours.posix.toFileUrl(p).href, pathToFileURL(p).href, `toFileUrl ${p}`);
    const url = pathToFileURL(p);
    assert.equal(ours.posix.fromFileUrl(url), fileURLToPath(url), `fromFileUrl ${url}`);
    assert.equal(ours.posix.fromFileUrl(url.href), fileURLToPath(url.href), `fromFileUrl ${url}`);
  }
  assert.throws(() => ours.posix.fromFileUrl("file:///a%2fb"), /encoded \//);
  assert.throws(() => fileURLToPath("file:///a%2fb"));
  assert.throws(() => ours.posix.fromFileUrl("https://x/a"), /scheme file/);
  assert.throws(() => ours.posix.fromFileUrl("file://host/a"), /host/);
});

Deno.test("win32 toFileUrl and fromFileUrl give Windows' file URLs", () => {
  const cases: [string, string][] = [
    ["C:\\a\\b", "file:///C:/a/b"],
    ["C:\\a b\\c%d", "file:///C:/a%20b/c%25d"],
    ["C:\\a\\", "file:///C:/a/"],
    ["\\\\server\\share\\x y", "file://server/share/x%20y"],
    ["C:\\é#?", "file:///C:/%C3%A9%23%3F"],
  ];
  for (const [path, href] of cases) {
    assert.equal(ours.win32.toFileUrl(path).href, href, path);
    assert.equal(ours.win32.fromFileUrl(href), path.replace(/\\$/, "\\"), href);
  }
  assert.throws(() => ours.win32.fromFileUrl("file:///a/b"), /absolute/);
  assert.throws(() => ours.win32.fromFileUrl("file:///C:/a%5Cb"), /encoded/);
});
