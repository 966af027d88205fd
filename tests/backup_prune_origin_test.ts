/**
 * Backup retention when it is not alone: two projects writing into one
 * directory (each backup says whose store it is, and a prune deletes only its
 * own), and a prune racing an increment being written against the backup it
 * deletes (the increment fails, nothing is left behind). Based on the
 * reviewer's scripts (review-diff findings 1 and 6).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime, openStore, type Store } from "../mod.ts";
import {
  backupIncrement,
  backupStore,
  backupStores,
  pruneBackups,
  restoreBackup,
  verifyBackup,
} from "../jobs.ts";

const fsbackups = (dir: string) =>
  [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".fsbackup")).sort();

/**
 * A project with a store `main` keeping a feed, `a` set, a full backup of it
 * in `<dir>/<sub>` (`f1`), then `b` set; the temp dir is removed afterwards.
 */
async function withFullBackup(
  sub: string,
  fn: (dir: string, store: Store, f1: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await using rt = await openRuntime({
      config: { stores: { main: { plugin: "memory", changes: { keep: "30d" } } } },
      home: join(dir, "home"),
    });
    const store = await rt.store("main");
    await store.set(["a"], 1);
    const f1 = join(dir, sub, "main-20260101T000000000Z.fsbackup");
    await backupStore(store, f1);
    await store.set(["b"], 2);
    await fn(dir, store, f1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Restore `full` and `increments` into a new memory store; its value at `key`. */
async function restoredValue(full: string, increments: string[], key: string): Promise<unknown> {
  await using target = await openStore({ plugin: "memory" }, { name: "main" });
  await restoreBackup(target, full, { increments });
  return (await target.get([key]))?.value;
}

for (const keep of [1, 2]) {
  Deno.test(`backup --all --out <shared dir> --keep ${keep}: a project prunes only its own backups`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const out = join(dir, "shared");
      let now = Date.UTC(2026, 0, 1);
      const clock = { now: () => now };
      const config = { stores: { default: { plugin: "memory" } } };
      await using a = await openRuntime({ home: join(dir, "a"), clock, config });
      await using b = await openRuntime({ home: join(dir, "b"), clock, config });
      await (await a.store("default")).set(["project"], "A");
      await (await b.store("default")).set(["project"], "B");
      // Project B backs up at 03:00, project A at 04:00, each keeping its `keep` newest.
      for (let day = 0; day < 2; day++) {
        now = Date.UTC(2026, 0, 1 + day, 3);
        await backupStores(b, { all: true, out, keep });
        now = Date.UTC(2026, 0, 1 + day, 4);
        const result = await backupStores(a, { all: true, out, keep });
        // The other project's backups are not A's business: not deleted, not reported.
        assert.ok(result.pruned!.removed.every((r) => r.name.includes("T04")));
        assert.deepEqual(result.pruned!.skipped, []);
      }
      const left = fsbackups(out);
      assert.equal(left.filter((n) => n.includes("T03")).length, keep, `B's backups: ${left}`);
      assert.equal(left.filter((n) => n.includes("T04")).length, keep, `A's backups: ${left}`);
      // Each one says whose it is, and restore reads it as before.
      const [bFile] = left.filter((n) => n.includes("T03")).reverse();
      const { header } = await verifyBackup(join(out, bFile));
      assert.match(header.origin ?? "", /^[0-9a-f]{64}$/);
      await using target = await openRuntime({ home: join(dir, "c"), config });
      await restoreBackup(await target.store("default"), join(out, bFile));
      assert.equal((await (await target.store("default")).get(["project"]))?.value, "B");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("the origin is the same on every run of a project (and for its own backups dir)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const home = join(dir, "home");
    let now = Date.UTC(2026, 0, 1);
    const config = { stores: { default: { plugin: "memory" } } };
    for (let day = 0; day < 3; day++) {
      now = Date.UTC(2026, 0, 1 + day);
      // A new runtime each time, the home given through a symlink once.
      if (day === 1) await Deno.symlink(home, join(dir, "link"));
      await using rt = await openRuntime({
        home: day === 1 ? join(dir, "link") : home,
        clock: { now: () => now },
        config,
      });
      await backupStores(rt, { all: true, keep: 2 });
    }
    assert.deepEqual(fsbackups(join(home, "backups")), [
      "default-20260102T000000000Z.fsbackup",
      "default-20260103T000000000Z.fsbackup",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a backup with no origin (an older version's) is pruned only in the project's own backups dir", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const home = join(dir, "home");
    const shared = join(dir, "shared");
    let now = Date.UTC(2026, 0, 5);
    const config = { stores: { default: { plugin: "memory" } } };
    await using rt = await openRuntime({ home, clock: { now: () => now }, config });
    const store = await rt.store("default");
    // As an older version wrote them: no origin in the header.
    const oldShared = join(shared, "default-20260101T000000000Z.fsbackup");
    const oldOwn = join(home, "backups", "default-20260101T000000000Z.fsbackup");
    const then = { clock: { now: () => Date.UTC(2026, 0, 1) } };
    await backupStore(store, oldShared, then);
    await backupStore(store, oldOwn, then);
    assert.equal((await verifyBackup(oldShared)).header.origin, undefined);

    const inShared = await backupStores(rt, { all: true, out: shared, keep: 1 });
    assert.deepEqual(inShared.pruned!.removed, []);
    assert.deepEqual(inShared.pruned!.skipped.map((s) => s.file), [oldShared]);
    assert.match(
      inShared.pruned!.skipped[0].reason,
      /written by an older version, no project identity.*delete it by hand/,
    );
    await Deno.stat(oldShared); // still there

    now = Date.UTC(2026, 0, 6);
    const inOwn = await backupStores(rt, { all: true, keep: 1 });
    assert.deepEqual(inOwn.pruned!.removed.map((r) => r.file), [oldOwn]);
    assert.deepEqual(inOwn.pruned!.skipped, []);

    // `flowstate backup prune --dir <shared>` (the project given) leaves it too.
    const pruned = await pruneBackups(shared, { stores: ["default"], keep: 1, project: home });
    assert.deepEqual(pruned.removed, []);
    assert.deepEqual(pruned.skipped.map((s) => s.file), [oldShared]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an increment whose base a prune deleted while it was written fails, leaving nothing", () =>
  withFullBackup(".", async (dir, store, f1) => {
    // Process 1 (an operator): backup --since f1, held after its header is written.
    let open!: () => void;
    const gate = new Promise<void>((r) => open = r);
    let writing!: () => void;
    const started = new Promise<void>((r) => writing = r);
    const slow = new Proxy(store, {
      get(target, prop) {
        if (prop === "changes") {
          return (opts: unknown) =>
            (async function* () {
              writing();
              await gate;
              // deno-lint-ignore no-explicit-any
              yield* (target as any).changes(opts);
            })();
        }
        const v = Reflect.get(target, prop, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const inc = join(dir, "main-20260102T000000000Z-inc.fsbackup");
    const writingInc = backupIncrement(slow, inc, f1);
    await started;
    // Process 2 (a backup job with keep: 1): a new full backup, then a prune that deletes f1.
    const f2 = join(dir, "main-20260101T120000000Z.fsbackup");
    await backupStore(store, f2);
    const pruned = await pruneBackups(dir, { stores: ["main"], keep: 1, protect: [f2] });
    assert.deepEqual(pruned.removed.map((r) => r.file), [f1]);
    open();
    await assert.rejects(
      writingInc,
      (err: Error) =>
        err.name === "BackupError" &&
        err.message.includes(`${f1} was deleted while the increment was written`) &&
        err.message.includes("nothing was written"),
    );
    // Nothing left behind: no increment, no temp file, no checksum.
    assert.deepEqual([...Deno.readDirSync(dir)].filter((e) => e.isFile).length, 2);
    assert.deepEqual(fsbackups(dir).flatMap((n) => [n, `${n}.sha256`]), [
      "main-20260101T120000000Z.fsbackup",
      "main-20260101T120000000Z.fsbackup.sha256",
    ]);
    // Without a prune, the same increment is written and restorable.
    const ok = await backupIncrement(store, inc, f2);
    assert.equal(await restoredValue(f2, [ok.file], "b"), 2);
  }));

Deno.test("an increment written on a chain while a prune deletes it keeps the rest of the chain", () =>
  withFullBackup("backups", async (dir, store, f1) => {
    const backups = join(dir, "backups");
    const inc1 = join(backups, "main-20260101T060000000Z-inc.fsbackup");
    await backupIncrement(store, inc1, f1);
    await store.set(["c"], 3);
    // Another process's `backup --since <f1>`, finished (checked f1, renamed) while the prune
    // below was between its listing and its deletes: ready beside, moved in at that moment.
    const ready = join(dir, "ready.fsbackup");
    await backupIncrement(store, ready, f1);
    const inc2 = join(backups, "main-20260102T000000000Z-inc.fsbackup");
    const f2 = join(backups, "main-20260101T120000000Z.fsbackup");
    await backupStore(store, f2);
    const pruned = await pruneBackups(backups, {
      stores: ["main"],
      keep: 1,
      protect: [f2],
      log: (message) => {
        if (message.startsWith(`deleted backup ${inc1}`)) Deno.renameSync(ready, inc2);
      },
    });
    // inc1 was deleted before inc2 came; f1, which inc2 is based on, stays.
    assert.deepEqual(pruned.removed.map((r) => r.file), [inc1]);
    assert.deepEqual(pruned.kept.map((k) => [k.file, k.reason]), [
      [f2, "protected"],
      [f1, "chain"],
    ]);
    assert.equal(await restoredValue(f1, [inc2], "c"), 3);
  }));
