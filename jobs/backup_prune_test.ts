// Tests of pruneBackups() and the backup job's keep/keepFor, through the public exports.
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime, openStore, runJob } from "../mod.ts";
import { backupStore, backupStores, pruneBackups, type PruneBackupsResult } from "../jobs.ts";

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1, 4);

/** `<dir>/<store>-<timestamp>.fsbackup` as the job names a full backup taken at `at`. */
function jobName(dir: string, store: string, at: number): string {
  const stamp = new Date(at).toISOString().replace(/[-:]/g, "").replace(".", "");
  const safe = store.replace(/[^A-Za-z0-9._-]/g, "_");
  return join(dir, `${safe}-${stamp}.fsbackup`);
}

async function names(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-prune-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A full backup of a store named `name` per day for `days` days from T0. */
async function daily(dir: string, name: string, days: number): Promise<string[]> {
  await using store = await openStore({ plugin: "memory" }, { name });
  const files: string[] = [];
  for (let d = 0; d < days; d++) {
    await store.set(["day"], d);
    const file = jobName(dir, name, T0 + d * DAY);
    await backupStore(store, file, { clock: { now: () => T0 + d * DAY } });
    files.push(file);
  }
  return files;
}

Deno.test("pruneBackups() stops between two files on its signal: what is deleted stays deleted, the rest stays", async () => {
  await withDir(async (dir) => {
    const files = await daily(dir, "main", 4);
    const stop = new AbortController();
    const first = await pruneBackups(dir, {
      stores: ["main"],
      keep: 1,
      signal: stop.signal,
      log: (message) => {
        if (message.startsWith("deleted")) stop.abort();
      },
    });
    assert.equal(first.cancelled, true);
    assert.deepEqual(first.removed.map((r) => r.file), [files[0]]);
    for (const file of files.slice(1)) assert.ok((await Deno.stat(file)).isFile);
    const rest = await pruneBackups(dir, { stores: ["main"], keep: 1 });
    assert.deepEqual(rest.removed.map((r) => r.file), files.slice(1, 3));
    assert.equal(rest.cancelled, false);
    assert.deepEqual(
      await names(dir),
      [files[3], `${files[3]}.sha256`].map((f) => f.slice(dir.length + 1)),
    );
  });
});

Deno.test('pruneBackups() tells stores apart by the header, not only the name ("a b" and "a_b" share a_b-…)', async () => {
  await withDir(async (dir) => {
    const spaced = await daily(dir, "a b", 2);
    const underscored = jobName(dir, "a_b", T0 + 5 * DAY);
    await using store = await openStore({ plugin: "memory" }, { name: "a_b" });
    await backupStore(store, underscored, { clock: { now: () => T0 + 5 * DAY } });
    assert.ok(spaced[0].endsWith("a_b-20260101T040000000Z.fsbackup"));
    const result = await pruneBackups(dir, { stores: ["a_b"], keep: 1 });
    assert.deepEqual(result.removed, [], "the newest a_b backup is its only one");
    assert.deepEqual(result.kept.map((k) => k.file), [underscored]);
    const spacedResult = await pruneBackups(dir, { stores: ["a b"], keep: 1 });
    assert.deepEqual(spacedResult.removed.map((r) => r.file), [spaced[0]]);
    assert.ok((await Deno.stat(underscored)).isFile);
  });
});

Deno.test("pruneBackups() refuses a policy it cannot apply, before reading anything", async () => {
  await assert.rejects(() => pruneBackups("nowhere", { stores: ["main"] }), /say what to keep/);
  await assert.rejects(
    () => pruneBackups("nowhere", { stores: ["main"], keep: 0 }),
    (err) => err instanceof RangeError && /keep must be an integer >= 1/.test(err.message),
  );
  await assert.rejects(
    () => pruneBackups("nowhere", { stores: ["main"], keepFor: "30" }),
    (err) => err instanceof RangeError && /keepFor/.test(err.message),
  );
  const none: PruneBackupsResult = await pruneBackups("nowhere", { stores: ["main"], keep: 1 });
  assert.deepEqual([none.removed, none.kept], [[], []], "no directory: nothing to prune");
});

Deno.test("backup job with keep: the result says what was deleted; a dry run counts the backup it would write", async () => {
  const home = await Deno.makeTempDir({ prefix: "flowstate-prune-job-" });
  try {
    let now = T0 + 10 * DAY;
    await using rt = await openRuntime({
      home,
      config: { stores: { main: { plugin: "memory" } } },
      clock: { now: () => now },
    });
    const dir = join(home, "backups");
    await Deno.mkdir(dir);
    const old = await daily(dir, "main", 2);
    // A dry run: the new backup would take the one place, so both old ones would go.
    const dry = await runJob(rt, "backup", { options: { store: "main", keep: 1 }, dryRun: true });
    assert.equal(dry.status, "succeeded", dry.error?.message);
    const dryPruned = dry.outputs?.pruned as unknown as PruneBackupsResult;
    assert.deepEqual(dryPruned.removed.map((r) => r.file), old);
    assert.equal(dryPruned.dryRun, true);
    assert.equal((await names(dir)).length, 4, "nothing deleted");

    now += 1000;
    const real = await runJob(rt, "backup", { options: { store: "main", keep: 2 } });
    assert.equal(real.status, "succeeded", real.error?.message);
    const pruned = real.outputs?.pruned as unknown as PruneBackupsResult;
    const written = (real.outputs?.files as { file: string }[])[0].file;
    assert.deepEqual(pruned.removed.map((r) => r.file), [old[0]]);
    assert.deepEqual(pruned.kept.map((k) => [k.file, k.reason]), [
      [written, "protected"],
      [old[1], "newest"],
    ]);
    assert.deepEqual(real.outputs?.warnings, []);

    // A policy that cannot be applied is refused before a backup is written.
    const before = await names(dir);
    await assert.rejects(() => backupStores(rt, { store: "main", keep: 0 }), RangeError);
    assert.deepEqual(await names(dir), before);
    const bad = await runJob(rt, "backup", { options: { store: "main", keepFor: "30" } })
      .catch((err) => err);
    assert.match(String(bad), /option "keepFor": expected a duration .*got "30" \(add a unit/);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
