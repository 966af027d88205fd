/**
 * A store on a read-only file system, through the CLI: reads work
 * (`state get`, `runs ls`), writes fail with exit 1 and a message that says
 * the store is read-only and where. The file system is made read-only with
 * a read-only bind mount, which needs root (CI runs as root): without root
 * these tests are ignored (a chmod cannot stand in: root writes anyway).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore, StoreReadOnlyError } from "../mod.ts";
import { runCli } from "./_cli_sandbox.ts";
import { oldSearchFormat } from "../plugins/sqlite/_test_utils.ts";

const IS_ROOT = Deno.uid() === 0;

const FLOW = `id: counter
nodes:
  - id: bump
    type: state.increment
    with: { scope: flow, key: count }
`;

async function cli(cwd: string, ...args: string[]): Promise<{ code: number; out: string }> {
  const { code, stdout, stderr } = await runCli(cwd, args);
  return { code, out: stdout + stderr };
}

async function mount(...args: string[]): Promise<void> {
  const output = await new Deno.Command("mount", { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!output.success) {
    throw new Error(`mount ${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr)}`);
  }
}

/** `fn` with `ro`, a read-only bind mount of `src` (filled by `fill` first). */
async function withReadOnlyCopy(
  fill: (src: string) => Promise<void>,
  fn: (ro: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-ro-" });
  const src = join(dir, "src");
  const ro = join(dir, "ro");
  await Deno.mkdir(src);
  await Deno.mkdir(ro);
  try {
    await fill(src);
    await mount("--bind", src, ro);
    try {
      await mount("-o", "remount,bind,ro", ro);
      await fn(ro);
    } finally {
      await new Deno.Command("umount", { args: [ro] }).output();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

for (const [plugin, file] of [["jsonfile", "state.json"], ["sqlite", "state.db"]]) {
  Deno.test({
    name:
      `${plugin} on a read-only file system: state get and runs ls work, state set fails clearly` +
      (IS_ROOT ? "" : " (ignored: needs root for a read-only bind mount)"),
    ignore: !IS_ROOT,
    async fn() {
      const before: Record<string, string[]> = {};
      await withReadOnlyCopy(async (src) => {
        await Deno.writeTextFile(
          join(src, "flowstate.yaml"),
          `stores:\n  default: { plugin: ${plugin}, path: data/${file} }\n`,
        );
        await Deno.writeTextFile(join(src, "counter.flow.yaml"), FLOW);
        for (let i = 0; i < 2; i++) {
          const run = await cli(src, "run", "counter.flow.yaml");
          assert.equal(run.code, 0, run.out);
        }
        before.files = [...Deno.readDirSync(join(src, "data"))].map((e) => e.name).sort();
      }, async (ro) => {
        const get = await cli(ro, "state", "get", "--flow", "counter", "count");
        assert.equal(get.code, 0, get.out);
        assert.equal(get.out.trim(), "2");
        const runs = await cli(ro, "runs", "ls", "--json");
        assert.equal(runs.code, 0, runs.out);
        const listed = JSON.parse(runs.out) as { status: string }[];
        assert.deepEqual(listed.map((r) => r.status), ["succeeded", "succeeded"]);

        const set = await cli(ro, "state", "set", "--flow", "counter", "count", "5");
        assert.equal(set.code, 1, set.out);
        assert.match(
          set.out,
          new RegExp(
            `store "default".* ${
              ro.replaceAll("/", "\\/")
            }\\/data\\S* is on a read-only file system`,
          ),
        );
        assert.match(set.out, /read-only/);
        assert.doesNotMatch(set.out, /^\s+at /m, "no stack trace");
        assert.doesNotMatch(set.out, /unable to open database file/);
        // A run cannot even be recorded: it fails, saying why.
        const run = await cli(ro, "run", "counter.flow.yaml");
        assert.equal(run.code, 1, run.out);
        assert.match(run.out, /read-only file system/);
        // Nothing changed, and nothing was added beside the store.
        assert.equal((await cli(ro, "state", "get", "--flow", "counter", "count")).out.trim(), "2");
        const after = [...Deno.readDirSync(join(ro, "data"))].map((e) => e.name).sort();
        assert.deepEqual(after, before.files);
      });
    },
  });
}

for (const withShm of [true, false]) {
  Deno.test({
    name:
      `sqlite on a read-only file system reads commits still in the -wal (${
        withShm ? "with" : "without"
      } a -shm file), and refuses writes` +
      (IS_ROOT ? "" : " (ignored: needs root for a read-only bind mount)"),
    ignore: !IS_ROOT,
    async fn() {
      await withReadOnlyCopy(async (src) => {
        // The image a crash leaves: the files copied while the store is open, its commits in the WAL.
        const live = await Deno.makeTempDir({ prefix: "flowstate-ro-live-" });
        try {
          const store = await openStore({ plugin: "sqlite", path: join(live, "state.db") });
          for (let i = 0; i < 20; i++) await store.set(["n", String(i)], i);
          assert.ok((await Deno.stat(join(live, "state.db-wal"))).size > 0);
          for (const suffix of ["", "-wal", ...withShm ? ["-shm"] : []]) {
            await Deno.copyFile(join(live, `state.db${suffix}`), join(src, `state.db${suffix}`));
          }
          await store.close();
        } finally {
          await Deno.remove(live, { recursive: true });
        }
      }, async (ro) => {
        const store = await openStore({ plugin: "sqlite", path: join(ro, "state.db") });
        try {
          assert.equal(await store.count(["n"]), 20);
          assert.equal((await store.get(["n", "19"]))?.value, 19);
          await assert.rejects(store.set(["n", "20"], 20), (err: Error) => {
            assert.ok(err instanceof StoreReadOnlyError, String(err));
            assert.equal(err.code, "STORE_READ_ONLY");
            assert.match(err.message, /is on a read-only file system/);
            return true;
          });
        } finally {
          await store.close();
        }
      });
    },
  });
}

for (const [plugin, file] of [["jsonfile", "state.json"], ["sqlite", "state.db"]]) {
  Deno.test({
    name:
      `${plugin} on a read-only file system can be backed up (not recorded as a job run, with a note), and the backup restores` +
      (IS_ROOT ? "" : " (ignored: needs root for a read-only bind mount)"),
    ignore: !IS_ROOT,
    async fn() {
      const out = await Deno.makeTempDir({ prefix: "flowstate-ro-backup-" });
      try {
        await withReadOnlyCopy(async (src) => {
          await Deno.writeTextFile(
            join(src, "flowstate.yaml"),
            `stores:\n  default: { plugin: ${plugin}, path: data/${file} }\n`,
          );
          await Deno.writeTextFile(join(src, "counter.flow.yaml"), FLOW);
          const run = await cli(src, "run", "counter.flow.yaml");
          assert.equal(run.code, 0, run.out);
        }, async (ro) => {
          const before = [...Deno.readDirSync(join(ro, "data"))].map((e) => e.name).sort();
          const backup = await cli(ro, "backup", "--out", join(out, "ro.fsbackup"));
          assert.equal(backup.code, 0, backup.out);
          assert.match(
            backup.out,
            /note: not recorded as a job run: store "default", where runs are recorded, is read-only/,
          );
          assert.match(backup.out, /default: \d+ entries → /);
          const after = [...Deno.readDirSync(join(ro, "data"))].map((e) => e.name).sort();
          assert.deepEqual(after, before, "nothing was written beside the store");
        });
        // The file holds the store: restored elsewhere, the count is there.
        await Deno.writeTextFile(
          join(out, "flowstate.yaml"),
          "stores:\n  default: { plugin: sqlite, path: restored.db }\n",
        );
        const restore = await cli(out, "restore", "ro.fsbackup", "--store", "default");
        assert.equal(restore.code, 0, restore.out);
        const count = await cli(out, "state", "get", "--flow", "counter", "count");
        assert.equal(count.out.trim(), "1");
      } finally {
        await Deno.remove(out, { recursive: true });
      }
    },
  });
}

Deno.test({
  name:
    "sqlite on a read-only file system: a search index of an earlier version's format is left " +
    "as it is and search scans, finding every entry by its own text" +
    (IS_ROOT ? "" : " (ignored: needs root for a read-only bind mount)"),
  ignore: !IS_ROOT,
  async fn() {
    const texts = { dotted: "İstanbul", nfd: "cafe\u0301 noir" };
    let before: Uint8Array | undefined;
    await withReadOnlyCopy(async (src) => {
      const path = join(src, "s.db");
      {
        await using store = await openStore({ plugin: "sqlite", path });
        for (const [k, t] of Object.entries(texts)) await store.set(["notes", k], { t });
      }
      oldSearchFormat(path);
      before = await Deno.readFile(path);
    }, async (ro) => {
      const path = join(ro, "s.db");
      await using store = await openStore({
        plugin: "sqlite",
        path,
        search: { prefix: ["notes"] },
      });
      for (const [k, t] of Object.entries(texts)) {
        assert.deepEqual((await store.search(t)).map((h) => h.key), [["notes", k]], t);
      }
      assert.deepEqual(await Deno.readFile(path), before);
    });
  },
});

/**
 * `flowstate` with the flags of the deno.json tasks (`--allow-write=.flowstate`: no temp
 * directory), in `cwd`, with TMPDIR at `tmp`.
 */
async function taskCli(
  cwd: string,
  tmp: string,
  ...args: string[]
): Promise<{ code: number; out: string }> {
  const cliPath = new URL("../cli.ts", import.meta.url).pathname;
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--unstable-worker-options",
      "--config",
      new URL("../deno.json", import.meta.url).pathname,
      "--allow-read",
      "--allow-write=.flowstate",
      "--allow-env",
      "--allow-sys=hostname",
      cliPath,
      ...args,
    ],
    cwd,
    env: { NO_COLOR: "1", TMPDIR: tmp },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: output.code, out: decoder.decode(output.stdout) + decoder.decode(output.stderr) };
}

const SQLITE_CONFIG = "stores:\n  default: { plugin: sqlite, path: .flowstate/state.db }\n";

/**
 * A project with a sqlite store at `.flowstate/state.db` (filled by `fill`), read-only: `check`
 * gets `flowstate` there with the tasks' flags, and the temp directory it is given (TMPDIR).
 */
async function withTaskProject(
  fill: (src: string) => Promise<void>,
  check: (
    flowstate: (...args: string[]) => Promise<{ code: number; out: string }>,
    tmp: string,
  ) => Promise<void>,
): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "flowstate-ro-tmp-" });
  try {
    await withReadOnlyCopy(async (src) => {
      await Deno.writeTextFile(join(src, "flowstate.yaml"), SQLITE_CONFIG);
      await fill(src);
    }, (ro) => check((...args) => taskCli(ro, tmp, ...args), tmp));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

Deno.test({
  name:
    "sqlite store that cannot be written, no -wal, the tasks' flags: read (into memory), no temp copy" +
    (IS_ROOT ? "" : " (ignored: needs root for a read-only bind mount)"),
  ignore: !IS_ROOT,
  async fn() {
    await withTaskProject(async (src) => {
      await Deno.writeTextFile(join(src, "counter.flow.yaml"), FLOW);
      const run = await cli(src, "run", "counter.flow.yaml");
      assert.equal(run.code, 0, run.out);
      // Closed cleanly: every commit is in the file, no -wal, no -shm.
      assert.deepEqual([...Deno.readDirSync(join(src, ".flowstate"))].map((e) => e.name), [
        "state.db",
      ]);
    }, async (flowstate, tmp) => {
      const get = await flowstate("state", "get", "--flow", "counter", "count");
      assert.equal(get.code, 0, get.out);
      assert.equal(get.out.trim(), "1");
      const set = await flowstate("state", "set", "--flow", "counter", "count", "5");
      assert.equal(set.code, 1, set.out);
      assert.match(set.out, /is on a read-only file system/);
      assert.deepEqual([...Deno.readDirSync(tmp)], [], "no copy in the temp directory");
    });
  },
});

Deno.test({
  name:
    "sqlite store that cannot be written, with a writer on it: a reader with the tasks' flags sees each new commit" +
    (IS_ROOT ? "" : " (ignored: needs root for a read-only bind mount)"),
  ignore: !IS_ROOT,
  async fn() {
    let writer: Awaited<ReturnType<typeof openStore>> | undefined;
    try {
      await withTaskProject(async (src) => {
        writer = await openStore({ plugin: "sqlite", path: join(src, ".flowstate", "state.db") });
        await writer.set(["k"], 1);
      }, async (flowstate, tmp) => {
        const first = await flowstate("state", "get", "k");
        assert.equal(first.code, 0, first.out);
        assert.equal(first.out.trim(), "1");
        await writer!.set(["k"], 2);
        const second = await flowstate("state", "get", "k");
        assert.equal(second.code, 0, second.out);
        assert.equal(second.out.trim(), "2", "not a snapshot: the writer's new commit is read");
        assert.deepEqual([...Deno.readDirSync(tmp)], [], "no copy in the temp directory");
      });
    } finally {
      await writer?.close();
    }
  },
});

Deno.test({
  name:
    "sqlite store that cannot be written, commits in a -wal without -shm, the tasks' flags: the error names the real temp directory" +
    (IS_ROOT ? "" : " (ignored: needs root for a read-only bind mount)"),
  ignore: !IS_ROOT,
  async fn() {
    await withTaskProject(async (src) => {
      await Deno.mkdir(join(src, ".flowstate"));
      const live = await Deno.makeTempDir({ prefix: "flowstate-ro-live-" });
      try {
        const store = await openStore({ plugin: "sqlite", path: join(live, "state.db") });
        await store.set(["k"], 1);
        for (const suffix of ["", "-wal"]) {
          await Deno.copyFile(
            join(live, `state.db${suffix}`),
            join(src, ".flowstate", `state.db${suffix}`),
          );
        }
        await store.close();
      } finally {
        await Deno.remove(live, { recursive: true });
      }
    }, async (flowstate, tmp) => {
      const get = await flowstate("state", "get", "k");
      assert.equal(get.code, 1, get.out);
      assert.doesNotMatch(get.out, /<TMP>/);
      assert.match(get.out, new RegExp(`Requires write access to "${tmp}"`));
      assert.match(get.out, new RegExp(`--allow-write=\\.flowstate,${tmp}`));
    });
  },
});
