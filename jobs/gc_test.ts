import assert from "node:assert/strict";
import { join, relative } from "node:path";
import type { JobContext } from "../src/jobs/job.ts";
import { createProgress } from "../src/jobs/progress.ts";
import { resolveJobOptions, runJob } from "../src/jobs/run.ts";
import type { StoreSpec } from "../src/plugin.ts";
import { openRuntime, type Runtime } from "../src/runtime.ts";
import type { Entry, Store } from "../src/store/types.ts";
import { type FakeClock, fakeClock } from "../src/testing/clock.ts";
import gc, { defaults, type GcOptions, type GcResult } from "./gc.ts";
import { newRunId } from "../src/records/run_id.ts";
import { exitOf, killQuietly, within } from "../tests/_deadline.ts";

const HOUR = 3_600_000;

interface Env {
  dir: string;
  rt: Runtime;
  clock: FakeClock;
}

async function withEnv(
  stores: Record<string, StoreSpec>,
  fn: (env: Env) => Promise<void>,
): Promise<void> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "flowstate-gc-" }));
  // Now, so that file times (real) and the job's clock agree; time never moves by itself.
  const clock = fakeClock(Date.now());
  const rt = await openRuntime({ config: { stores }, home: dir, cwd: dir, clock });
  try {
    await fn({ dir, rt, clock });
  } finally {
    await rt.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function jobContext(rt: Runtime, options: { dryRun?: boolean; signal?: AbortSignal } = {}) {
  const ctx: JobContext = {
    jobName: "gc",
    runId: "test",
    runtime: rt,
    store: (name) => rt.store(name),
    records: () => rt.records(),
    home: rt.home,
    log: () => {},
    progress: createProgress({ mode: "quiet" }),
    signal: options.signal ?? new AbortController().signal,
    clock: rt.clock,
    dryRun: options.dryRun ?? false,
  };
  return ctx;
}

/** Only the parts named in `options` (every part is off unless given). */
async function collect(
  rt: Runtime,
  options: Partial<GcOptions>,
  context: { dryRun?: boolean; signal?: AbortSignal } = {},
): Promise<GcResult> {
  const resolved = await resolveJobOptions(gc, {}, {
    expired: false,
    tempFiles: false,
    compact: false,
    changes: false,
    ...options,
  });
  return await gc.run(jobContext(rt, context), resolved) as GcResult;
}

async function dumpStores(rt: Runtime): Promise<Record<string, Entry[]>> {
  const out: Record<string, Entry[]> = {};
  for (const name of rt.storeNames) {
    out[name] = await Array.fromAsync((await rt.store(name)).list());
  }
  return out;
}

/** Every file under `dir` with its size and modification time. */
async function dumpFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const path = join(d, e.name);
      if (e.isDirectory) await walk(path);
      else {
        const info = await Deno.lstat(path);
        out.push(`${relative(dir, path)} ${info.size} ${info.mtime?.getTime()}`);
      }
    }
  };
  await walk(dir);
  return out.sort();
}

/** A pid that belonged to a process which has exited. */
async function deadPid(): Promise<number> {
  const child = new Deno.Command("true", { stdout: "null", stderr: "null" }).spawn();
  await exitOf(child);
  return child.pid;
}

/** Write a file and set its modification time `ageMs` before `now`. */
async function writeAged(path: string, text: string, now: number, ageMs: number): Promise<void> {
  await Deno.writeTextFile(path, text);
  const t = new Date(now - ageMs);
  await Deno.utime(path, t, t);
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

// ---------------------------------------------------------------------------
// Expired entries

Deno.test("gc removes expired entries in every store and reports them per store", async () => {
  await withEnv({
    mem: { plugin: "memory" },
    docs: { plugin: "jsonfile", path: "docs.json", durability: "relaxed" },
  }, async ({ dir, rt, clock }) => {
    for (const name of ["mem", "docs"]) {
      const store = await rt.store(name);
      await store.set(["session", "a"], 1, { expireIn: 1000 });
      await store.set(["session", "b"], 2, { expireIn: 1000 });
      await store.set(["session", "c"], 3, { expireIn: 10_000 });
      await store.set(["keep"], 4);
    }
    clock.advance(5000);
    const dry = await collect(rt, { expired: true }, { dryRun: true });
    assert.equal(dry.expiredRemoved, null, "a dry run cannot see expired entries");
    assert.equal(JSON.parse(await Deno.readTextFile(join(dir, "docs.json"))).entries.length, 4);

    const result = await collect(rt, { expired: true });
    assert.equal(result.expiredRemoved, 4);
    assert.equal(result.stores.mem.expiredRemoved, 2);
    assert.equal(result.stores.docs.expiredRemoved, 2);
    const file = JSON.parse(await Deno.readTextFile(join(dir, "docs.json")));
    assert.deepEqual(file.entries.map((e: { key: string[] }) => e.key), [["keep"], [
      "session",
      "c",
    ]]);
    assert.equal(
      (await collect(rt, { expired: true })).expiredRemoved,
      0,
      "nothing left to remove",
    );
    assert.equal((await (await rt.store("mem")).get(["session", "c"]))?.value, 3);
  });
});

Deno.test("gc removes expired entries from a sqlite store's file (needs sqlite's native purgeExpired)", async () => {
  await withEnv({ default: { plugin: "sqlite", path: "state.db" } }, async ({ dir, rt, clock }) => {
    const store = await rt.store();
    for (let i = 0; i < 10; i++) await store.set(["tmp", String(i)], i, { expireIn: 1000 });
    await store.set(["keep"], true);
    clock.advance(2000);
    const result = await collect(rt, { expired: true });
    assert.equal(result.expiredRemoved, 10);
    await rt.close();
    const { DatabaseSync } = await import("node:sqlite");
    const db = new DatabaseSync(join(dir, "state.db"), { readOnly: true });
    try {
      const row = db.prepare("SELECT count(*) AS n FROM flowstate_entries").get() as { n: number };
      assert.equal(row.n, 1, "the expired rows are gone from the file");
    } finally {
      db.close();
    }
  });
});

// ---------------------------------------------------------------------------
// Orphaned state

const FLOW_V1 = {
  id: "keep",
  nodes: [
    { id: "a", type: "state.set", with: { scope: "node", key: "k", value: 1 } },
    { id: "b", type: "state.set", with: { scope: "node", key: "k", value: 2 } },
    { id: "c", type: "state.set", with: { scope: "flow", key: "shared", value: 3 } },
  ],
};
const FLOW_V2 = { id: "keep", nodes: [FLOW_V1.nodes[0], FLOW_V1.nodes[2]] };

async function seedOrphans(rt: Runtime): Promise<void> {
  assert.equal((await rt.runFlow(FLOW_V1)).status, "succeeded");
  assert.equal((await rt.runFlow(FLOW_V2)).status, "succeeded");
  const records = await rt.records();
  assert.equal((await records.listVersions("keep")).length, 2);
  const store = await rt.store();
  await store.set(["flow", "gone", "x"], 1);
  await store.set(["flow", "gone", "y", "z"], 2);
  await store.set(["node", "gone", "n", "x"], 3);
  await store.set(["flow", "configured", "x"], 4);
  await store.set(["node", "configured", "n", "x"], 5);
  await store.set(["global", "x"], 6);
  const other = await rt.store("other");
  await other.set(["node", "keep", "b", "elsewhere"], 7);
  await other.set(["node", "keep", "a", "elsewhere"], 8);
}

const ORPHAN_STORES: Record<string, StoreSpec> = {
  default: { plugin: "memory" },
  other: { plugin: "sqlite", path: "other.db", durability: "relaxed" },
};

const EXPECTED_ORPHANS = [
  { store: "default", prefix: ["flow", "gone"], keys: 2, reason: "flow" },
  { store: "default", prefix: ["node", "gone"], keys: 1, reason: "flow" },
  { store: "default", prefix: ["node", "keep", "b"], keys: 1, reason: "node" },
  { store: "other", prefix: ["node", "keep", "b"], keys: 1, reason: "node" },
];

Deno.test("gc orphans: a node dropped by the flow's new version is orphaned, a kept node is not; dry run lists without deleting", async () => {
  await withEnv(ORPHAN_STORES, async ({ rt }) => {
    await seedOrphans(rt);
    const before = await dumpStores(rt);
    assert.ok(before.default.some((e) => e.key.join("/") === "node/keep/b/k"));

    const dry = await collect(rt, { orphans: true, knownFlows: ["configured"] }, { dryRun: true });
    assert.deepEqual(await dumpStores(rt), before, "a dry run changes nothing");
    assert.deepEqual(dry.orphans, EXPECTED_ORPHANS);
    assert.equal(dry.orphanKeys, 5);

    const result = await collect(rt, { orphans: true, knownFlows: ["configured"] });
    assert.deepEqual(result.orphans, EXPECTED_ORPHANS);
    assert.equal(result.orphanKeys, 5);
    assert.equal(result.stores.default.orphanKeys, 4);
    assert.equal(result.stores.other.orphanKeys, 1);
    const orphaned = (name: string, key: readonly string[]) =>
      EXPECTED_ORPHANS.some((o) => o.store === name && o.prefix.every((p, i) => key[i] === p));
    const after = await dumpStores(rt);
    for (const name of Object.keys(before)) {
      assert.deepEqual(after[name], before[name].filter((e) => !orphaned(name, e.key)), name);
    }
    // What stays: node a's state, the flow's own state, a configured flow's, global state, records.
    const keys = after.default.map((e) => e.key.join("/"));
    for (
      const k of [
        "node/keep/a/k",
        "flow/keep/shared",
        "flow/configured/x",
        "node/configured/n/x",
        "global/x",
      ]
    ) {
      assert.ok(keys.includes(k), `${k} was kept`);
    }
  });
});

Deno.test("gc leaves orphaned state alone unless orphans is true", async () => {
  await withEnv(ORPHAN_STORES, async ({ rt }) => {
    await seedOrphans(rt);
    const before = await dumpStores(rt);
    const result = await runJob(rt, "gc", { progress: "quiet", options: { tempFiles: false } });
    assert.equal(result.status, "succeeded", JSON.stringify(result.error));
    assert.equal(result.outputs?.orphanKeys, 0);
    const after = await dumpStores(rt);
    // Only the job's own run record was added to the records (in the default store).
    const notRecords = (entries: Entry[]) => entries.filter((e) => e.key[0] !== "flowstate");
    assert.deepEqual(notRecords(after.default), notRecords(before.default));
    assert.deepEqual(after.other, before.other);
  });
});

Deno.test("gc orphans: a flow saved after the scan started is not cleared", async () => {
  await withEnv({ default: { plugin: "memory" } }, async ({ rt }) => {
    const store = await rt.store();
    await store.set(["flow", "late", "x"], 1);
    const records = await rt.records();
    // The flow's first version is saved between the scan and the clear.
    const original = store.count.bind(store);
    (store as { count: Store["count"] }).count = async (prefix) => {
      const n = await original(prefix);
      if (prefix?.[1] === "late") {
        await records.saveVersion({
          id: "late",
          nodes: [{ id: "n", type: "log", with: { message: "hi" } }],
        });
      }
      return n;
    };
    try {
      const result = await collect(rt, { orphans: true });
      assert.deepEqual(result.orphans, []);
      assert.equal((await store.get(["flow", "late", "x"]))?.value, 1);
    } finally {
      (store as { count: Store["count"] }).count = original;
    }
  });
});

// ---------------------------------------------------------------------------
// Temp and lock files

/** What a jsonfile lock holder writes as the lock file's first line. */
function holderLine(pid: number, hostname = Deno.hostname()): string {
  return `${JSON.stringify({ pid, hostname, since: new Date().toISOString() }).padEnd(255)}\n`;
}

/** A child process that holds `path`'s lock (`flock`), as a jsonfile store does during a write. */
async function holdLock(path: string, line: string): Promise<Deno.ChildProcess> {
  const code = `
    const file = Deno.openSync(Deno.args[0], { read: true, write: true, create: true });
    file.lockSync(true);
    file.writeSync(new TextEncoder().encode(Deno.args[1]));
    console.log("locked");
    setInterval(() => {}, 60_000);`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", code, path, line],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await within(reader.read(), "the lock holder to say it holds the lock", {
    onHang: () => killQuietly(child),
  });
  reader.releaseLock();
  assert.equal(new TextDecoder().decode(value).trim(), "locked");
  return child;
}

async function stop(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGKILL");
  } catch { /* already gone */ }
  await exitOf(child);
  await child.stdout.cancel().catch(() => {});
}

Deno.test("gc removes old temp and lock files of dead processes, never a held lock or a live process's", async () => {
  await withEnv(
    { docs: { plugin: "jsonfile", path: "docs.json", durability: "relaxed" } },
    async ({ dir, rt, clock }) => {
      const live = new Deno.Command("sleep", { args: ["60"], stdout: "null", stderr: "null" })
        .spawn();
      const heldPath = join(dir, "busy.json.lock");
      const dead = await deadPid();
      // Held by a live process, though its first line names a dead one.
      const holder = await holdLock(heldPath, holderLine(dead));
      // Files are aged by moving the job's clock forward, not by back-dating them: a file
      // back-dated to before its live writer started would (rightly) count as a reused pid's.
      clock.advance(24 * HOUR);
      const now = clock.now();
      try {
        // A real store: its lock file stays while it is open (this process, alive).
        await (await rt.store("docs")).set(["a"], 1);
        const docsLock = join(dir, "docs.json.lock");
        assert.ok(await exists(docsLock));
        const aged = new Date(now - 5 * HOUR);
        await Deno.utime(docsLock, aged, aged);
        await Deno.utime(heldPath, aged, aged);

        await Deno.mkdir(join(dir, "archives", "2026"), { recursive: true });
        const files = {
          deadTemp: join(dir, `.state.json.tmp-${dead}-0a1b2c3d`),
          deadTempNested: join(dir, "archives", "2026", `.runs.tar.tmp-${dead}-deadbeef`),
          youngDeadTemp: join(dir, `.other.json.tmp-${dead}-12345678`),
          liveTemp: join(dir, `.big.json.tmp-${live.pid}-abcdef01`),
          ownTemp: join(dir, `.mine.json.tmp-${Deno.pid}-abcdef02`),
          deadLock: join(dir, "old.json.lock"),
          liveLock: join(dir, "open.json.lock"),
          heldLock: heldPath,
          docsLock,
          otherHostLock: join(dir, "remote.json.lock"),
          foreignLock: join(dir, "notes.lock"),
          youngDeadLock: join(dir, "fresh.json.lock"),
          wal: join(dir, "state.db-wal"),
          corrupt: join(dir, "state.json.corrupt-20260101T000000000Z"),
        };
        await writeAged(files.deadTemp, "{}", now, 2 * HOUR);
        await writeAged(files.deadTempNested, "x", now, 3 * HOUR);
        await writeAged(files.youngDeadTemp, "{}", now, 10 * 60_000);
        await writeAged(files.liveTemp, "{}", now, 2 * HOUR);
        await writeAged(files.ownTemp, "{}", now, 2 * HOUR);
        await writeAged(files.deadLock, holderLine(dead), now, 2 * HOUR);
        await writeAged(files.liveLock, holderLine(live.pid), now, 3 * HOUR);
        await writeAged(files.otherHostLock, holderLine(dead, "elsewhere.example"), now, 5 * HOUR);
        await writeAged(files.foreignLock, "locked by an editor", now, 5 * HOUR);
        await writeAged(files.youngDeadLock, holderLine(dead), now, 30 * 60_000);
        await writeAged(files.wal, "wal", now, 5 * HOUR);
        await writeAged(files.corrupt, "{", now, 5 * HOUR);

        const before = await dumpFiles(dir);
        const dry = await collect(rt, { tempFiles: true }, { dryRun: true });
        assert.deepEqual(await dumpFiles(dir), before, "a dry run removes nothing");

        const result = await collect(rt, { tempFiles: true });
        const removed = [files.deadTempNested, files.deadTemp, files.deadLock]
          .map((p) => relative(dir, p)).sort();
        assert.deepEqual([...result.tempFiles].sort(), removed);
        assert.deepEqual([...dry.tempFiles].sort(), removed);
        assert.equal(result.tempFilesRemoved, 3);
        for (const [name, path] of Object.entries(files)) {
          assert.equal(await exists(path), !removed.includes(relative(dir, path)), name);
        }
        // The open jsonfile store still works.
        await (await rt.store("docs")).set(["b"], 2);

        // Once their processes are gone, the held lock and the live process's files go too.
        await stop(holder);
        live.kill("SIGKILL");
        await exitOf(live);
        const later = await collect(rt, { tempFiles: true });
        assert.deepEqual(
          [...later.tempFiles].sort(),
          [files.liveTemp, files.heldLock, files.liveLock].map((p) => relative(dir, p)).sort(),
        );
      } finally {
        await stop(holder);
        try {
          live.kill("SIGKILL");
        } catch { /* already gone */ }
        await exitOf(live);
      }
    },
  );
});

const procReadable = await Deno.readTextFile(`/proc/${Deno.pid}/stat`).then(
  () => true,
  () => false,
);

const REUSED_PID_TEST =
  "gc takes a temp file older than its pid's live process for a reused pid's (needs /proc)";

Deno.test({
  name: REUSED_PID_TEST,
  // Without --allow-all Deno cannot read /proc (a live pid then always keeps its files), so
  // under the suite's permissions this test runs itself again in a child `deno test -A`.
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    if (!procReadable) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "test",
          "-A",
          "--unstable-worker-options",
          "--filter",
          REUSED_PID_TEST,
          import.meta.filename!,
        ],
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.ok(out.success && /ok \| 1 passed \| 0 failed/.test(text), text);
      return;
    }
    await withEnv({ default: { plugin: "memory" } }, async ({ dir, rt, clock }) => {
      const live = new Deno.Command("sleep", { args: ["60"], stdout: "null", stderr: "null" })
        .spawn();
      try {
        const path = join(dir, `.state.json.tmp-${live.pid}-00c0ffee`);
        // Written two hours before the process with that pid started.
        await writeAged(path, "{}", clock.now(), 2 * HOUR);
        const result = await collect(rt, { tempFiles: true });
        assert.deepEqual(result.tempFiles, [relative(dir, path)]);
      } finally {
        live.kill("SIGKILL");
        await exitOf(live);
      }
    });
  },
});

// ---------------------------------------------------------------------------
// Compaction and disk space

Deno.test("gc reports compact as unsupported for a memory store", async () => {
  await withEnv({ mem: { plugin: "memory" } }, async ({ rt }) => {
    const result = await collect(rt, { compact: true });
    assert.deepEqual(result.stores.mem.compact, {
      supported: false,
      bytesBefore: 0,
      bytesAfter: 0,
    });
    assert.equal(result.bytesFreed, 0);
    const dry = await collect(rt, { compact: true }, { dryRun: true });
    assert.equal(dry.stores.mem.compact, null);
  });
});

Deno.test("gc shrinks a ~20 MB sqlite store by at least 80% on disk after 90% of it was deleted (needs sqlite's native compact)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-gc-disk-" });
  const path = join(dir, "state.db");
  const config = { stores: { default: { plugin: "sqlite", path, durability: "relaxed" } } };
  try {
    const payload = (i: number) => `${i}:`.padEnd(1000, String.fromCharCode(97 + (i % 26)));
    let rt = await openRuntime({ config, home: dir, cwd: dir });
    let store = await rt.store();
    for (let i = 0; i < 20_000;) {
      const op = store.atomic();
      for (let j = 0; j < 2000; j++, i++) op.set(["data", String(i).padStart(6, "0")], payload(i));
      assert.ok((await op.commit()).ok);
    }
    await rt.close(); // the last connection checkpoints the WAL into the file
    const full = (await Deno.stat(path)).size;
    assert.ok(full >= 19_000_000, `grown to ${full} bytes`);

    rt = await openRuntime({ config, home: dir, cwd: dir });
    store = await rt.store();
    for (let i = 0; i < 20_000;) {
      const op = store.atomic();
      for (let j = 0; j < 2000; j++, i++) {
        if (i % 10 !== 0) op.delete(["data", String(i).padStart(6, "0")]);
      }
      assert.ok((await op.commit()).ok);
    }
    assert.equal(await store.count(["data"]), 2000);
    const run = await runJob(rt, "gc", { progress: "quiet" });
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    const compact = (run.outputs?.stores as Record<string, GcResult["stores"][string]>).default
      .compact;
    assert.equal(compact?.supported, true, "sqlite's compact() is supported");
    await rt.close();
    const after = (await Deno.stat(path)).size;
    assert.ok(
      after <= full * 0.2,
      `the file shrank from ${full} to ${after} bytes (${Math.round((1 - after / full) * 100)}%)`,
    );
    rt = await openRuntime({ config, home: dir, cwd: dir });
    assert.equal(await (await rt.store()).count(["data"]), 2000, "what was kept is intact");
    assert.equal((await (await rt.store()).get(["data", "019990"]))?.value, payload(19_990));
    await rt.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// The whole job

Deno.test("gc dry run with every part on changes no store and no file", async () => {
  await withEnv(ORPHAN_STORES, async ({ dir, rt, clock }) => {
    await seedOrphans(rt);
    await (await rt.store()).set(["soon"], 1, { expireIn: 1000 });
    await writeAged(
      join(dir, `.x.json.tmp-${await deadPid()}-00000000`),
      "{}",
      clock.now(),
      2 * HOUR,
    );
    clock.advance(2000);
    const stores = await dumpStores(rt);
    const files = await dumpFiles(dir);
    const result = await collect(rt, {
      expired: true,
      orphans: true,
      tempFiles: true,
      compact: true,
    }, {
      dryRun: true,
    });
    assert.equal(result.dryRun, true);
    assert.equal(result.orphanKeys, 7); // EXPECTED_ORPHANS plus "configured", not known here
    assert.equal(result.tempFilesRemoved, 1);
    assert.deepEqual(await dumpStores(rt), stores);
    assert.deepEqual(await dumpFiles(dir), files);
  });
});

Deno.test("runJob(gc) records job:gc with its defaults; a store that cannot open fails the run after the others", async () => {
  await withEnv({
    good: { plugin: "memory" },
    broken: { plugin: "sqlite", path: "not-a-db.db" },
  }, async ({ dir, rt, clock }) => {
    await Deno.writeTextFile(join(dir, "not-a-db.db"), "this is not sqlite");
    const good = await rt.store("good");
    await good.set(["x"], 1, { expireIn: 10 });
    clock.advance(100);
    const logs: string[] = [];
    const run = await runJob(rt, "gc", {
      progress: "quiet",
      configOptions: { stores: ["good", "broken"] },
      onLog: (message, level) => logs.push(`${level}: ${message}`),
    });
    assert.equal(run.flowId, "job:gc");
    assert.equal(run.status, "failed");
    assert.match(
      run.error?.message ?? "",
      /^Cannot finish gc: store "broken": .*not a SQLite database/,
    );
    assert.deepEqual(run.inputs, { ...defaults, stores: ["good", "broken"] });
    assert.ok(logs.includes('info: store "good": 1 expired entries removed'), logs.join("\n"));
    assert.ok(logs.some((l) => l.startsWith('error: store "broken": ')), logs.join("\n"));
    assert.equal(gc.defaultSchedule, "30 3 * * *");

    const ok = await runJob(rt, "gc", { progress: "quiet", options: { stores: ["good"] } });
    assert.equal(ok.status, "succeeded", JSON.stringify(ok.error));
    assert.deepEqual(Object.keys(ok.outputs?.stores as object), ["good"]);

    const unknown = await runJob(rt, "gc", { progress: "quiet", options: { stores: ["nope"] } });
    assert.equal(unknown.status, "failed");
    assert.match(
      unknown.error?.message ?? "",
      /no such store; the configured stores are "good", "broken"/,
    );
  });
});

Deno.test("gc stops when cancelled", async () => {
  await withEnv({ a: { plugin: "memory" }, b: { plugin: "memory" } }, async ({ rt }) => {
    const controller = new AbortController();
    controller.abort();
    const result = await collect(rt, { expired: true, tempFiles: true, compact: true }, {
      signal: controller.signal,
    });
    assert.equal(result.cancelled, true);
    assert.equal(result.stores.a.compact, null);
  });
});

Deno.test("gc records runs without heartbeat (older versions) by their age, past a day at least", async () => {
  await withEnv({ main: { plugin: "memory" } }, async ({ rt, clock }) => {
    const records = await rt.records();
    const start = async (flowId: string) => {
      const id = newRunId(clock.now());
      await records.startRun({
        id,
        flowId,
        flowVersion: "v",
        status: "running",
        inputs: {},
        outputs: null,
        startedAt: clock.now(),
        endedAt: null,
        durationMs: null,
        nodes: {},
        error: null,
      });
      return id;
    };
    const crashed = await start("old");
    clock.advance(3 * 86_400_000);
    const recent = await start("young");
    clock.advance(3600_000);
    const off = await gc.run(
      jobContext(rt),
      await resolveJobOptions(gc, {}, { abandonedAfter: null }),
    );
    assert.equal(off.abandonedRuns, 0, "off when null");
    const byDefault = await gc.run(
      jobContext(rt, { dryRun: true }),
      await resolveJobOptions(gc, {}, {}),
    );
    assert.equal(byDefault.abandonedRuns, 1, "on by default: a run without heartbeat after a day");
    const options = await resolveJobOptions(gc, {}, {
      abandonedAfter: "2d",
      expired: false,
      tempFiles: false,
      compact: false,
    });
    const dry = await gc.run(jobContext(rt, { dryRun: true }), options);
    assert.equal(dry.abandonedRuns, 1);
    assert.equal((await records.getRun(crashed))?.status, "running", "a dry run changes nothing");
    const result = await gc.run(jobContext(rt), options);
    assert.equal(result.abandonedRuns, 1);
    const marked = await records.getRun(crashed);
    assert.equal(marked?.status, "failed");
    assert.match(
      marked?.error?.message ?? "",
      /^abandoned: still recorded as running .* older version/,
    );
    assert.equal((await records.getRun(recent))?.status, "running", "a recent run is left alone");
    assert.equal((await records.getMetrics("old"))?.failed, 1);
  });
});

Deno.test("gc puts a queued run whose worker died back in the queue, never records it abandoned", async () => {
  await withEnv({ main: { plugin: "memory" } }, async ({ rt, clock }) => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(
        join(dir, "q.flow.yaml"),
        "id: q\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n",
      );
      const { runId } = await rt.enqueue(join(dir, "q.flow.yaml"));
      const records = await rt.records();
      // A worker claims it and dies: no heartbeat, no end.
      const claimed = await records.claimRun({ worker: "dead", leaseMs: 30_000 });
      assert.equal(claimed?.id, runId);
      clock.advance(10 * 60_000);
      const options = await resolveJobOptions(gc, {}, {
        expired: false,
        tempFiles: false,
        compact: false,
      });
      const dry = await gc.run(jobContext(rt, { dryRun: true }), options);
      assert.deepEqual([dry.abandonedRuns, dry.requeuedRuns], [0, 0]);
      assert.equal((await records.getRun(runId))?.status, "running", "a dry run changes nothing");
      const result = await gc.run(jobContext(rt), options);
      assert.deepEqual([result.abandonedRuns, result.requeuedRuns], [0, 1]);
      const run = await records.getRun(runId);
      assert.equal(run?.status, "queued");
      assert.deepEqual(run?.queue?.attempts.map((a) => a.outcome), ["lost"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

// ---------------------------------------------------------------------------
// Change feeds

Deno.test("gc trims each store's change feed by its retention, and leaves a store without one alone", async () => {
  await withEnv({
    audited: { plugin: "sqlite", path: "audited.db", changes: { keep: { age: "1h", count: 4 } } },
    plain: { plugin: "memory" },
  }, async ({ rt, clock }) => {
    const store = await rt.store("audited");
    for (let i = 0; i < 6; i++) await store.set(["k", String(i)], i);
    await (await rt.store("plain")).set(["x"], 1);
    const dry = await collect(rt, { changes: true }, { dryRun: true });
    assert.equal(dry.changesRemoved, null);
    assert.equal((await store.feedInfo()).firstSeq, 1, "a dry run trims nothing");

    const byCount = await collect(rt, { changes: true });
    assert.equal(byCount.changesRemoved, 2, "the two oldest of six, past count 4");
    assert.equal(byCount.stores.audited.changesRemoved, 2);
    assert.equal(byCount.stores.plain.changesRemoved, null, "no feed: nothing to trim");
    assert.deepEqual(await store.feedInfo(), {
      enabled: true,
      firstSeq: 3,
      lastSeq: 6,
      keep: { age: "1h", count: 4 },
    });

    clock.advance(2 * HOUR);
    await store.set(["k", "late"], 1);
    const byAge = await collect(rt, { changes: true });
    assert.equal(byAge.changesRemoved, 4, "every entry older than an hour");
    assert.deepEqual(
      (await Array.fromAsync(store.changes())).map((c) => c.seq),
      [7],
    );
    assert.equal((await store.get(["k", "5"]))?.value, 5, "the data itself is untouched");
  });
});
