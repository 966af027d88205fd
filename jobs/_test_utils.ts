/**
 * Helpers shared by the tests of the backup and restore jobs
 * (`backup_test.ts`, `restore_test.ts`): a runtime with several stores on a
 * temp home, seeded content of varied shapes, and runs of both jobs.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Progress } from "../src/jobs/progress.ts";
import { runJob } from "../src/jobs/run.ts";
import { openRuntime, type Runtime } from "../src/runtime.ts";
import type { JsonValue, Key, Store } from "../src/store/types.ts";
import { type FakeClock, fakeClock } from "../src/testing/clock.ts";
import type { BackupInfo } from "./backup.ts";

/** The fake clock's start: 2026-06-01T00:00:00Z. */
export const NOW = Date.UTC(2026, 5, 1);

/** What {@linkcode withEnv} gives a test: a temp home, a runtime on it, and its fake clock. */
export interface Env {
  /** The runtime's home and working directory (removed afterwards). */
  dir: string;
  /** The runtime. */
  rt: Runtime;
  /** Its clock. */
  clock: FakeClock;
}

/** A runtime with a sqlite, a jsonfile and two more stores; runs are recorded in "rec". */
export async function withEnv(fn: (env: Env) => Promise<void>): Promise<void> {
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
export async function seed(store: Store, n: number, prefix = "k"): Promise<void> {
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

/** A store's entries as `list()` yields them, without versions. */
export type Content = { key: Key; value: JsonValue; expiresAt: number | null }[];

/** Every entry of `store` (but those `skip` names), in key order. */
export async function content(store: Store, skip?: (key: Key) => boolean): Promise<Content> {
  const out: Content = [];
  for await (const e of store.list()) {
    if (skip?.(e.key)) continue;
    out.push({ key: e.key, value: e.value, expiresAt: e.expiresAt });
  }
  return out;
}

/** Run the backup job on one store; the backup file's path. */
export async function backupOf(env: Env, store: string): Promise<string> {
  const run = await runJob(env.rt, "backup", { options: { store }, progress: "quiet" });
  assert.equal(run.status, "succeeded", run.error?.message);
  const files = run.outputs?.files as unknown as BackupInfo[];
  assert.equal(files.length, 1);
  return files[0].file;
}

/** Run the restore job from `file` into `store`; its run record. */
export async function restoreInto(env: Env, file: string, store: string, force = false) {
  const run = await runJob(env.rt, "restore", {
    options: { file, store, force },
    progress: "quiet",
  });
  return run;
}

/** The names in `dir`, sorted; none if it does not exist. */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
}

/** A `Progress` that prints nothing and reports `advance`/`update` to `onUpdate`. */
export function quietProgress(onUpdate?: (label: string, done: number) => void): Progress {
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
