/**
 * A full disk, through the CLI: the store (or the backup's folder) lives on a
 * small tmpfs that a filler file fills up. Every command that cannot write
 * fails with exit 1 and a message that says what it could not write, that the
 * disk is full, and what state it left behind; nothing already stored is lost.
 * Mounting a tmpfs needs root (CI runs as root): without root these tests are
 * ignored.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore } from "../../mod.ts";
import { runCli } from "../_cli_sandbox.ts";

const IS_ROOT = Deno.uid() === 0;
const IGNORED = IS_ROOT ? "" : " (ignored: needs root to mount a tmpfs)";

async function command(program: string, ...args: string[]): Promise<void> {
  const output = await new Deno.Command(program, { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!output.success) {
    throw new Error(
      `${program} ${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr)}`,
    );
  }
}

/** `fn` in a project folder whose `disk/` is a tmpfs of `size` (removed afterwards). */
async function withSmallDisk(
  size: string,
  fn: (dir: string, disk: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-full-" });
  const disk = join(dir, "disk");
  await Deno.mkdir(disk);
  await command("mount", "-t", "tmpfs", "-o", `size=${size}`, "tmpfs", disk);
  try {
    await fn(dir, disk);
  } finally {
    await command("umount", disk);
    await Deno.remove(dir, { recursive: true });
  }
}

/** Fill the file system of `dir` with a file `filler`, leaving about `leave` bytes free. */
async function fill(dir: string, leave: number): Promise<void> {
  const path = join(dir, "filler");
  await using file = await Deno.open(path, { write: true, create: true });
  const chunk = new Uint8Array(4096);
  try {
    for (;;) await file.write(chunk);
  } catch (err) {
    if (!(err instanceof Error) || !/os error 28|No space/i.test(err.message)) throw err;
  }
  const { size } = await file.stat();
  await file.truncate(Math.max(0, size - leave));
}

/**
 * A project in `dir` whose store "default" is the sqlite file `path` (relative to `dir`),
 * filled with `n` entries under `data/` of about 16 KiB each, of distinct, hard to compress
 * values. Resolves the store file's absolute path.
 */
async function sqliteProject(dir: string, path: string, n: number): Promise<string> {
  await Deno.writeTextFile(
    join(dir, "flowstate.yaml"),
    `stores:\n  default: { plugin: sqlite, path: ${path} }\n`,
  );
  const db = join(dir, path);
  await using store = await openStore({ plugin: "sqlite", path: db });
  for (let i = 0; i < n; i++) {
    const value = Array.from(
      { length: 1024 },
      (_, j) => ((i * 7919 + j) * 2654435761 % 2 ** 32).toString(16).padStart(16, "0"),
    ).join("");
    await store.set(["data", String(i).padStart(4, "0")], value);
  }
  return db;
}

async function dump(path: string): Promise<Map<string, unknown>> {
  await using store = await openStore({ plugin: "sqlite", path });
  const out = new Map<string, unknown>();
  for await (const e of store.list({ prefix: ["data"] })) out.set(JSON.stringify(e.key), e.value);
  return out;
}

Deno.test({
  name:
    `backup onto a full disk: exit 1, names the file and says the disk is full; no partial file${IGNORED}`,
  ignore: !IS_ROOT,
  async fn() {
    await withSmallDisk("1m", async (dir, disk) => {
      const db = await sqliteProject(dir, "state.db", 60);
      const before = await dump(db);
      await fill(disk, 64 * 1024);
      const out = join(disk, "backups", "b.fsbackup");
      const r = await runCli(dir, ["backup", "--out", out]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^error: Cannot back up store "default": cannot write /m);
      assert.ok(r.stderr.includes(out), r.stderr);
      assert.match(r.stderr, /the disk is full/);
      assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
      // No backup and no temp file are left behind; the store is as it was.
      assert.deepEqual([...Deno.readDirSync(join(disk, "backups"))].map((e) => e.name), []);
      assert.deepEqual(await dump(db), before);
    });
  },
});

Deno.test({
  name:
    `restore --force onto a full disk: exit 1, says the store holds a partial restore and to run it again; then it finishes${IGNORED}`,
  ignore: !IS_ROOT,
  async fn() {
    await withSmallDisk("3m", async (dir, disk) => {
      const db = await sqliteProject(dir, "disk/state.db", 30);
      const backedUp = await dump(db);
      const file = join(dir, "b.fsbackup");
      const backup = await runCli(dir, ["backup", "--out", file]);
      assert.equal(backup.code, 0, backup.stderr);
      {
        // The store moves on after the backup: --force is to replace this.
        await using store = await openStore({ plugin: "sqlite", path: db });
        await store.set(["data", "later"], "written after the backup");
      }
      await fill(disk, 256 * 1024);

      const r = await runCli(dir, ["restore", "--store", "default", "--force", file]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /the disk is full/);
      assert.match(r.stderr, /holds a partial restore/);
      assert.match(r.stderr, /run the same restore again to finish it/);
      assert.match(r.stderr, /stopped after \d+ of 30 entries/);
      assert.match(r.stderr, /its earlier content deleted/);
      assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");

      // A backup of the half-restored store is refused, rather than saving partial content.
      await Deno.remove(join(disk, "filler"));
      const refused = await runCli(dir, ["backup", "--out", join(dir, "partial.fsbackup")]);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /unfinished restore/);

      // With space again, the same command (without --force) finishes it.
      const again = await runCli(dir, ["restore", "--store", "default", file]);
      assert.equal(again.code, 0, again.stderr);
      // It was not given --force: what it cleared, it cleared for the interrupted one.
      assert.doesNotMatch(again.stdout + again.stderr, /\(--force\)/);
      assert.deepEqual(await dump(db), backedUp);
    });
  },
});

Deno.test({
  name:
    `sqlite store on a full disk: reads work, writers (state set, backup, worker) fail at once saying the disk is full; then it writes again${IGNORED}`,
  ignore: !IS_ROOT,
  async fn() {
    await withSmallDisk("1m", async (dir, disk) => {
      await Deno.writeTextFile(
        join(dir, "flowstate.yaml"),
        `stores:\n  default: { plugin: sqlite, path: disk/state.db }\n`,
      );
      const set = await runCli(dir, ["state", "set", "--flow", "counter", "count", "41"]);
      assert.equal(set.code, 0, set.stderr);
      await fill(disk, 0);

      const get = await runCli(dir, ["state", "get", "--flow", "counter", "count"]);
      assert.equal(get.code, 0, get.stderr);
      assert.equal(get.stdout.trim(), "41");
      const runs = await runCli(dir, ["runs", "ls"]);
      assert.equal(runs.code, 0, runs.stderr);
      // A backup records its job run in the store: it is a writer too.
      const backup = await runCli(dir, ["backup", "--out", join(dir, "b.fsbackup")]);
      assert.equal(backup.code, 1, backup.stderr);
      assert.match(backup.stderr, /is on a full disk .*Free some space on it and run again/);

      const write = await runCli(dir, ["state", "set", "--flow", "counter", "count", "42"]);
      assert.equal(write.code, 1, write.stderr);
      assert.match(write.stderr, new RegExp(`${disk.replaceAll("/", "\\/")} is on a full disk`));
      assert.match(write.stderr, /Free some space on it and run again/);
      assert.doesNotMatch(write.stderr, /I\/O error|kernel log/, "not a failing disk");
      assert.doesNotMatch(write.stderr, /^\s+at /m, "no stack trace");
      // A long-lived writer stops at once, rather than run on a store it can never write.
      const worker = await runCli(dir, ["worker"]);
      assert.equal(worker.code, 1, worker.stderr);
      assert.match(worker.stderr, /is on a full disk .*Free some space on it and run again/);

      await Deno.remove(join(disk, "filler"));
      const again = await runCli(dir, ["state", "set", "--flow", "counter", "count", "42"]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(
        (await runCli(dir, ["state", "get", "--flow", "counter", "count"])).stdout.trim(),
        "42",
      );
    });
  },
});
