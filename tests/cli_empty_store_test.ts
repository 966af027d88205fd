/**
 * A store file that lost its content (0 bytes, or NUL bytes where its header
 * goes: what a truncation or a crash on some file systems leaves) is refused
 * and left untouched by every command, never opened as a new, empty store;
 * `flowstate stores repair` sets it aside. A new store file is never empty:
 * it is made complete beside its path, then linked into place.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { withSandbox } from "./_cli_sandbox.ts";
import { Watched } from "./_watched.ts";
import { openStore, StoreCorruptError } from "../mod.ts";

const MOD = new URL("../mod.ts", import.meta.url).href;

const LOST: [string, Uint8Array][] = [
  ["empty", new Uint8Array(0)],
  ["NUL bytes", new Uint8Array(8192)],
];

for (const [what, bytes] of LOST) {
  Deno.test(`CLI refuses a sqlite store file of ${what}, leaves it untouched, and repair sets it aside`, async () => {
    await withSandbox(async ({ home, run }) => {
      const path = join(home, "state.db");
      await Deno.mkdir(home, { recursive: true });
      await Deno.writeFile(path, bytes);
      for (const args of [["runs", "ls"], ["state", "set", "a", "1"], ["stores"]]) {
        const result = await run(...args);
        assert.equal(result.code, 1, `${args.join(" ")}: ${result.stdout}`);
        assert.doesNotMatch(result.stdout, /No runs match/);
        assert.match(
          result.stderr,
          what === "empty" ? /state\.db is empty \(0 bytes\)/ : /holds only NUL bytes/,
        );
        assert.match(result.stderr, /a store file that lost its content/);
        assert.match(result.stderr, /left untouched/);
        assert.match(result.stderr, /flowstate stores repair default/);
        assert.match(result.stderr, /flowstate restore --store default <file>/);
        assert.deepEqual(await Deno.readFile(path), bytes, `${args.join(" ")} left it as it was`);
      }
      const repair = await run("stores", "repair", "default", "--json");
      assert.equal(repair.code, 0, repair.stderr);
      const report = JSON.parse(repair.stdout);
      assert.equal(report.path, path);
      assert.deepEqual(await Deno.readFile(report.movedTo), bytes);
      const set = await run("state", "set", "a", "1");
      assert.equal(set.code, 0, set.stderr);
    });
  });

  Deno.test(`openStore() refuses a sqlite file of ${what} with a damaged StoreCorruptError`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const path = join(dir, "state.db");
      await Deno.writeFile(path, bytes);
      await assert.rejects(openStore({ plugin: "sqlite", path }, { name: "main" }), (err) => {
        assert.ok(err instanceof StoreCorruptError, String(err));
        assert.equal(err.reason, "damaged");
        assert.equal(err.path, path);
        assert.match(err.message, /^Cannot open store "main": .* lost its content/);
        return true;
      });
      assert.deepEqual(await Deno.readFile(path), bytes);
      assert.deepEqual(
        (await Array.fromAsync(Deno.readDir(dir), (e) => e.name)).sort(),
        ["state.db"],
        "nothing created beside it",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  Deno.test(`CLI refuses a jsonfile store file of ${what}, saying it lost its content`, async () => {
    await withSandbox(async ({ dir, run }) => {
      await Deno.writeTextFile(
        join(dir, "flowstate.yaml"),
        "stores:\n  main: { plugin: jsonfile, path: state.json }\n",
      );
      const path = join(dir, "state.json");
      await Deno.writeFile(path, bytes);
      const result = await run("runs", "ls");
      assert.equal(result.code, 1, result.stdout);
      assert.match(
        result.stderr,
        what === "empty" ? /state\.json is empty \(0 bytes\)/ : /holds only NUL bytes/,
      );
      assert.match(result.stderr, /lost its content/);
      assert.match(result.stderr, /flowstate stores repair main/);
      assert.deepEqual(await Deno.readFile(path), bytes);
    });
  });
}

Deno.test("openStore() creates a new sqlite store file complete, with nothing left beside it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "state.db");
    const stores = await Promise.all(
      [1, 2, 3].map(() => openStore({ plugin: "sqlite", path }, { name: "main" })),
    );
    await stores[0].set(["a"], 1);
    for (const store of stores) assert.equal((await store.get(["a"]))?.value, 1);
    for (const store of stores) await store.close();
    const header = (await Deno.readFile(path)).subarray(0, 16);
    assert.equal(new TextDecoder().decode(header), "SQLite format 3\0");
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(dir), (e) => e.name)).sort(),
      ["state.db"],
      "no temp file left",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a process killed (SIGKILL) while creating a sqlite store leaves no file at its path: the next open creates it", async () => {
  await withSandbox(async ({ dir, home, run }) => {
    const path = join(home, "state.db");
    // Held at the moment the complete new file is to be linked into place, then killed.
    const script = `
      Deno.link = () => { console.log("linking"); return new Promise(() => {}); };
      const { openStore } = await import(${JSON.stringify(MOD)});
      await openStore({ plugin: "sqlite", path: ${JSON.stringify(path)} }, { name: "default" });
    `;
    await using child = new Watched(
      new Deno.Command(Deno.execPath(), {
        args: ["eval", "--no-check", script],
        cwd: dir,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }),
    );
    await child.until(/linking/);
    child.kill("SIGKILL");
    await child.code();
    await assert.rejects(Deno.lstat(path), Deno.errors.NotFound);
    const left = await Array.fromAsync(Deno.readDir(home), (e) => e.name);
    assert.ok(left.some((name) => /^\.state\.db\.tmp-\d+-[0-9a-f]{8}$/.test(name)), String(left));
    const set = await run("state", "set", "a", "1");
    assert.equal(set.code, 0, set.stderr);
    const get = await run("state", "get", "a");
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stdout, /1/);
  });
});
