import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { StoreCorruptError } from "../src/errors.ts";
import type { Progress } from "../src/jobs/progress.ts";
import { runJob } from "../src/jobs/run.ts";
import { openStore } from "../src/plugin.ts";
import { openRuntime, type Runtime } from "../src/runtime.ts";
import type { Clock, JsonValue, Key, Store } from "../src/store/types.ts";
import { type FakeClock, fakeClock } from "../src/testing/clock.ts";
import { backupCommand, restoreCommand } from "../src/cli/backup.ts";
import { UsageError } from "../src/cli/input.ts";
import { readGzipLines, sha256File } from "../src/archive_format.ts";
import { type BackupInfo, backupStore, RESTORE_MARKER_KEY } from "./backup.ts";
import { restoreBackup, type RestoreMarker, verifyBackup } from "./restore.ts";
import { newRunId } from "../src/records/run_id.ts";

const NOW = Date.UTC(2026, 5, 1);

interface Env {
  dir: string;
  rt: Runtime;
  clock: FakeClock;
}

/** A runtime with a sqlite, a jsonfile and two more stores; runs are recorded in "rec". */
async function withEnv(fn: (env: Env) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-backup-" });
  const clock = fakeClock(NOW);
  const rt = await openRuntime({
    config: {
      stores: {
        src: { plugin: "sqlite", path: join(dir, "src.db"), durability: "relaxed" },
        json: { plugin: "jsonfile", path: join(dir, "state.json"), durability: "relaxed" },
        mem: { plugin: "memory" },
        sql2: { plugin: "sqlite", path: join(dir, "sql2.db"), durability: "relaxed" },
        rec: { plugin: "memory" },
      },
      scopes: { global: "src" },
      records: "rec",
    },
    home: dir,
    cwd: dir,
    clock,
  });
  try {
    await fn({ dir, rt, clock });
  } finally {
    await rt.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** `n` entries of varied shapes; every seventh expires, at different times. */
async function seed(store: Store, n: number, prefix = "k"): Promise<void> {
  for (let i = 0; i < n; i += 200) {
    const op = store.atomic();
    for (let j = i; j < Math.min(n, i + 200); j++) {
      const key: Key = j % 5 === 0
        ? ["flow", `f${j % 3}`, `${prefix}${String(j).padStart(5, "0")}`]
        : [`${prefix}${String(j).padStart(5, "0")}`, j % 2 === 0 ? "é/ü 🎉" : ""];
      const value: JsonValue = j % 4 === 0
        ? {
          n: j,
          nested: { list: [1, "two", null, true, { x: -0.5 }] },
          text: "line\nbreak \u2028",
        }
        : j % 4 === 1
        ? `string ${j}`
        : j % 4 === 2
        ? [j, j * 1.5, 1e300]
        : null;
      op.set(key, value, j % 7 === 0 ? { expireIn: (j + 1) * 60_000 } : undefined);
    }
    assert.ok((await op.commit()).ok);
  }
}

type Content = { key: Key; value: JsonValue; expiresAt: number | null }[];

async function content(store: Store, skip?: (key: Key) => boolean): Promise<Content> {
  const out: Content = [];
  for await (const e of store.list()) {
    if (skip?.(e.key)) continue;
    out.push({ key: e.key, value: e.value, expiresAt: e.expiresAt });
  }
  return out;
}

async function backupOf(env: Env, store: string): Promise<string> {
  const run = await runJob(env.rt, "backup", { options: { store }, progress: "quiet" });
  assert.equal(run.status, "succeeded", run.error?.message);
  const files = run.outputs?.files as unknown as BackupInfo[];
  assert.equal(files.length, 1);
  return files[0].file;
}

async function restoreInto(env: Env, file: string, store: string, force = false) {
  const run = await runJob(env.rt, "restore", {
    options: { file, store, force },
    progress: "quiet",
  });
  return run;
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
}

function quietProgress(onUpdate?: (label: string, done: number) => void): Progress {
  const state = { label: "", done: 0, total: undefined as number | undefined };
  return {
    state,
    start(label, total) {
      state.label = label;
      state.total = total;
      state.done = 0;
    },
    advance(n = 1) {
      state.done += n;
      onUpdate?.(state.label, state.done);
    },
    update(done) {
      state.done = done;
      onUpdate?.(state.label, done);
    },
    finish() {},
  };
}

Deno.test("backup of a sqlite store restores identically into jsonfile, memory and sqlite stores", async () => {
  await withEnv(async (env) => {
    const src = await env.rt.store("src");
    await seed(src, 1234);
    const expected = await content(src);
    assert.equal(expected.length, 1234);
    const file = await backupOf(env, "src");

    // Time passes between backup and restore: expiry times are absolute and stay the same.
    env.clock.advance(1000);
    for (const target of ["json", "mem"]) {
      const run = await restoreInto(env, file, target);
      assert.equal(run.status, "succeeded", run.error?.message);
      assert.equal(run.outputs?.restored, 1234);
      assert.equal(run.outputs?.expired, 0);
      assert.deepEqual(await content(await env.rt.store(target)), expected, target);
      assert.equal(await (await env.rt.store(target)).get(RESTORE_MARKER_KEY), null);
    }
    // Versions are new, not copied.
    const a = await src.get(expected[1].key);
    const b = await (await env.rt.store("json")).get(expected[1].key);
    assert.notEqual(a?.version, b?.version);

    // And back again: jsonfile → backup → another sqlite store.
    const second = await backupOf(env, "json");
    const run = await restoreInto(env, second, "sql2");
    assert.equal(run.status, "succeeded", run.error?.message);
    assert.deepEqual(await content(await env.rt.store("sql2")), expected);
  });
});

Deno.test("restore skips entries that expired since the backup and counts them", async () => {
  await withEnv(async (env) => {
    const src = await env.rt.store("src");
    await seed(src, 50);
    const file = await backupOf(env, "src");
    // Entry 0 expires after 1 minute, entry 7 after 8 minutes.
    env.clock.advance(5 * 60_000);
    const expected = await content(src);
    const run = await restoreInto(env, file, "mem");
    assert.equal(run.status, "succeeded", run.error?.message);
    assert.equal(run.outputs?.expired, 1);
    assert.equal(run.outputs?.restored, 49);
    assert.deepEqual(await content(await env.rt.store("mem")), expected);
  });
});

Deno.test("a backup file is a gzip'd header, entries in key order and a trailer, with a sha256sum file", async () => {
  await withEnv(async (env) => {
    const src = await env.rt.store("src");
    await seed(src, 30);
    const file = await backupOf(env, "src");
    assert.match(basename(file), /^src-20260601T000000000Z\.fsbackup$/);
    assert.equal(join(env.dir, "backups", basename(file)), file);
    const lines = (await Array.fromAsync(readGzipLines(file))).map((l) => JSON.parse(l));
    assert.deepEqual(lines[0], {
      format: "flowstate.backup",
      version: 1,
      store: "src",
      plugin: "sqlite",
      createdAt: "2026-06-01T00:00:00.000Z",
    });
    const trailer = lines.at(-1);
    assert.equal(trailer.end, "flowstate.backup");
    assert.equal(trailer.entries, 30);
    assert.equal(trailer.consistency, "snapshot");
    assert.deepEqual(lines.slice(1, -1), await content(src));
    const { sha256 } = await sha256File(file);
    assert.equal(await Deno.readTextFile(`${file}.sha256`), `${sha256}  ${basename(file)}\n`);
    // A second backup in the same millisecond gets its own name.
    const again = await backupOf(env, "src");
    assert.notEqual(again, file);
    assert.match(basename(again), /-1\.fsbackup$/);
    assert.deepEqual((await verifyBackup(again)).entries, 30);
  });
});

/** `store` whose `list()` calls `onList(callNumber)` first. */
function listSpy(store: Store, onList: (call: number) => Promise<void> | void): Store {
  let calls = 0;
  return new Proxy(store, {
    get(target, prop) {
      if (prop === "list") {
        return (options: Parameters<Store["list"]>[0]) => {
          const call = ++calls;
          const inner = target.list(options);
          const gate = Promise.resolve(onList(call));
          return (async function* () {
            await gate;
            yield* inner;
          })();
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

Deno.test("backupStore() retries a snapshot when the store changed between its two passes, and gives up without a file", async () => {
  await withEnv(async (env) => {
    const src = await env.rt.store("mem");
    await seed(src, 100);
    const dir = join(env.dir, "out");
    // The store changes once, during the first try: the second try is consistent.
    const logs: string[] = [];
    const once = listSpy(src, async (call) => {
      if (call === 2) await src.set(["k00002", "é/ü 🎉"], "changed");
    });
    const info = await backupStore(once, join(dir, "a.fsbackup"), {
      attempts: 3,
      log: (m) => logs.push(m),
    });
    assert.equal(info.attempts, 2);
    assert.match(logs.join("\n"), /changed during the backup \(entries were rewritten\)/);
    assert.equal((await verifyBackup(info.file)).entries, 100);

    // A store that changes on every pass: refused after `attempts`, nothing left behind.
    const always = listSpy(src, async (call) => {
      if (call % 2 === 0) await src.set(["new", String(call)], call);
    });
    await assert.rejects(
      backupStore(always, join(dir, "b.fsbackup"), { attempts: 2 }),
      /changed while it was being read, in each of 2 tries \(last: \d+ → \d+ entries\)/,
    );
    assert.deepEqual(await listDir(dir), ["a.fsbackup", "a.fsbackup.sha256"]);

    // One pass with consistency "per-key": no check, no retry.
    const perKey = await backupStore(always, join(dir, "c.fsbackup"), {
      consistency: "per-key",
      attempts: 1,
    });
    assert.equal(perKey.consistency, "per-key");
  });
});

Deno.test("backupStore() stops when cancelled and leaves no file", async () => {
  await withEnv(async (env) => {
    const src = await env.rt.store("src");
    await seed(src, 3000);
    const controller = new AbortController();
    const dir = join(env.dir, "out");
    await assert.rejects(
      backupStore(src, join(dir, "x.fsbackup"), {
        signal: controller.signal,
        progress: quietProgress((_, done) => done >= 1000 && controller.abort()),
      }),
      (err: Error) => err.name === "AbortError",
    );
    assert.deepEqual(await listDir(dir), []);
  });
});

// ---- damaged files ----------------------------------------------------------

async function gzipText(text: string): Promise<Uint8Array> {
  return new Uint8Array(
    await new Response(
      new Blob([text]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer(),
  );
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Rewrite a backup's lines (and drop its .sha256, so only the embedded checks apply). */
async function rewrite(
  from: string,
  to: string,
  edit: (lines: string[]) => string[] | Promise<string[]>,
): Promise<void> {
  const lines = await Array.fromAsync(readGzipLines(from));
  const edited = await edit(lines);
  await Deno.writeFile(to, await gzipText(edited.map((l) => `${l}\n`).join("")));
}

/** Entry lines with a trailer recomputed to match them (so only the intended damage remains). */
async function withTrailer(lines: string[]): Promise<string[]> {
  const entries = lines.slice(1, -1);
  const trailer = JSON.parse(lines.at(-1)!);
  trailer.entries = entries.length;
  trailer.sha256 = await sha256Hex(entries.map((l) => `${l}\n`).join(""));
  return [lines[0], ...entries, JSON.stringify(trailer)];
}

Deno.test("restore refuses each kind of damaged backup file before writing anything", async () => {
  await withEnv(async (env) => {
    const src = await env.rt.store("src");
    await seed(src, 40);
    const good = await backupOf(env, "src");
    const bytes = await Deno.readFile(good);
    const dir = join(env.dir, "damaged");
    await Deno.mkdir(dir);
    const cases: [string, () => Promise<void>, RegExp][] = [
      [
        "not gzip",
        () => Deno.writeTextFile(join(dir, "f"), "hello, not a backup\n"),
        /not a gzip file/,
      ],
      [
        "empty file",
        () => Deno.writeFile(join(dir, "f"), new Uint8Array()),
        /empty|not a gzip|truncated|damaged/,
      ],
      [
        "truncated",
        () => Deno.writeFile(join(dir, "f"), bytes.subarray(0, bytes.length - 20)),
        /damaged or truncated/,
      ],
      ["bit flip", async () => {
        const copy = bytes.slice();
        copy[Math.floor(copy.length / 2)] ^= 0x10;
        await Deno.writeFile(join(dir, "f"), copy);
      }, /damaged or truncated|not valid JSON|not UTF-8|not after/],
      [
        "bytes after the gzip data",
        () => Deno.writeFile(join(dir, "f"), new Uint8Array([...bytes, 1, 2, 3])),
        /bytes after the end of its gzip data/,
      ],
      [
        "gzip of nothing",
        async () => Deno.writeFile(join(dir, "f"), await gzipText("")),
        /empty \(no header line\)/,
      ],
      [
        "not a backup header",
        () =>
          rewrite(
            good,
            join(dir, "f"),
            (l) => [JSON.stringify({ format: "other" }), ...l.slice(1)],
          ),
        /not a Flowstate backup/,
      ],
      [
        "unknown format version",
        () =>
          rewrite(good, join(dir, "f"), (l) => [
            JSON.stringify({ ...JSON.parse(l[0]), version: 2 }),
            ...l.slice(1),
          ]),
        /format version 2, newer than this Flowstate reads \(1\)/,
      ],
      [
        "no trailer",
        () => rewrite(good, join(dir, "f"), (l) => l.slice(0, -1)),
        /truncated: no trailer after 40 entries/,
      ],
      [
        "cut between entries",
        () => rewrite(good, join(dir, "f"), (l) => l.slice(0, 10)),
        /truncated: no trailer after 9 entries/,
      ],
      [
        "count mismatch",
        () =>
          rewrite(good, join(dir, "f"), (l) => {
            const t = JSON.parse(l.at(-1)!);
            return [...l.slice(0, -1), JSON.stringify({ ...t, entries: 41 })];
          }),
        /trailer says 41 entries, but it holds 40/,
      ],
      [
        "checksum mismatch",
        () =>
          rewrite(good, join(dir, "f"), (l) => {
            const e = JSON.parse(l[5]);
            return [...l.slice(0, 5), JSON.stringify({ ...e, value: "tampered" }), ...l.slice(6)];
          }),
        /SHA-256 of its entries is [0-9a-f]{64}, but its trailer says/,
      ],
      [
        "data after the trailer",
        () => rewrite(good, join(dir, "f"), (l) => [...l, l[1]]),
        /data after its trailer/,
      ],
      [
        "keys out of order",
        () => rewrite(good, join(dir, "f"), (l) => withTrailer([l[0], l[2], l[1], ...l.slice(3)])),
        /is not after the key before it/,
      ],
      [
        "a bad key",
        () =>
          rewrite(good, join(dir, "f"), (l) => {
            const e = JSON.parse(l[1]);
            return withTrailer([l[0], JSON.stringify({ ...e, key: "flat" }), ...l.slice(2)]);
          }),
        /line 2/,
      ],
      [
        "a number JSON cannot hold",
        () =>
          rewrite(good, join(dir, "f"), (l) => {
            const broken = l[1].replace(/"value":.*,"expiresAt"/s, '"value":1e999,"expiresAt"');
            return withTrailer([l[0], broken, ...l.slice(2)]);
          }),
        /a number JSON cannot hold/,
      ],
      [
        "a .sha256 that does not match",
        async () => {
          await Deno.writeFile(join(dir, "f"), bytes);
          await Deno.writeTextFile(join(dir, "f.sha256"), `${"0".repeat(64)}  f\n`);
        },
        /says 0{64} \(the file was changed or damaged\)/,
      ],
    ];
    const target = await env.rt.store("mem");
    for (const [name, make, message] of cases) {
      await Deno.remove(join(dir, "f.sha256")).catch(() => {});
      await make();
      await assert.rejects(
        restoreBackup(target, join(dir, "f"), { batchSize: 7 }),
        (err: Error) => {
          assert.ok(err instanceof StoreCorruptError, `${name}: ${err}`);
          assert.match(err.message, message, name);
          assert.match(err.message, /^Cannot restore from /, name);
          return true;
        },
        name,
      );
      assert.equal(await target.count(), 0, `${name}: nothing written`);
      // Through the job too: the run fails, the store stays empty.
      const run = await restoreInto(env, join(dir, "f"), "mem");
      assert.equal(run.status, "failed", name);
      assert.match(run.error?.message ?? "", message, name);
      assert.equal(await target.count(), 0, `${name}: nothing written by the job`);
    }
    // The good file still restores.
    await restoreBackup(target, good, { clock: env.clock });
    assert.deepEqual(await content(target), await content(src));
  });
});

Deno.test("restore refuses a non-empty target without force; with force it replaces the content", async () => {
  await withEnv(async (env) => {
    const src = await env.rt.store("src");
    await seed(src, 20);
    const file = await backupOf(env, "src");
    const target = await env.rt.store("json");
    await target.set(["already", "here"], 1);
    const refused = await restoreInto(env, file, "json");
    assert.equal(refused.status, "failed");
    assert.match(
      refused.error?.message ?? "",
      /store "json": the store is not empty \(it holds \["already","here"\] and maybe more\); pass force \(--force\)/,
    );
    assert.deepEqual(await content(target), [{
      key: ["already", "here"],
      value: 1,
      expiresAt: null,
    }]);

    const forced = await restoreInto(env, file, "json", true);
    assert.equal(forced.status, "succeeded", forced.error?.message);
    assert.equal(forced.outputs?.cleared, 1);
    assert.deepEqual(await content(target), await content(src));
  });
});

Deno.test("an interrupted restore is marked, blocks backups, and a rerun resumes it", async () => {
  await withEnv(async (env) => {
    const src = await env.rt.store("src");
    await seed(src, 1000);
    const file = await backupOf(env, "src");
    const target = await env.rt.store("sql2");
    const controller = new AbortController();
    const stopped = await restoreBackup(target, file, {
      batchSize: 100,
      signal: controller.signal,
      clock: env.clock,
      progress: quietProgress((label, done) => {
        if (label.startsWith("restore into") && done >= 300) controller.abort();
      }),
    });
    assert.equal(stopped.cancelled, true);
    assert.equal(stopped.restored, 300);
    const marker = await target.get<RestoreMarker>(RESTORE_MARKER_KEY);
    assert.equal(marker?.value.done, 300);
    assert.equal(marker?.value.entries, 1000);
    assert.equal(await target.count(), 301);

    // A backup of a half-restored store is refused.
    await assert.rejects(
      backupStore(target, join(env.dir, "partial.fsbackup")),
      /holds an unfinished restore of .*run the restore again to finish it first/,
    );
    // Another file over it needs force.
    const other = join(env.dir, "other.fsbackup");
    await backupStore(await env.rt.store("rec"), other);
    await assert.rejects(
      restoreBackup(target, other),
      /unfinished restore of another backup \(.*300 of 1000 entries done\)/,
    );
    // The same file resumes where it stopped.
    const resumed = await restoreBackup(target, file, { batchSize: 100, clock: env.clock });
    assert.equal(resumed.resumedFrom, 300);
    assert.equal(resumed.restored, 700);
    assert.deepEqual(await content(target), await content(src));
    assert.equal(await target.get(RESTORE_MARKER_KEY), null);
  });
});

Deno.test("restore sets the exact expiry even when the clock moves inside every write", async () => {
  await withEnv(async (env) => {
    const src = await env.rt.store("src");
    await seed(src, 100);
    const file = await backupOf(env, "src");
    let t = NOW;
    const ticking: Clock = { now: () => t++ };
    await using target = await openStore({ plugin: "memory" }, { clock: ticking });
    const result = await restoreBackup(target, file, { batchSize: 30, clock: ticking });
    assert.equal(result.restored, 100);
    assert.deepEqual(await content(target), await content(src));
  });
});

Deno.test("backup and restore through the records store leave out and keep the job's own run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-backup-records-" });
  const clock = fakeClock(NOW);
  try {
    await using rt = await openRuntime({
      config: { stores: { default: { plugin: "memory" } } },
      home: dir,
      cwd: dir,
      clock,
    });
    const store = await rt.store();
    await seed(store, 50);
    await rt.runFlow({ id: "hello", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
    const before = await content(store);
    const backup = await runJob(rt, "backup", { progress: "quiet" });
    assert.equal(backup.status, "succeeded", backup.error?.message);
    const file = (backup.outputs?.files as unknown as BackupInfo[])[0].file;
    const lines = (await Array.fromAsync(readGzipLines(file))).slice(1, -1).map((l) =>
      JSON.parse(l)
    );
    assert.deepEqual(lines, before, "the backup run's own record is not in the backup");

    await store.set(["after", "backup"], true);
    const restore = await runJob(rt, "restore", {
      options: { file, store: "default", force: true },
      progress: "quiet",
    });
    assert.equal(restore.status, "succeeded", restore.error?.message);
    const own = (key: Key) =>
      key[0] === "flowstate" &&
      (key.includes(restore.id) || (key[1] === "metrics" && key[2] === "job:restore"));
    assert.deepEqual(await content(store, own), before);
    assert.equal((await (await rt.records()).getRun(restore.id))?.status, "succeeded");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("restore survives kill -9 mid-write: a rerun completes it, with or without force", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-restore-kill-" });
  try {
    const source = await openStore({ plugin: "memory" });
    await seed(source, 4000);
    const expected = await content(source);
    const file = join(dir, "b.fsbackup");
    await backupStore(source, file);
    const child = join(dir, "child.ts");
    await Deno.writeTextFile(
      child,
      `import { openStore } from ${
        JSON.stringify(new URL("../src/plugin.ts", import.meta.url).href)
      };
import { restoreBackup } from ${JSON.stringify(new URL("./restore.ts", import.meta.url).href)};
const [file, db] = Deno.args;
const store = await openStore({ plugin: "sqlite", path: db, durability: "full" }, { home: ${
        JSON.stringify(dir)
      } });
let label = "";
await restoreBackup(store, file, {
  batchSize: 25,
  progress: {
    state: { label: "", done: 0, total: undefined },
    start(l) { label = l; },
    advance() {},
    update(done) { if (label.startsWith("restore into")) console.log("done " + done); },
    finish() {},
  },
});
console.log("finished");
`,
    );
    for (const rerunWithForce of [false, true]) {
      const db = join(dir, `target-${rerunWithForce}.db`);
      const proc = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--config",
          fileURLToPath(new URL("../deno.json", import.meta.url)),
          "--allow-read",
          "--allow-write",
          "--allow-env",
          child,
          file,
          db,
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      let seen = "";
      const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += value;
        const last = [...seen.matchAll(/done (\d+)/g)].at(-1);
        if (last && Number(last[1]) >= 500) {
          proc.kill("SIGKILL");
          break;
        }
      }
      reader.releaseLock();
      await proc.stdout.cancel().catch(() => {});
      const status = await proc.status;
      const errors = await new Response(proc.stderr).text();
      assert.equal(
        status.signal,
        "SIGKILL",
        `the child was killed mid-restore (stdout: ${seen}; stderr: ${errors})`,
      );
      assert.doesNotMatch(seen, /finished/);

      await using target = await openStore({ plugin: "sqlite", path: db }, { home: dir });
      const marker = await target.get<RestoreMarker>(RESTORE_MARKER_KEY);
      assert.ok(marker !== null, "the marker says the restore is unfinished");
      assert.ok(marker.value.done >= 500 && marker.value.done < 4000, `done ${marker.value.done}`);
      assert.ok((await target.count()) < 4000);

      const result = await restoreBackup(target, file, { force: rerunWithForce, batchSize: 500 });
      assert.equal(result.cancelled, false);
      if (rerunWithForce) {
        assert.equal(result.resumedFrom, 0);
        assert.ok(result.cleared > 0);
      } else {
        assert.equal(result.resumedFrom, marker.value.done);
        assert.equal(result.restored, 4000 - marker.value.done);
      }
      assert.equal(await target.get(RESTORE_MARKER_KEY), null);
      assert.deepEqual(await content(target), expected);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- command bodies ---------------------------------------------------------

async function captureStdout(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...args: unknown[]) => lines.push(args.join(" "));
  console.error = () => {};
  try {
    return { code: await fn(), out: lines.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("backupCommand() and restoreCommand() write, refuse and force with the documented exit codes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-backup-cli-" });
  try {
    const config = join(dir, "flowstate.yaml");
    await Deno.writeTextFile(
      config,
      `home: .home\nstores:\n  default: { plugin: sqlite, path: state.db }\n  copy: { plugin: jsonfile, path: copy.json }\n`,
    );
    const global = { config };
    {
      await using rt = await openRuntime({ config, cwd: dir });
      await seed(await rt.store("default"), 25);
    }
    const out = join(dir, "b.fsbackup");
    const backup = await captureStdout(() => backupCommand({ out, json: true }, global));
    assert.equal(backup.code, 0);
    const written = JSON.parse(backup.out);
    assert.equal(written.files[0].file, out);
    assert.equal(written.files[0].entries, 25);
    assert.equal(written.entries, 25);

    const again = await captureStdout(() => backupCommand({ out }, global));
    assert.equal(again.code, 1, "an existing --out file is not overwritten");

    await assert.rejects(backupCommand({ store: "default", all: true }, global), UsageError);
    await assert.rejects(backupCommand({ store: "nope" }, global), UsageError);
    await assert.rejects(
      restoreCommand(join(dir, "missing"), { store: "copy" }, global),
      UsageError,
    );
    await assert.rejects(restoreCommand(out, { store: "nope" }, global), UsageError);

    const restored = await captureStdout(() =>
      restoreCommand(out, { store: "copy", json: true }, global)
    );
    assert.equal(restored.code, 0);
    assert.equal(JSON.parse(restored.out).restored, 25);
    const refused = await captureStdout(() => restoreCommand(out, { store: "copy" }, global));
    assert.equal(refused.code, 1);
    const forced = await captureStdout(() =>
      restoreCommand(out, { store: "copy", force: true, json: true }, global)
    );
    assert.equal(forced.code, 0);
    assert.equal(JSON.parse(forced.out).cleared, 25);

    const all = await captureStdout(() =>
      backupCommand({ all: true, out: join(dir, "all"), json: true }, global)
    );
    assert.equal(all.code, 0);
    assert.deepEqual(JSON.parse(all.out).files.map((f: BackupInfo) => f.store), [
      "default",
      "copy",
    ]);
    assert.equal((await listDir(join(dir, "all"))).length, 4);
    {
      await using rt = await openRuntime({ config, cwd: dir });
      assert.deepEqual(
        await content(await rt.store("copy")),
        await content(await rt.store("default")),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("restore job resuming a killed restore records the killed run as failed", async () => {
  await withEnv(async (env) => {
    const src = await env.rt.store("src");
    await seed(src, 10);
    const file = await backupOf(env, "src");
    const { sha256 } = await verifyBackup(file);
    // What a restore job killed before its first batch leaves behind.
    const records = await env.rt.records();
    const killedId = newRunId(env.rt.clock.now());
    await records.startRun({
      id: killedId,
      flowId: "job:restore",
      flowVersion: "job",
      status: "running",
      inputs: {},
      outputs: null,
      startedAt: NOW,
      endedAt: null,
      durationMs: null,
      nodes: {},
      error: null,
    });
    const target = await env.rt.store("mem");
    const marker: RestoreMarker = {
      file,
      sha256,
      entries: 10,
      done: 0,
      startedAt: new Date(NOW).toISOString(),
      runId: killedId,
    };
    await target.set(RESTORE_MARKER_KEY, marker as unknown as JsonValue);

    const run = await restoreInto(env, file, "mem");
    assert.equal(run.status, "succeeded", run.error?.message);
    assert.equal(run.outputs?.interruptedRunId, killedId);
    assert.deepEqual(await content(target), await content(src));
    const killed = await records.getRun(killedId);
    assert.equal(killed?.status, "failed");
    assert.equal(
      killed?.error?.message,
      `interrupted before it finished; completed by run ${run.id}`,
    );
  });
});
