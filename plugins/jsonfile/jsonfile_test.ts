import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError, StoreCorruptError } from "../../src/errors.ts";
import { loadPlugin, openStore } from "../../src/plugin.ts";
import { compareKeys } from "../../src/store/keys.ts";
import { wrapDriver } from "../../src/store/store.ts";
import type { Clock, Key, Store } from "../../src/store/types.ts";
import { testStore } from "@flowstate/core/testing";
import jsonfile, { JsonFileDriver } from "./mod.ts";

// The conformance suite: each id is its own file; the same id reopens it.
const suiteDir = await Deno.makeTempDir({ prefix: "flowstate-jsonfile-suite-" });
globalThis.addEventListener("unload", () => Deno.removeSync(suiteDir, { recursive: true }));
testStore(
  "jsonfile",
  ({ id, clock }) =>
    openStore({ plugin: "jsonfile", path: join(suiteDir, `${id}.json`) }, { clock }),
);

// ---------------------------------------------------------------------------
// Helpers

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-jsonfile-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function open(path: string, options: Record<string, unknown> = {}, clock?: Clock): Promise<Store> {
  return openStore({ plugin: "jsonfile", path, ...options }, { name: "main", clock });
}

const CONFIG = fileURLToPath(new URL("../../deno.json", import.meta.url));

/** Run a helper script from ./testdata in its own Deno process. */
function spawnHelper(
  script: string,
  args: string[],
  permissions = ["--allow-read", "--allow-write", "--allow-env", "--allow-sys", "--allow-run"],
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      `--config=${CONFIG}`,
      ...permissions,
      fileURLToPath(new URL(`./testdata/${script}`, import.meta.url)),
      ...args,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
    env: { RUST_BACKTRACE: "0" },
  }).spawn();
}

/** Complete lines of a stream (a trailing partial line is dropped). */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    rest += chunk;
    for (let nl = rest.indexOf("\n"); nl >= 0; nl = rest.indexOf("\n")) {
      yield rest.slice(0, nl);
      rest = rest.slice(nl + 1);
    }
  }
}

async function drain(out: AsyncGenerator<string>): Promise<string[]> {
  const all: string[] = [];
  for await (const line of out) all.push(line);
  return all;
}

async function files(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

function doc(entries: { key: Key; value: unknown }[]): string {
  return `{"format": "flowstate.jsonfile", "version": 1, "entries": [\n${
    entries.map((e) =>
      `{"key": ${JSON.stringify(e.key)}, "value": ${
        JSON.stringify(e.value)
      }, "version": "v0", "expiresAt": null}`
    ).join(",\n")
  }\n]}\n`;
}

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
      query: false,
      count: true,
      clear: true,
      atomicClear: true,
      multiProcess: true,
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
        /Cannot commit to store "main": writing .* failed \(.*\); the commit was not acknowledged/,
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

// ---------------------------------------------------------------------------
// Several processes

Deno.test({
  name: "jsonfile: two processes doing 500 compare-and-set increments each end at 1000",
  async fn() {
    await withTempDir(async (dir) => {
      // On a loaded machine one process may get all its turns before the other starts: then
      // the run proves nothing about contention, and it is repeated (at most three times).
      let path = "";
      for (let attempt = 1;; attempt++) {
        path = join(dir, `counter-${attempt}.json`);
        const children = [0, 1].map(() => spawnHelper("jsonfile_cas.ts", [path, "500", "full"]));
        const outs = children.map((child) => lines(child.stdout));
        for (const out of outs) assert.equal((await out.next()).value, "ready");
        for (const child of children) await child.stdin.close(); // go
        const outputs = await Promise.all(outs.map(drain));
        for (const child of children) assert.equal((await child.status).code, 0);
        const written = outputs.map((out) => out.filter((l) => /^\d+$/.test(l)).map(Number));
        assert.equal(written[0].length, 500);
        assert.equal(written[1].length, 500);
        // Every value 1..1000 was written exactly once: no increment was lost or duplicated.
        assert.deepEqual(
          [...written[0], ...written[1]].sort((a, b) => a - b),
          Array.from({ length: 1000 }, (_, i) => i + 1),
        );
        // And the two processes really ran at the same time.
        const overlapped = Math.min(...written[0]) < Math.max(...written[1]) &&
          Math.min(...written[1]) < Math.max(...written[0]);
        if (overlapped) break;
        assert.ok(attempt < 3, "the two processes never ran at the same time in three tries");
      }
      const store = await open(path);
      assert.equal((await store.get(["counter"]))?.value, 1000);
      await store.close();
      await assert.rejects(Deno.stat(`${path}.lock`), Deno.errors.NotFound);
    });
  },
});

for (const durability of ["full", "relaxed"]) {
  Deno.test(`jsonfile keeps every acknowledged write when the writer is killed (SIGKILL, durability ${durability})`, async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "state.json");
      const child = spawnHelper("jsonfile_writer.ts", [path, durability]);
      await child.stdin.close();
      const acked: string[] = [];
      let killed = false;
      for await (const line of lines(child.stdout)) {
        acked.push(line);
        if (!killed && acked.length >= 300) {
          child.kill("SIGKILL");
          killed = true;
        }
      }
      assert.equal((await child.status).signal, "SIGKILL");
      assert.ok(acked.length >= 300);
      // The file parses, has no partial entry, and holds every acknowledged key.
      const parsed = JSON.parse(await Deno.readTextFile(path));
      assert.equal(parsed.format, "flowstate.jsonfile");
      // The killed writer may have left its lock file and a temp file; neither wedges the
      // store: its lock died with it (lockTimeout 0: one try, no waiting).
      const store = await open(path, { lockTimeout: 0 });
      const entries = await store.getMany(acked.map((name) => ["acked", name]));
      const missing = acked.filter((_, i) => entries[i] === null);
      assert.deepEqual(missing, [], `acknowledged but missing: ${missing.join(", ")}`);
      for (const entry of entries) {
        const [id, i] = entry!.key[1].split("-").map(Number);
        assert.deepEqual({ ...entry!.value as object, padding: "" }, { id, i, padding: "" });
      }
      await store.set(["after"], true);
      await store.close();
      assert.deepEqual((await files(dir)).filter((n) => n !== "state.json"), []);
    });
  });
}

// ---------------------------------------------------------------------------
// Locks

/** Whether some handle holds the lock on `lockPath` (probed through a handle of our own). */
function lockIsHeld(lockPath: string): boolean {
  using probe = Deno.openSync(lockPath, { read: true, write: true });
  if (!probe.tryLockSync(true)) return true;
  probe.unlockSync();
  return false;
}

/** Whether process `pid` is stopped (by SIGSTOP), as `ps` tells. */
async function isStopped(pid: number): Promise<boolean> {
  const { stdout } = await new Deno.Command("ps", { args: ["-o", "stat=", "-p", String(pid)] })
    .output();
  return new TextDecoder().decode(stdout).trim().startsWith("T");
}

Deno.test("jsonfile waits for a live lock holder, then fails naming it; once the holder is killed, the next commit takes the lock at once", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json");
    const store = await open(path, { lockTimeout: 300 });
    await store.set(["a"], 1);
    const holder = spawnHelper("jsonfile_lock_holder.ts", [`${path}.lock`]);
    await holder.stdin.close();
    const out = lines(holder.stdout);
    try {
      assert.equal((await out.next()).value, "locked");
      const started = performance.now();
      await assert.rejects(store.set(["a"], 2), (err: Error) => {
        assert.ok(err instanceof Deno.errors.TimedOut);
        assert.match(
          err.message,
          new RegExp(
            `^Cannot commit to store "main": the lock file .*state\\.json\\.lock is held by process ${holder.pid} on host ".*" since .*300 ms \\(lockTimeout\\)`,
          ),
        );
        return true;
      });
      assert.ok(performance.now() - started >= 250, "the commit waited for the lock");
      await assert.rejects(
        open(path, { lockTimeout: 50 }),
        new RegExp(`^TimedOut: Cannot open store "main": .* held by process ${holder.pid} `),
      );
      // Reads do not take the lock; the failed commit changed nothing.
      assert.equal((await store.get(["a"]))?.value, 1);
      // The store that failed to open closed its lock file, without deleting the held one.
      assert.ok(lockIsHeld(`${path}.lock`));
    } finally {
      holder.kill("SIGKILL");
      await holder.status;
      await drain(out);
    }
    // The OS released the dead holder's lock: no waiting, nothing to break.
    const next = await open(path, { lockTimeout: 0 });
    assert.equal((await next.set(["a"], 3)).ok, true);
    await next.close();
    assert.equal((await store.set(["a"], 4)).ok, true);
    await store.close();
    await assert.rejects(Deno.stat(`${path}.lock`), Deno.errors.NotFound);
    const reopened = await open(path);
    assert.equal((await reopened.get(["a"]))?.value, 4);
    await reopened.close();
  });
});

Deno.test({
  name:
    "jsonfile: a writer killed (SIGKILL) while it holds the lock does not block the next writer",
  ignore: Deno.build.os === "windows",
  async fn() {
    await withTempDir(async (dir) => {
      const path = join(dir, "state.json");
      const child = spawnHelper("jsonfile_writer.ts", [path, "full"]);
      await child.stdin.close();
      const out = lines(child.stdout);
      for (let i = 0; i < 20; i++) await out.next(); // it is writing, with the lock file open
      // Freeze the writer until it is caught holding the lock, then kill it.
      let caught = false;
      for (let attempt = 0; attempt < 100 && !caught; attempt++) {
        child.kill("SIGSTOP");
        for (let i = 0; i < 100 && !await isStopped(child.pid); i++) {
          /* the signal is on its way */
        }
        caught = lockIsHeld(`${path}.lock`);
        if (!caught) {
          child.kill("SIGCONT");
        }
      }
      assert.ok(caught, "the writer was never caught holding the lock");
      child.kill("SIGKILL");
      assert.equal((await child.status).signal, "SIGKILL");
      await drain(out);
      // Another process, then this one, take the lock at once (lockTimeout 0: a single try).
      const other = spawnHelper("jsonfile_open.ts", [path, "0"]);
      await other.stdin.close();
      assert.deepEqual(await drain(lines(other.stdout)), ["ok"]);
      assert.equal((await other.status).code, 0);
      const store = await open(path, { lockTimeout: 0 });
      assert.equal((await store.get(["opened"]))?.value, other.pid);
      assert.equal((await store.set(["after"], true)).ok, true);
      await store.close();
      assert.deepEqual(await files(dir), ["state.json"]);
    });
  },
});

Deno.test("jsonfile waits for a lock held through another handle in the same process", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json");
    const a = await open(path, { lockTimeout: 50 });
    {
      using other = await Deno.open(`${path}.lock`, { read: true, write: true });
      await other.lock(true);
      await assert.rejects(a.set(["x"], 1), Deno.errors.TimedOut);
      // Another store in this process waits the same way.
      await assert.rejects(open(path, { lockTimeout: 50 }), Deno.errors.TimedOut);
    } // closing the handle releases the lock
    assert.equal((await a.set(["x"], 1)).ok, true);
    await a.close();
  });
});

Deno.test("jsonfile takes the lock whatever the lock file holds, and names itself in it", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json");
    const lock = `${path}.lock`;
    // A dead process's holder line, garbage, a lock of the older link-based protocol, nothing.
    const leftovers = [
      JSON.stringify({ pid: 2 ** 22 + 1, hostname: "elsewhere.example", since: "2020" }) + "\n",
      "\u0000\u0001 not json",
      JSON.stringify({ pid: 1, hostname: "elsewhere.example", createdAt: "2020", nonce: "x" }),
      "",
    ];
    for (const content of leftovers) {
      await Deno.writeTextFile(lock, content);
      const store = await open(path, { lockTimeout: 0 });
      assert.equal((await store.set(["case"], content)).ok, true);
      const holder = JSON.parse((await Deno.readTextFile(lock)).split("\n")[0]);
      assert.equal(holder.pid, Deno.pid);
      assert.equal(holder.hostname, Deno.hostname());
      assert.ok(Math.abs(Date.parse(holder.since) - Date.now()) < 60_000, holder.since);
      await store.close();
      await assert.rejects(Deno.stat(lock), Deno.errors.NotFound, "removed when the store closed");
    }
  });
});

Deno.test("jsonfile keeps excluding writers when the lock file is deleted or replaced while stores have it open", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json");
    const lock = `${path}.lock`;
    const a = await open(path, { lockTimeout: 50 });
    const b = await open(path, { lockTimeout: 50 });
    await a.set(["n"], 1);
    // b closes while no one holds the lock, so it deletes the lock file that a has open.
    await b.close();
    await assert.rejects(Deno.stat(lock), Deno.errors.NotFound);
    // Someone now locks a new lock file at the path: a must not take its deleted one.
    for (const replace of [false, true]) {
      if (replace) {
        await Deno.writeTextFile(join(dir, "elsewhere"), "");
        await Deno.rename(join(dir, "elsewhere"), lock);
      }
      const other = await Deno.open(lock, { read: true, write: true, create: true });
      await other.lock(true);
      await assert.rejects(a.set(["n"], 2), Deno.errors.TimedOut);
      other.close();
      assert.equal((await a.set(["n"], 2)).ok, true);
    }
    await a.close();
    assert.deepEqual(await files(dir), ["state.json"]);
  });
});

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

const corruptFiles: [string, Uint8Array, RegExp][] = [
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
  ],
  [
    "another kind of JSON document",
    new TextEncoder().encode('{"hello": "world"}'),
    /is not a flowstate\.jsonfile document \(its format is undefined\)/,
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

for (const [what, bytes, reason] of corruptFiles) {
  Deno.test(`jsonfile moves ${what} aside unchanged and refuses to open`, async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "state.json");
      await Deno.writeFile(path, bytes);
      const error = await open(path).then(
        () => assert.fail("opened a corrupt file"),
        (err: unknown) => err as StoreCorruptError,
      );
      assert.ok(error instanceof StoreCorruptError, String(error));
      assert.equal(error.path, path);
      assert.match(error.movedTo ?? "", /state\.json\.corrupt-\d{8}T\d{9}Z$/);
      assert.ok(error.message.startsWith(`Cannot open store "main": file ${path} `), error.message);
      assert.match(error.message, reason);
      assert.ok(error.message.includes(`(kept as ${error.movedTo})`), error.message);
      assert.deepEqual(await Deno.readFile(error.movedTo!), bytes);
      // Nothing else was written: no new store file, lock or temp file.
      assert.deepEqual(await files(dir), [error.movedTo!.slice(dir.length + 1)]);
    });
  });
}

Deno.test('jsonfile with onCorrupt "start-empty" moves a corrupt file aside and starts empty', async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json");
    const bytes = new TextEncoder().encode("{ not json");
    await Deno.writeFile(path, bytes);
    const warnings: string[] = [];
    const warn = console.warn;
    console.warn = (...args: unknown[]) => warnings.push(args.join(" "));
    let store: Store;
    try {
      store = await open(path, { onCorrupt: "start-empty" });
    } finally {
      console.warn = warn;
    }
    assert.equal(await store.count(), 0);
    const moved = (await files(dir)).filter((n) => n.startsWith("state.json.corrupt-"));
    assert.equal(moved.length, 1);
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0],
      /^Store "main": file .*state\.json is not valid JSON at line 1, column 3/,
    );
    assert.ok(warnings[0].includes(`moved it to ${join(dir, moved[0])} and started empty`));
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
    assert.deepEqual(await Deno.readFile(error.movedTo!), garbage);
    await assert.rejects(store.set(["a"], 2), StoreCorruptError);
    await assert.rejects(store.get(["a"]), StoreCorruptError);
    await store.close();
    assert.deepEqual(await files(dir), [error.movedTo!.slice(dir.length + 1)]);
  });
});
