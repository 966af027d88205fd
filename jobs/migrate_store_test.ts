import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime } from "../src/runtime.ts";
import { openStore } from "../src/plugin.ts";
import { runJob } from "../src/jobs/run.ts";
import type { Progress } from "../src/jobs/progress.ts";
import { type FakeClock, fakeClock } from "../src/testing/clock.ts";
import type { JsonValue, Key, Store } from "../src/store/types.ts";
import { UsageError } from "../src/cli/input.ts";
import { migrateStoreCommand } from "../src/cli/migrate.ts";
import { MigrationError } from "./migrate.ts";
import {
  CHECKPOINT_PREFIX,
  type MoveCheckpoint,
  moveStore,
  type MoveStoreResult,
} from "./migrate_store.ts";
import { exitOf, hangGuard } from "../tests/_deadline.ts";

const PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-sys"];

type Row = [Key, JsonValue, number | null];

async function rows(store: Store, skip: Key[] = []): Promise<Row[]> {
  const out: Row[] = [];
  for await (const e of store.list()) {
    if (skip.some((k) => JSON.stringify(k) === JSON.stringify(e.key))) continue;
    out.push([e.key, e.value, e.expiresAt]);
  }
  return out;
}

function valueFor(i: number): JsonValue {
  switch (i % 6) {
    case 0:
      return { n: i, name: `item ${i}`, tags: ["a", "b"], nested: { ok: true, at: null } };
    case 1:
      return `text ${i} — ünïcödé 🎉 \u2028 "quoted"`;
    case 2:
      return i * 1.5;
    case 3:
      return null;
    case 4:
      return [i, "x", { deep: [1, 2, { deeper: false }] }];
    default:
      return i % 2 === 0;
  }
}

/**
 * `n` entries under ["data", …] plus a few odd keys; every 7th expires in an
 * hour, and 5 more have already expired (they must not be copied).
 */
async function seed(store: Store, n: number, clock: FakeClock): Promise<number> {
  for (let start = 0; start < n; start += 1000) {
    const op = store.atomic();
    for (let i = start; i < Math.min(n, start + 1000); i++) {
      const key = ["data", String(i).padStart(6, "0")];
      op.set(key, valueFor(i), i % 7 === 0 ? { expireIn: 3_600_000 + i } : undefined);
    }
    await op.commit();
  }
  await store.set(["odd", "", "empty part"], 1);
  await store.set(["odd", "ключ", "\u0000nul"], { k: "v" });
  await store.set(["flowstate", "runs", "r1"], { status: "succeeded" });
  for (let i = 0; i < 5; i++) await store.set(["expired", String(i)], i, { expireIn: 10 });
  clock.advance(10);
  return n + 3;
}

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A progress stub that calls `onBatch` after each committed batch. */
function batchProgress(onBatch: (batches: number) => void): Progress {
  let batches = 0;
  let copying = false;
  const progress: Progress = {
    state: { label: "", done: 0, total: undefined },
    start(label) {
      copying = label.startsWith("Moving");
    },
    update() {},
    finish() {},
    advance(n = 1) {
      progress.state.done += n;
      if (copying) onBatch(++batches);
    },
  };
  return progress;
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-move-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function assertCompleted(result: MoveStoreResult, total: number): void {
  assert.equal(result.status, "completed");
  assert.equal(result.verified, true);
  assert.equal(result.total, total);
  assert.equal(result.count, total);
  assert.match(result.checksum ?? "", /^[0-9a-f]{32}$/);
  assert.equal(result.targetChecksum, result.checksum);
}

Deno.test("moveStore() moves memory to sqlite: same keys, values and expiry; new versions", async () => {
  await withTempDir(async (dir) => {
    const clock = fakeClock();
    await using source = await openStore({ plugin: "memory" }, { name: "old", clock });
    await using target = await openStore({ plugin: "sqlite", path: join(dir, "new.db") }, {
      name: "new",
      clock,
    });
    const live = await seed(source, 2500, clock);
    const lines: string[] = [];
    const result = await moveStore(source, target, { clock, log: (m) => lines.push(m) });
    assertCompleted(result, live);
    assert.equal(result.copied, live);
    assert.equal(result.batches, 3);
    assert.equal(result.resumed, false);
    assert.equal(result.expiryAdjusted, 0);
    assert.deepEqual(await rows(target), await rows(source));
    assert.equal(await target.get([...CHECKPOINT_PREFIX, "old"]), null, "checkpoint deleted");
    assert.equal(await target.get(["expired", "0"]), null);
    const [a, b] = [await source.get(["data", "000007"]), await target.get(["data", "000007"])];
    assert.equal(b?.expiresAt, a?.expiresAt, "expiry preserved exactly with one clock");
    assert.notEqual(b?.version, a?.version, "versions are new on the target");
    assert.match(lines.at(-1)!, /^Moved 2503 entries from "old" to "new" and verified them/);
  });
});

Deno.test("moveStore() moves sqlite to jsonfile and leaves the source file byte-identical", async () => {
  await withTempDir(async (dir) => {
    const clock = fakeClock();
    const path = join(dir, "old.db");
    {
      await using seeded = await openStore({ plugin: "sqlite", path }, { name: "old", clock });
      await seed(seeded, 1200, clock);
    }
    const before = await sha256(path);
    {
      await using source = await openStore({ plugin: "sqlite", path }, { name: "old", clock });
      await using target = await openStore(
        { plugin: "jsonfile", path: join(dir, "new.json"), durability: "relaxed" },
        { name: "new", clock },
      );
      const result = await moveStore(source, target, { clock, batchSize: 500 });
      assertCompleted(result, 1203);
      assert.equal(result.batches, 3);
      assert.deepEqual(await rows(target), await rows(source));
    }
    assert.equal(await sha256(path), before, "the source file did not change");
  });
});

Deno.test("moveStore() moves jsonfile to memory and leaves the source file byte-identical", async () => {
  await withTempDir(async (dir) => {
    const clock = fakeClock();
    const path = join(dir, "old.json");
    {
      await using seeded = await openStore({ plugin: "jsonfile", path }, { name: "old", clock });
      await seed(seeded, 700, clock);
    }
    const before = await sha256(path);
    {
      await using source = await openStore({ plugin: "jsonfile", path }, { name: "old", clock });
      await using target = await openStore({ plugin: "memory" }, { name: "new", clock });
      const result = await moveStore(source, target, { clock, batchSize: 300 });
      assertCompleted(result, 703);
      assert.deepEqual(await rows(target), await rows(source));
    }
    assert.equal(await sha256(path), before, "the source file did not change");
  });
});

Deno.test("moveStore() refuses a target that is not empty unless forced", async () => {
  const clock = fakeClock();
  await using source = await openStore({ plugin: "memory" }, { name: "old", clock });
  await using target = await openStore({ plugin: "memory" }, { name: "new", clock });
  await source.set(["a"], 1);
  await target.set(["leftover"], true);
  await assert.rejects(
    moveStore(source, target, { clock }),
    (err: Error) =>
      err instanceof MigrationError &&
      err.message ===
        'Cannot move store "old" to "new": "new" is not empty and differs from "old" ' +
          '(2 difference(s): ["a"] is missing from "new"; ["leftover"] is in "new" but not in ' +
          '"old"; "old" has 1 entry, "new" 1), and it holds no checkpoint of a move from "old". ' +
          'Check what "new" holds (flowstate state ls --store new) or move into another store; ' +
          "only if its entries may be thrown away, pass --force (force: true) to clear it and " +
          "start over",
  );
  assert.deepEqual(await rows(target), [[["leftover"], true, null]], "nothing was written");
  await assert.rejects(moveStore(source, target, { clock, dryRun: true }), /is not empty/);
  const result = await moveStore(source, target, { clock, force: true });
  assertCompleted(result, 1);
  assert.deepEqual(await rows(target), [[["a"], 1, null]]);
});

Deno.test("moveStore() stops after a batch when aborted, and resumes from its checkpoint", async () => {
  await withTempDir(async (dir) => {
    const clock = fakeClock();
    await using source = await openStore({ plugin: "memory" }, { name: "old", clock });
    await using target = await openStore({ plugin: "sqlite", path: join(dir, "new.db") }, {
      name: "new",
      clock,
    });
    const live = await seed(source, 1000, clock);
    const controller = new AbortController();
    const progress = batchProgress((n) => n === 2 && controller.abort());
    const first = await moveStore(source, target, {
      clock,
      batchSize: 150,
      signal: controller.signal,
      progress,
    });
    assert.equal(first.status, "interrupted");
    assert.equal(first.total, 300);
    assert.equal(first.verified, false);
    const checkpointKey = [...CHECKPOINT_PREFIX, "old"];
    const checkpoint = (await target.get<MoveCheckpoint>(checkpointKey))!.value;
    assert.equal(checkpoint.count, 300);
    assert.equal(checkpoint.batches, 2);
    assert.deepEqual(checkpoint.lastKey, ["data", "000299"]);
    // Exactly the first 300 entries, plus the checkpoint.
    assert.deepEqual(await rows(target, [checkpointKey]), (await rows(source)).slice(0, 300));

    await assert.rejects(
      moveStore(source, target, { clock, batchSize: 150 }),
      /"new" holds an interrupted move from "old" \(300 entries copied, .*pass --resume/,
    );
    const lines: string[] = [];
    const second = await moveStore(source, target, {
      clock,
      batchSize: 400, // a different batch size is fine
      resume: true,
      log: (m) => lines.push(m),
    });
    assertCompleted(second, live);
    assert.equal(second.resumed, true);
    assert.equal(second.copied, live - 300);
    assert.match(
      lines[0],
      /^Resuming the move from "old" after 300 entries \(last key \["data","000299"\]\)/,
    );
    assert.deepEqual(await rows(target), await rows(source), "no duplicates, nothing missing");
    assert.equal(await target.get(checkpointKey), null);
  });
});

Deno.test("moveStore() interrupted while verifying keeps its checkpoint and verifies on resume", async () => {
  const clock = fakeClock();
  await using source = await openStore({ plugin: "memory" }, { name: "old", clock });
  await using target = await openStore({ plugin: "memory" }, { name: "new", clock });
  const op = source.atomic();
  for (let i = 0; i < 2500; i++) op.set(["k", String(i).padStart(4, "0")], i);
  await op.commit();
  const controller = new AbortController();
  let verifying = false;
  const progress: Progress = {
    state: { label: "", done: 0, total: undefined },
    start: (label) => void (verifying = label.startsWith("Verifying")),
    update: () => void (verifying && controller.abort()),
    advance() {},
    finish() {},
  };
  const first = await moveStore(source, target, { clock, signal: controller.signal, progress });
  assert.equal(first.status, "interrupted");
  assert.equal(first.total, 2500, "every entry was copied before the interruption");
  assert.equal(first.verified, false);
  const checkpoint = await target.get<MoveCheckpoint>([...CHECKPOINT_PREFIX, "old"]);
  assert.equal(checkpoint?.value.count, 2500);
  const second = await moveStore(source, target, { clock, resume: true });
  assertCompleted(second, 2500);
  assert.equal(second.copied, 0);
  assert.equal(second.batches, 0);
  assert.equal(await target.count(), 2500);
});

Deno.test("moveStore() verification fails when the source changed behind the cursor", async () => {
  const clock = fakeClock();
  await using source = await openStore({ plugin: "memory" }, { name: "old", clock });
  await using target = await openStore({ plugin: "memory" }, { name: "new", clock });
  for (let i = 0; i < 50; i++) await source.set(["k", String(i).padStart(2, "0")], i);
  const controller = new AbortController();
  await moveStore(source, target, {
    clock,
    batchSize: 10,
    signal: controller.signal,
    progress: batchProgress(() => controller.abort()),
  });
  await source.set(["k", "03"], "changed");
  await assert.rejects(
    moveStore(source, target, { clock, batchSize: 10, resume: true }),
    (err: Error) =>
      err instanceof MigrationError &&
      err.message.includes(
        'verification failed: 1 difference(s) between the stores (["k","03"] has a different value in "new")',
      ) &&
      err.message.includes('"old" changed while it was being moved') &&
      err.message.endsWith("The checkpoint was kept"),
  );
  assert.notEqual(await target.get([...CHECKPOINT_PREFIX, "old"]), null);
  const redo = await moveStore(source, target, { clock, batchSize: 10, force: true });
  assertCompleted(redo, 50);
});

Deno.test("moveStore() refuses to interleave with another move into the same target", async () => {
  const clock = fakeClock();
  await using source = await openStore({ plugin: "memory" }, { name: "old", clock });
  await using target = await openStore({ plugin: "memory" }, { name: "new", clock });
  for (let i = 0; i < 30; i++) await source.set(["k", String(i).padStart(2, "0")], i);
  const checkpointKey = [...CHECKPOINT_PREFIX, "old"];
  // After the first batch, "another process" rewrites the checkpoint.
  const progress = batchProgress((n) => {
    if (n === 1) {
      void target.get(checkpointKey).then((e) => target.set(checkpointKey, e!.value));
    }
  });
  await assert.rejects(
    moveStore(source, target, { clock, batchSize: 10, progress }),
    /the checkpoint \["flowstate","migrate-store","old"\] in "new" changed during the move/,
  );
  assert.equal((await target.get<MoveCheckpoint>(checkpointKey))?.value.count, 10);
});

Deno.test("moveStore() dry run reports the plan and writes nothing", async () => {
  const clock = fakeClock();
  await using source = await openStore({ plugin: "memory" }, { name: "old", clock });
  await using target = await openStore({ plugin: "memory" }, { name: "new", clock });
  for (let i = 0; i < 25; i++) await source.set(["k", String(i)], i);
  const lines: string[] = [];
  const result = await moveStore(source, target, {
    clock,
    batchSize: 10,
    dryRun: true,
    log: (m) => lines.push(m),
  });
  assert.equal(result.status, "dry-run");
  assert.equal(result.copied, 25);
  assert.equal(result.batches, 3);
  assert.equal(await target.count(), 0);
  assert.match(
    lines[0],
    /^Would copy about 25 entries from "old" \(memory\) to "new" \(memory\) in 3 batch/,
  );
});

Deno.test("moveStore() rejects bad arguments", async () => {
  await using a = await openStore({ plugin: "memory" }, { name: "a" });
  await using b = await openStore({ plugin: "memory" }, { name: "b" });
  await assert.rejects(moveStore(a, a), RangeError);
  await assert.rejects(moveStore(a, b, { batchSize: 0 }), /batchSize must be an integer/);
  await withTempDir(async (dir) => {
    const path = join(dir, "same.db");
    await using one = await openStore({ plugin: "sqlite", path }, { name: "one" });
    await using two = await openStore({ plugin: "sqlite", path }, { name: "two" });
    await assert.rejects(moveStore(one, two), /both are the same sqlite store at/);
  });
});

Deno.test("the migrate-store job moves a store and records the run in a third store", async () => {
  await withTempDir(async (dir) => {
    const clock = fakeClock();
    await using rt = await openRuntime({
      config: {
        stores: {
          old: { plugin: "memory" },
          new: { plugin: "sqlite", path: join(dir, "new.db") },
          runs: { plugin: "memory" },
        },
        records: "runs",
      },
      clock,
    });
    const old = await rt.store("old");
    for (let i = 0; i < 40; i++) await old.set(["k", String(i)], { i });
    const run = await runJob(rt, "migrate-store", {
      options: { from: "old", to: "new", batchSize: 16 },
      progress: "quiet",
    });
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    assert.equal(run.outputs?.status, "completed");
    assert.equal(run.outputs?.total, 40);
    assert.equal(run.outputs?.batches, 3);
    assert.deepEqual(await rows(await rt.store("new")), await rows(old));

    const refused = await runJob(rt, "migrate-store", {
      options: { from: "runs", to: "new" },
      progress: "quiet",
    });
    assert.equal(refused.status, "failed");
    assert.match(
      refused.error!.message,
      /job runs are recorded in store "runs" .* the move's source/,
    );
  });
});

Deno.test("a move killed with SIGKILL resumes after the last committed batch", async () => {
  await withTempDir(async (dir) => {
    const from = join(dir, "old.db");
    const to = join(dir, "new.db");
    const total = 20_000;
    {
      await using seeded = await openStore({ plugin: "sqlite", path: from, durability: "relaxed" });
      for (let start = 0; start < total; start += 2000) {
        const op = seeded.atomic();
        for (let i = start; i < start + 2000; i++) {
          op.set(["data", String(i).padStart(6, "0")], { i, text: `value ${i}`.repeat(3) });
        }
        await op.commit();
      }
    }
    const sourceHash = await sha256(from);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...PERMS,
        new URL("../tests/fixtures/migrations/move_store_child.ts", import.meta.url).pathname,
        from,
        to,
        "500",
      ],
      stdout: "piped",
      stderr: "piped",
      env: { RUST_BACKTRACE: "0" },
    }).spawn();
    let seen = "";
    using _hang = hangGuard(child, () => seen);
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    while (!/batch 6 /.test(seen)) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    child.kill("SIGKILL");
    const status = await exitOf(child);
    await reader.cancel();
    await child.stderr.cancel();
    assert.equal(status.signal, "SIGKILL", `the child was killed mid-way:\n${seen}`);
    assert.doesNotMatch(seen, /done/);

    await using source = await openStore({ plugin: "sqlite", path: from }, { name: "old" });
    await using target = await openStore({ plugin: "sqlite", path: to }, { name: "new" });
    const checkpointKey = [...CHECKPOINT_PREFIX, "old"];
    const checkpoint = (await target.get<MoveCheckpoint>(checkpointKey))!.value;
    assert.ok(checkpoint.count >= 3000 && checkpoint.count < total, `${checkpoint.count}`);
    assert.equal(checkpoint.count % 500, 0, "only whole batches were committed");
    // The target holds exactly the committed batches: the first `count` entries, no more.
    const copied = await rows(target, [checkpointKey]);
    assert.equal(copied.length, checkpoint.count);
    assert.deepEqual(copied, (await rows(source)).slice(0, checkpoint.count));

    const result = await moveStore(source, target, { batchSize: 500, resume: true });
    assertCompleted(result, total);
    assert.equal(result.copied, total - checkpoint.count);
    assert.equal(await target.count(), total, "no duplicates, no checkpoint left");
    await source.close();
    assert.equal(await sha256(from), sourceHash, "the source file did not change");
  });
});

// --- the CLI command body -----------------------------------------------------------

async function capture(
  fn: () => Promise<number>,
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...args: unknown[]) => void out.push(args.join(" "));
  console.error = (...args: unknown[]) => void err.push(args.join(" "));
  try {
    const code = await fn();
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("migrate store --from --to moves a configured store and prints a summary", async () => {
  await withTempDir(async (dir) => {
    const config = join(dir, "flowstate.yaml");
    await Deno.writeTextFile(
      config,
      "stores:\n  old: { plugin: jsonfile, path: old.json }\n  new: { plugin: sqlite, path: new.db }\n",
    );
    {
      await using rt = await openRuntime({ config });
      const old = await rt.store("old");
      const op = old.atomic();
      for (let i = 0; i < 30; i++) op.set(["k", String(i)], i);
      await op.commit();
    }
    const global = { config };
    let r = await capture(() =>
      migrateStoreCommand({ from: "old", to: "new", dryRun: true }, global)
    );
    assert.equal(r.code, 0);
    assert.match(r.out, /^Dry run: would copy about 30 entries from "old" to "new" in 1 batch/);

    r = await capture(() => migrateStoreCommand({ from: "old", to: "new", batch: 7 }, global));
    assert.equal(r.code, 0, r.err);
    assert.match(
      r.out,
      /^Moved 30 entries from "old" \(jsonfile\) to "new" \(sqlite\): 30 copied by this run in .* verified in .*: 30 entries, checksum [0-9a-f]{32}$/,
    );

    // Run again after it finished: nothing to do.
    r = await capture(() => migrateStoreCommand({ from: "old", to: "new", json: true }, global));
    assert.equal(r.code, 0, r.err);
    assert.equal(JSON.parse(r.out).alreadyMoved, true);
    assert.equal(JSON.parse(r.out).copied, 0);
    r = await capture(() =>
      migrateStoreCommand({ from: "old", to: "new", json: true, force: true }, global)
    );
    assert.equal(r.code, 0);
    const result = JSON.parse(r.out);
    assert.equal(result.status, "completed");
    assert.equal(result.count, 30);
    assert.equal(r.err, "", "--json prints no progress");

    await assert.rejects(
      capture(() => migrateStoreCommand({ from: "old", to: "nwe" }, global)),
      (err: Error) =>
        err instanceof UsageError &&
        /Unknown store "nwe" \(--to\) \(did you mean "new"\?\)/.test(err.message),
    );
    await assert.rejects(
      capture(() => migrateStoreCommand({ from: "old", to: "old" }, global)),
      UsageError,
    );
    await assert.rejects(
      capture(() =>
        migrateStoreCommand({ from: "old", to: "new", resume: true, force: true }, global)
      ),
      /--resume and --force contradict/,
    );
  });
});
