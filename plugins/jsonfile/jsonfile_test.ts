import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError } from "../../src/errors.ts";
import { loadPlugin, openStore } from "../../src/plugin.ts";
import { compareKeys } from "../../src/store/keys.ts";
import { wrapDriver } from "../../src/store/store.ts";
import type { Key } from "../../src/store/types.ts";
import { testStore } from "@flowstate/core/testing";
import jsonfile, { JsonFileDriver } from "./mod.ts";
import { LARGE_STORE_BYTES } from "./driver.ts";
import { collectWarnings, doc, files, open, withTempDir } from "./testdata/helpers.ts";

// The conformance suite: each id is its own file; the same id reopens it.
const suiteDir = await Deno.makeTempDir({ prefix: "flowstate-jsonfile-suite-" });
globalThis.addEventListener("unload", () => Deno.removeSync(suiteDir, { recursive: true }));
testStore(
  "jsonfile",
  ({ id, clock, indexes, search, changes }) =>
    openStore(
      { plugin: "jsonfile", path: join(suiteDir, `${id}.json`), indexes, search, changes },
      {
        clock,
      },
    ),
  // A second process opens the same file to check the multiProcess claim.
  {
    multiProcess: {
      spec: ({ id }) => ({ plugin: "jsonfile", path: join(suiteDir, `${id}.json`) }),
    },
  },
);

// ---------------------------------------------------------------------------
// The document

Deno.test("jsonfile writes one entry per line, sorted by key, under a format header", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json");
    const store = await open(path);
    const keys: Key[] = [["b"], ["a", "z"], ["a"], ["\u{1F600}"], ["\uFFFF"], ["a", "b", "c"], [
      "B",
    ]];
    for (const key of keys) await store.set(key, { key: key.join("/"), text: "two\nlines" });
    await store.delete(["B"]);
    await store.close();

    const text = await Deno.readTextFile(path);
    const lines = text.split("\n");
    assert.equal(lines[0], '{"format": "flowstate.jsonfile", "version": 1, "entries": [');
    assert.deepEqual(lines.slice(-2), ["]}", ""]);
    const entryLines = lines.slice(1, -2);
    assert.equal(entryLines.length, keys.length - 1, "one line per entry");
    const parsed = entryLines.map((line, i) =>
      JSON.parse(i < entryLines.length - 1 ? line.replace(/,$/, "") : line)
    );
    const expected = keys.filter((k) => k[0] !== "B").sort(compareKeys);
    assert.deepEqual(parsed.map((e) => e.key), expected);
    for (const e of parsed) {
      assert.deepEqual(Object.keys(e), ["key", "value", "version", "expiresAt"]);
      assert.deepEqual(e.value, { key: e.key.join("/"), text: "two\nlines" });
      assert.equal(typeof e.version, "string");
      assert.equal(e.expiresAt, null);
    }
    const whole = JSON.parse(text);
    assert.equal(whole.format, "flowstate.jsonfile");
    assert.equal(whole.version, 1);
  });
});

Deno.test("jsonfile writes the same document after many small changes as a full rewrite would", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json");
    const driver = await JsonFileDriver.open(path);
    const store = wrapDriver(driver, { name: "main", plugin: "jsonfile" });
    let seed = 7;
    const random = (n: number): number => (seed = (seed * 48271) % 2147483647) % n;
    const key =
      (): Key => ["k", String(random(60)).padStart(2, "0"), ...(random(4) ? [] : ["sub"])];
    for (let step = 0; step < 150; step++) {
      const kind = random(5);
      if (kind === 0) {
        await store.delete(key());
      } else if (kind === 1) {
        const op = store.atomic();
        for (let i = random(20); i >= 0; i--) {
          if (random(3) === 0) op.delete(key());
          else op.set(key(), "v".repeat(random(30)));
        }
        await op.commit();
      } else if (kind === 2) {
        // Concurrent commits share writes (group commit).
        await Promise.all([store.set(key(), step), store.delete(key()), store.set(key(), [step])]);
      } else {
        await store.set(key(), { step, text: "x".repeat(random(50)) });
      }
      const entries = await Array.fromAsync(store.list());
      const expected = `{"format": "flowstate.jsonfile", "version": 1, "entries": [${
        entries.length === 0
          ? ""
          : `\n${
            entries.map((e) =>
              `{"key": ${JSON.stringify(e.key)}, "value": ${JSON.stringify(e.value)}, "version": ${
                JSON.stringify(e.version)
              }, "expiresAt": null}`
            ).join(",\n")
          }\n`
      }]}\n`;
      assert.equal(await Deno.readTextFile(path), expected, `after step ${step}`);
    }
    assert.ok(driver.writes > 100);
    await store.close();
  });
});

Deno.test("jsonfile writes an empty store as a valid document", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json");
    const store = await open(path);
    await store.set(["a"], 1);
    await store.delete(["a"]);
    await store.close();
    assert.deepEqual(JSON.parse(await Deno.readTextFile(path)), {
      format: "flowstate.jsonfile",
      version: 1,
      entries: [],
    });
  });
});

Deno.test("jsonfile reads a hand-edited file and rewrites it in its own layout", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json");
    await Deno.writeTextFile(
      path,
      JSON.stringify(
        {
          format: "flowstate.jsonfile",
          version: 1,
          entries: [
            { key: ["z"], value: { n: 1 }, version: "v1", expiresAt: null },
            { key: ["a"], value: [1, 2], version: "v2", expiresAt: null },
          ],
        },
        null,
        2,
      ),
    );
    const store = await open(path);
    assert.deepEqual((await Array.fromAsync(store.list())).map((e) => e.key), [["a"], ["z"]]);
    assert.deepEqual((await store.get(["z"]))?.value, { n: 1 });
    await store.set(["m"], true);
    await store.close();
    assert.equal((await Deno.readTextFile(path)).split("\n").length, 6);
  });
});

Deno.test("jsonfile keeps expired entries in the file until purgeExpired() deletes them in one write", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json");
    let now = 1_000_000;
    const clock = { now: () => now };
    const driver = await JsonFileDriver.open(path);
    const store = wrapDriver(driver, { name: "main", plugin: "jsonfile", clock });
    await store.set(["short", "1"], 1, { expireIn: 1000 });
    await store.set(["short", "2"], 1, { expireIn: 1000 });
    await store.set(["long"], 2, { expireIn: 100_000 });
    assert.match(await Deno.readTextFile(path), /"expiresAt": 1001000/);
    now += 5000;
    assert.equal(await store.get(["short", "1"]), null);
    await store.set(["other"], 3);
    assert.match(await Deno.readTextFile(path), /short/, "hidden, not deleted");
    const writes = driver.writes;
    assert.equal(await store.purgeExpired(), 2);
    assert.equal(driver.writes, writes + 1);
    const text = await Deno.readTextFile(path);
    assert.doesNotMatch(text, /short/);
    assert.match(text, /"key": \["long"\].*"expiresAt": 1100000/);
    assert.equal(await store.purgeExpired(), 0);
    assert.equal(driver.writes, writes + 1, "nothing to purge, nothing written");
    await store.close();
  });
});

Deno.test("jsonfile compact() rewrites a hand-edited file in its own layout and reports sizes", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json");
    const pretty = JSON.stringify(
      {
        format: "flowstate.jsonfile",
        version: 1,
        entries: [
          { key: ["z"], value: { n: 1 }, version: "v1", expiresAt: null },
          { key: ["a"], value: [1, 2], version: "v2", expiresAt: null },
        ],
      },
      null,
      4,
    );
    await Deno.writeTextFile(path, pretty);
    const store = await open(path);
    const before = await Array.fromAsync(store.list());
    const result = await store.compact();
    const text = await Deno.readTextFile(path);
    assert.deepEqual(result, {
      supported: true,
      bytesBefore: pretty.length,
      bytesAfter: new TextEncoder().encode(text).length,
    });
    assert.equal(
      text,
      doc([{ key: ["a"], value: [1, 2] }, { key: ["z"], value: { n: 1 } }]).replace(/"v0"/, '"v2"')
        .replace(/"v0"/, '"v1"'),
    );
    assert.deepEqual(await Array.fromAsync(store.list()), before);
    await store.close();
    // No file yet: nothing to compact, nothing written.
    const empty = await open(join(dir, "empty.json"));
    assert.deepEqual(await empty.compact(), { supported: true, bytesBefore: 0, bytesAfter: 0 });
    await empty.close();
    await assert.rejects(Deno.stat(join(dir, "empty.json")), Deno.errors.NotFound);
  });
});

// ---------------------------------------------------------------------------
// Options

Deno.test("jsonfile is the plugin the loader finds under its built-in name", async () => {
  assert.equal(jsonfile.name, "jsonfile");
  assert.equal(jsonfile.kind, "flowstate.plugin");
  assert.equal(await loadPlugin("jsonfile"), jsonfile);
});

Deno.test("jsonfile defaults to <home>/<store name>.json and creates missing directories", async () => {
  await withTempDir(async (dir) => {
    const home = join(dir, "home", "nested");
    const store = await openStore({ plugin: "jsonfile" }, { home, name: "main" });
    assert.equal(store.location, join(home, "main.json"));
    await store.set(["a"], 1);
    await store.close();
    assert.equal(JSON.parse(await Deno.readTextFile(join(home, "main.json"))).entries.length, 1);
  });
});

Deno.test("jsonfile resolves a relative path against baseDir", async () => {
  await withTempDir(async (dir) => {
    const store = await openStore({ plugin: "jsonfile", path: "data/x.json" }, { baseDir: dir });
    assert.equal(store.location, join(dir, "data", "x.json"));
    assert.deepEqual(store.capabilities, {
      persistent: true,
      expiry: false,
      query: true,
      count: true,
      clear: true,
      atomicClear: true,
      multiProcess: true,
      indexes: true,
      search: false,
    });
    await store.set(["a"], 1);
    await store.close();
    await Deno.stat(join(dir, "data", "x.json"));
  });
});

Deno.test("jsonfile writes through a symlink to the file it points to", async () => {
  await withTempDir(async (dir) => {
    const target = join(dir, "real", "state.json");
    await Deno.mkdir(join(dir, "real"));
    await Deno.writeTextFile(target, doc([{ key: ["a"], value: 1 }]));
    await Deno.symlink(target, join(dir, "link.json"));
    const store = await open(join(dir, "link.json"));
    assert.equal(store.location, await Deno.realPath(target));
    await store.set(["b"], 2);
    await store.close();
    assert.ok((await Deno.lstat(join(dir, "link.json"))).isSymlink, "the link is kept");
    assert.equal(JSON.parse(await Deno.readTextFile(target)).entries.length, 2);
  });
});

Deno.test("jsonfile rejects unknown and malformed options with a ConfigError", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      open(join(dir, "a.json"), { durabilty: "full" }),
      (err: Error) =>
        err instanceof ConfigError && /unknown option "durabilty".*durability/.test(err.message),
    );
    await assert.rejects(
      open(join(dir, "a.json"), { durability: "sometimes" }),
      (err: Error) => err instanceof ConfigError && /option "durability"/.test(err.message),
    );
    await assert.rejects(
      open(join(dir, "a.json"), { lockTimeout: -1 }),
      (err: Error) => err instanceof ConfigError && /option "lockTimeout"/.test(err.message),
    );
    assert.deepEqual(await files(dir), []);
  });
});

// ---------------------------------------------------------------------------
// Writes: group commit, rollback, visibility

Deno.test("JsonFileDriver groups concurrent commits into one file write", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json");
    const driver = await JsonFileDriver.open(path);
    const store = wrapDriver(driver, { name: "main", plugin: "jsonfile" });
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => store.set(["k", String(i).padStart(3, "0")], i)),
    );
    assert.ok(results.every((r) => r.ok));
    // The first commit starts a write alone; the 99 that arrive meanwhile share the next one.
    assert.ok(driver.writes <= 2, `expected at most 2 writes, got ${driver.writes}`);
    await store.close();
    const reopened = await open(path);
    assert.equal(await reopened.count(["k"]), 100);
    assert.equal((await reopened.get(["k", "042"]))?.value, 42);
    await reopened.close();
  });
});

Deno.test("JsonFileDriver evaluates checks in commit order within one write", async () => {
  await withTempDir(async (dir) => {
    const driver = await JsonFileDriver.open(join(dir, "state.json"));
    const store = wrapDriver(driver, { name: "main", plugin: "jsonfile" });
    const [first, second, third] = await Promise.all([
      store.set(["a"], 1, { ifVersion: null }),
      store.set(["a"], 2, { ifVersion: null }),
      store.atomic().check(["b"], null).set(["b"], 1).delete(["a"]).commit(),
    ]);
    assert.equal(first.ok, true);
    assert.deepEqual(second, { ok: false, version: null, conflicts: [["a"]] });
    assert.equal(third.ok, true);
    assert.equal(await store.get(["a"]), null);
    assert.equal((await store.get(["b"]))?.value, 1);
    await store.close();
  });
});

Deno.test("JsonFileDriver writes the keys as they were when commit() was called", async () => {
  await withTempDir(async (dir) => {
    const driver = await JsonFileDriver.open(join(dir, "state.json"));
    const store = wrapDriver(driver, { name: "main", plugin: "jsonfile" });
    const first = store.set(["first"], 1); // starts a write
    const key = ["queued"];
    const queued = store.set(key, 2); // waits for that write
    key[0] = "changed";
    await Promise.all([first, queued]);
    assert.deepEqual((await Array.fromAsync(store.list())).map((e) => e.key), [["first"], [
      "queued",
    ]]);
    await store.close();
  });
});

Deno.test("JsonFileDriver.clear() deletes a prefix in one write and counts live entries", async () => {
  await withTempDir(async (dir) => {
    let now = 1000;
    const driver = await JsonFileDriver.open(join(dir, "state.json"));
    const store = wrapDriver(driver, {
      name: "main",
      plugin: "jsonfile",
      clock: { now: () => now },
    });
    const op = store.atomic();
    for (let i = 0; i < 10; i++) op.set(["a", String(i)], i);
    op.set(["a", "expiring"], 0, { expireIn: 10 }).set(["a"], "prefix itself").set(["b"], 1);
    await op.commit();
    now += 100;
    const before = driver.writes;
    assert.equal(await store.clear(["a"]), 10);
    assert.equal(driver.writes, before + 1);
    assert.deepEqual((await Array.fromAsync(store.list())).map((e) => e.key), [["a"], ["b"]]);
    assert.equal(await store.count(), 2);
    await store.close();
  });
});

Deno.test("jsonfile acknowledges nothing when a write fails, and stays usable", async () => {
  await withTempDir(async (dir) => {
    // A 240-byte name: the store file and its lock fit in NAME_MAX (255), but the temp file
    // beside it (".<name>.tmp-<pid>-<random>") does not, so every write fails, even for root.
    const path = join(dir, "s".repeat(235) + ".json");
    const original = doc([{ key: ["a"], value: 1 }]);
    await Deno.writeTextFile(path, original);
    const store = await open(path);
    const results = await Promise.allSettled([
      store.set(["a"], 2),
      store.set(["b"], 1),
      store.delete(["a"]),
    ]);
    for (const result of results) {
      assert.equal(result.status, "rejected");
      assert.match(
        String((result as PromiseRejectedResult).reason),
        /Cannot commit to store "main": writing .* failed: .*\. Nothing was written: the store holds what it held before the commit$/,
      );
    }
    // Nothing of the failed writes is visible, on disk or in memory.
    assert.equal((await store.get(["a"]))?.value, 1);
    assert.equal(await store.get(["b"]), null);
    assert.equal(await Deno.readTextFile(path), original);
    // No temp file is left, the lock was released (another store takes it at once), and the
    // store still works for reads and reports the next failure.
    assert.deepEqual(await files(dir), ["s".repeat(235) + ".json", "s".repeat(235) + ".json.lock"]);
    await (await open(path, { lockTimeout: 0 })).close();
    await assert.rejects(store.set(["c"], 1), /Cannot commit/);
    assert.equal(await store.count(), 1);
    await store.close();
    assert.deepEqual(await files(dir), ["s".repeat(235) + ".json"]);
  });
});

Deno.test("jsonfile keeps writing when its directory is replaced while the store is open", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "data", "state.json");
    const store = await open(path);
    await store.set(["a"], 1);
    await Deno.rename(join(dir, "data"), join(dir, "old"));
    await Deno.mkdir(join(dir, "data"));
    // The file is gone from the path: the store reads it as empty, and writes the new directory.
    assert.equal(await store.get(["a"]), null);
    await store.set(["b"], 2);
    await store.close();
    assert.deepEqual(
      JSON.parse(await Deno.readTextFile(path)).entries.map((e: { key: Key }) => e.key),
      [["b"]],
    );
    assert.deepEqual(await files(join(dir, "data")), ["state.json"]);
    assert.equal(
      JSON.parse(await Deno.readTextFile(join(dir, "old", "state.json"))).entries.length,
      1,
    );
  });
});

Deno.test("jsonfile reads see writes made through another handle on the same file", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json");
    const a = await open(path);
    const b = await open(path);
    await a.set(["x"], 1);
    assert.equal((await b.get(["x"]))?.value, 1);
    const entry = await b.get<number>(["x"]);
    assert.equal((await b.set(["x"], 2, { ifVersion: entry!.version })).ok, true);
    // a's view is stale until it reads; its compare-and-set is checked against the file.
    assert.equal((await a.set(["x"], 99, { ifVersion: entry!.version })).ok, false);
    assert.equal((await a.get(["x"]))?.value, 2);
    await b.set(["y"], 3);
    assert.deepEqual((await Array.fromAsync(a.list())).map((e) => e.value), [2, 3]);
    // A hand edit in place (same inode) is noticed too.
    await Deno.writeTextFile(path, doc([{ key: ["edited"], value: "by hand" }]));
    assert.deepEqual((await Array.fromAsync(a.list())).map((e) => e.key), [["edited"]]);
    await a.close();
    await b.close();
  });
});

Deno.test("jsonfile warns once per process, on open, when a store is past the size where sqlite is better", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "big.json");
    const small = join(dir, "small.json");
    const { warnings } = await collectWarnings(async (onWarning) => {
      const store = await open(path, {}, undefined, onWarning);
      const atomic = store.atomic();
      const value = "x".repeat(4096);
      for (let i = 0; i * 4000 < LARGE_STORE_BYTES; i++) atomic.set(["big", String(i)], value);
      assert.equal((await atomic.commit()).ok, true);
      await store.close();
      assert.ok((await Deno.stat(path)).size > LARGE_STORE_BYTES);
      // Opened without a handler: nothing is said, nothing printed, and the warning is not used up.
      await (await open(path)).close();
      const again = await open(path, {}, undefined, onWarning);
      await again.close();
      // Once per process and store file: opening it again says nothing; a small store never.
      await (await open(path, {}, undefined, onWarning)).close();
      await (await open(small, {}, undefined, onWarning)).close();
    });
    assert.equal(
      warnings.length,
      1,
      "a store that grows past the size is warned about once opened",
    );
    assert.equal(warnings[0].code, "STORE_LARGE");
    assert.match(
      warnings[0].message,
      /^Store "main": .*big\.json is 4\.\d MiB, past the 4\.0 MiB where a sqlite store is faster: .*`flowstate migrate store --from main --to <a sqlite store>`/,
    );
  });
});

Deno.test("jsonfile answers an indexed eq from its in-memory index, kept exact by commits and by another writer's file", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "ix.json");
    const indexes = [{ prefix: ["o"], path: "st" }];
    await using a = await openStore({ plugin: "jsonfile", path, indexes });
    await using b = await openStore({ plugin: "jsonfile", path, indexes });
    const q = { prefix: ["o"], where: [{ path: "st", op: "eq" as const, value: "open" }] };
    const keys = async (s: typeof a) => (await s.query(q)).map((e) => e.key[1]);
    await a.atomic().set(["o", "1"], { st: "open" }).set(["o", "2"], { st: "done" })
      .set(["o", "3"], { st: "open" }).set(["p", "1"], { st: "open" }).commit();
    assert.deepEqual(await keys(a), ["1", "3"]);
    const plan = await a.explain(q);
    assert.equal(plan.index, a.indexes[0].name);
    assert.equal(plan.scan, false);
    assert.equal(a.indexes[0].native, true);
    // Overwrite and delete in this process; then another process (b) writes the file.
    await a.set(["o", "1"], { st: "done" });
    await a.delete(["o", "3"]);
    assert.deepEqual(await keys(a), []);
    await b.set(["o", "4"], { st: "open" });
    assert.deepEqual(await keys(a), ["4"]);
    await a.set(["o", "5"], { st: "open" }, { expireIn: 1 });
    await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(await keys(a), ["4"]);
    assert.deepEqual(await keys(b), ["4"]);
  });
});
