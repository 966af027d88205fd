import assert from "node:assert/strict";
import { basename, dirname, join } from "node:path";
import { StoreCorruptError, type StoreCorruptReason } from "../../src/errors.ts";
import {
  isLockFileName,
  lockPathOf,
  moveCorruptAside,
  parseCorruptName,
  parseTempName,
  tempPathOf,
} from "./files.ts";
import { collectWarnings, files, open, withTempDir } from "./testdata/helpers.ts";

// ---------------------------------------------------------------------------
// Names

Deno.test("lockPathOf() names the lock file beside the store file, as isLockFileName() knows it", () => {
  assert.equal(lockPathOf("/data/state.json"), "/data/state.json.lock");
  assert.equal(isLockFileName("state.json.lock"), true);
  assert.equal(isLockFileName(".lock"), false);
  assert.equal(isLockFileName("state.json"), false);
});

Deno.test("tempPathOf() names a temp file beside the store file that parseTempName() reads back", () => {
  const temp = tempPathOf("/data/state.json");
  assert.equal(dirname(temp), "/data");
  assert.deepEqual(parseTempName(basename(temp)), { of: "state.json", pid: Deno.pid });
  assert.notEqual(tempPathOf("/data/state.json"), temp);
});

Deno.test("parseTempName() reads only whole temp file names", () => {
  assert.deepEqual(parseTempName(".a.tmp-5-aaaaaaaa.tmp-1-abcdef12"), {
    of: "a.tmp-5-aaaaaaaa",
    pid: 1,
  });
  for (const name of [".state.json.tmp-notours", ".state.json.tmp-1-abcdef01x", "state.json"]) {
    assert.equal(parseTempName(name), undefined, name);
  }
});

Deno.test("moveCorruptAside() names the copy the way parseCorruptName() reads it, never overwriting one", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json");
    const moved: string[] = [];
    for (let i = 0; i < 2; i++) {
      await Deno.writeTextFile(path, `broken ${i}`);
      moved.push(await moveCorruptAside(path));
    }
    assert.notEqual(moved[0], moved[1]);
    for (const [i, copy] of moved.entries()) {
      assert.equal(dirname(copy), dir);
      assert.equal(parseCorruptName(basename(copy))?.of, "state.json");
      assert.equal(await Deno.readTextFile(copy), `broken ${i}`);
    }
    assert.equal(parseCorruptName("state.json"), undefined);
    assert.deepEqual(parseCorruptName("state.json.corrupt-20260101T000000000Z-2"), {
      of: "state.json",
      timestamp: "20260101T000000000Z",
    });
  });
});

// ---------------------------------------------------------------------------
// Temp files

Deno.test("jsonfile removes temp files left by crashed processes, and nothing else", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json");
    const keep: Record<string, string> = {
      ".state.json.tmp-notours": "partial",
      ".state.json.tmp-1-abcdef01x": "partial",
      ".other.json.tmp-12345-abcdef01": "partial",
      "other.json": "{}",
      // A lock text of the older link-based protocol: not this plugin's to remove (gc's job).
      ".state.json.lock-7-abcdef03.tmp": JSON.stringify({ pid: 7, hostname: "elsewhere" }),
    };
    const remove: Record<string, string> = {
      // Temps are only written under the lock, so any found under it is a leftover.
      ".state.json.tmp-12345-abcdef01": "partial",
      ".state.json.tmp-1-0badf00d": "",
    };
    for (const [name, content] of Object.entries({ ...keep, ...remove })) {
      await Deno.writeTextFile(join(dir, name), content);
    }
    const store = await open(path);
    await store.close();
    assert.deepEqual(await files(dir), Object.keys(keep).sort());
  });
});

// ---------------------------------------------------------------------------
// Corruption

const corruptFiles: [string, Uint8Array, RegExp, StoreCorruptReason?][] = [
  [
    "invalid JSON",
    new TextEncoder().encode(
      '{"format": "flowstate.jsonfile", "version": 1, "entries": [\n{"key": ["a"], "value": 1, "version": "v", "expiresAt": null},\n{"key": ["b"], "value": 2,, "version": "v"}\n]}\n',
    ),
    /is not valid JSON at line 3, column 27 \(expected a property name in double quotes, found ","\)/,
  ],
  [
    "a truncated file",
    new TextEncoder().encode('{"format": "flowstate.jsonfile", "version": 1, "entries": [\n{"ke'),
    /is not valid JSON at line 2, column 5 \(expected a closing quote, found the end of the file\)/,
  ],
  [
    "an unknown format version",
    new TextEncoder().encode('{"format": "flowstate.jsonfile", "version": 2, "entries": []}\n'),
    /has flowstate\.jsonfile version 2, but this Flowstate reads only version 1 \(it was written by a newer Flowstate\)/,
    "newer",
  ],
  [
    "another kind of JSON document",
    new TextEncoder().encode('{"hello": "world"}'),
    /is not a flowstate\.jsonfile document \(its format is undefined\)/,
    "foreign",
  ],
  [
    "a malformed entry",
    new TextEncoder().encode(
      '{"format": "flowstate.jsonfile", "version": 1, "entries": [{"key": "a", "value": 1, "version": "v", "expiresAt": null}]}',
    ),
    /entries\[0\] has a key that is not a non-empty array of strings/,
  ],
  ["bytes that are not UTF-8", new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), /is not valid UTF-8 text/],
];

for (const [what, bytes, reason, kind = "damaged"] of corruptFiles) {
  Deno.test(`jsonfile refuses ${what} on every open and leaves it in place, unchanged`, async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "state.json");
      await Deno.writeFile(path, bytes);
      // Once the file was moved aside on the first refusal, and the second open started
      // an empty store at the same path: a restarted daemon carried on from nothing.
      for (const attempt of [1, 2, 3]) {
        const error = await open(path).then(
          () => assert.fail(`opened a corrupt file (attempt ${attempt})`),
          (err: unknown) => err as StoreCorruptError,
        );
        assert.ok(error instanceof StoreCorruptError, String(error));
        assert.equal(error.path, path);
        assert.equal(error.movedTo, null);
        assert.ok(
          error.message.startsWith(`Cannot open store "main": file ${path} `),
          error.message,
        );
        assert.match(error.message, reason);
        assert.match(error.message, /left in place; it is never overwritten/);
        assert.equal(error.reason, kind);
        // Only a damaged file is for stores repair: a newer one is for an upgrade, a foreign
        // one is someone else's document.
        assert.match(
          error.message,
          {
            damaged: /flowstate stores repair main/,
            newer: /Upgrade Flowstate to open it$/,
            foreign: /It is not a store: point the store's "path" option at a new file$/,
          }[kind],
        );
        assert.deepEqual(await Deno.readFile(path), bytes);
        // Nothing else was written: no lock or temp file, no copy.
        assert.deepEqual(await files(dir), ["state.json"]);
      }
    });
  });
}

Deno.test('jsonfile with onCorrupt "start-empty" moves a corrupt file aside and starts empty', async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json");
    const bytes = new TextEncoder().encode("{ not json");
    await Deno.writeFile(path, bytes);
    // Said to the caller's handler, never printed.
    const { result: store, warnings } = await collectWarnings((onWarning) =>
      open(path, { onCorrupt: "start-empty" }, undefined, onWarning)
    );
    assert.equal(await store.count(), 0);
    const moved = (await files(dir)).filter((n) => n.startsWith("state.json.corrupt-"));
    assert.equal(moved.length, 1);
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0].code, "STORE_CORRUPT_MOVED");
    assert.equal(warnings[0].store, "main");
    assert.match(
      warnings[0].message,
      /^Store "main": file .*state\.json is not valid JSON at line 1, column 3/,
    );
    assert.ok(
      warnings[0].message.includes(`moved it to ${join(dir, moved[0])} and started empty`),
    );
    await store.set(["fresh"], 1);
    await store.close();
    assert.deepEqual(await Deno.readFile(join(dir, moved[0])), bytes);
    assert.equal(JSON.parse(await Deno.readTextFile(path)).entries.length, 1);
  });
});

Deno.test("jsonfile refuses further use when the file is damaged while open, without overwriting it", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json");
    const store = await open(path);
    await store.set(["a"], 1);
    // Another program replaces the file with garbage.
    const garbage = new TextEncoder().encode('{"format": "flowstate.jsonfile", "ver');
    await Deno.writeFile(join(dir, "elsewhere"), garbage);
    await Deno.rename(join(dir, "elsewhere"), path);
    const error = await store.get(["a"]).then(
      () => assert.fail("read a corrupt file"),
      (err: unknown) => err as StoreCorruptError,
    );
    assert.ok(error instanceof StoreCorruptError);
    assert.match(error.message, /^Cannot read store "main": file .* is not valid JSON at line 1/);
    assert.equal(error.movedTo, null);
    assert.deepEqual(await Deno.readFile(path), garbage);
    await assert.rejects(store.set(["a"], 2), StoreCorruptError);
    await assert.rejects(store.get(["a"]), StoreCorruptError);
    await store.close();
    assert.deepEqual(await Deno.readFile(path), garbage, "never overwritten");
    assert.ok((await files(dir)).every((name) => !name.includes(".corrupt-")));
  });
});
