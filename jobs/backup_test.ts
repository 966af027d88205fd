// Tests of backupStore(), the backup job and the backup/restore CLI commands (restore_test.ts: restoring).
import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { runJob } from "../src/jobs/run.ts";
import { openRuntime } from "../src/runtime.ts";
import type { Key, Store } from "../src/store/types.ts";
import { fakeClock } from "../src/testing/clock.ts";
import { backupCommand, restoreCommand } from "../src/cli/backup.ts";
import { UsageError } from "../src/cli/input.ts";
import { readGzipLines, sha256File } from "../src/archive_format.ts";
import {
  backupOf,
  content,
  listDir,
  NOW,
  quietProgress,
  restoreInto,
  seed,
  withEnv,
} from "./_test_utils.ts";
import { type BackupInfo, backupStore, RESTORE_MARKER_KEY } from "./backup.ts";
import { restoreBackup, verifyBackup } from "./restore.ts";

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
      origin: lines[0].origin, // whose store it is: a SHA-256 of the project's home and the store
    });
    assert.match(lines[0].origin, /^[0-9a-f]{64}$/);
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

/** `store` whose `list()` calls `onList(passNumber)` first when a pass starts (not at its next pages). */
function listSpy(store: Store, onList: (call: number) => Promise<void> | void): Store {
  let calls = 0;
  return new Proxy(store, {
    get(target, prop) {
      if (prop === "list") {
        return (options: Parameters<Store["list"]>[0]) => {
          // A pass over the store starts at its first key (its next pages go on from a key).
          if (options?.start !== undefined || options?.cursor !== undefined) {
            return target.list(options);
          }
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
      // "default" also holds the records of the backup and restore runs (they are job runs).
      assert.deepEqual(
        await content(await rt.store("copy")),
        await content(await rt.store("default"), (key) => key[0] === "flowstate"),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("backupStore() reads big values a few at a time: each page of the listing holds about 32 MiB, not 1,000 entries", async () => {
  const { openStore } = await import("../src/plugin.ts");
  await using inner = await openStore({ plugin: "memory" }, { name: "blobs" });
  const mib = "x".repeat(1024 * 1024);
  for (let i = 0; i < 80; i++) await inner.set(["blob", String(i).padStart(3, "0")], mib);
  // The store as backupStore sees it, with each listing's page size noted.
  const pages: number[] = [];
  const store = new Proxy(inner, {
    get(target, prop) {
      if (prop === "list") {
        return (options: { batchSize?: number; limit?: number } = {}) => {
          pages.push(Math.min(options.batchSize ?? Infinity, options.limit ?? Infinity));
          return target.list(options);
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as Store;
  const dir = await Deno.makeTempDir();
  try {
    const info = await backupStore(store, join(dir, "blobs.fsbackup"));
    assert.equal(info.entries, 80);
    // Of 1 MiB lines: at most 32 a page (the first, before any size is known, 16).
    assert.ok(pages.length > 0 && pages.every((n) => n <= 32), `pages: ${pages.join(", ")}`);
    await using restored = await openStore({ plugin: "memory" }, { name: "copy" });
    await restoreBackup(restored, join(dir, "blobs.fsbackup"));
    assert.equal(await restored.count(), 80);
    assert.equal((await restored.get(["blob", "079"]))?.value, mib);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
