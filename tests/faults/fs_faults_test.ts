/**
 * File-system faults: a full disk (ENOSPC, on a real tmpfs of 2 MB), and
 * EACCES / EIO / ENOSPC injected into each file operation of a jsonfile
 * commit (create, write, fsync, rename, directory fsync). Each time, the
 * operation fails clearly (or, after the rename, stands), what was stored
 * before stays readable, in the store and after a reopen, and the process
 * keeps serving other stores.
 *
 * The tmpfs tests need root to mount (CI runs as root) and are ignored
 * otherwise. The injected faults go through the jsonfile plugin's internal
 * seam `plugins/jsonfile/_io.ts`. SQLite's own I/O (`node:sqlite`) cannot be
 * reached without FFI, so for sqlite only the real full disk is tested; EIO
 * and EACCES are left to SQLite's own test suite, and its error messages are
 * mapped (see plugins/sqlite/driver.ts).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore, type Store, StoreReadOnlyError, type Warning } from "../../mod.ts";
import { type CommitIo, io, realIo } from "../../plugins/jsonfile/_io.ts";

const IS_ROOT = Deno.uid() === 0;
const FILE_OF = { jsonfile: "state.json", sqlite: "state.db" } as const;

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-fsfaults-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function command(name: string, ...args: string[]): Promise<void> {
  const output = await new Deno.Command(name, { args, stdout: "piped", stderr: "piped" }).output();
  if (!output.success) {
    throw new Error(`${name} ${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`);
  }
}

/** Fill the file system of `dir` until a write fails with ENOSPC; resolves the filler's path. */
async function fillUp(dir: string): Promise<string> {
  const path = join(dir, "filler");
  using file = await Deno.open(path, { write: true, createNew: true });
  const chunk = new Uint8Array(64 * 1024);
  for (let size = chunk.length; size >= 1;) {
    try {
      await file.write(chunk.subarray(0, size));
    } catch (err) {
      assert.match(String(err), /No space left|os error 28/);
      size >>= 1;
    }
  }
  return path;
}

function open(plugin: keyof typeof FILE_OF, path: string, name = "main"): Promise<Store> {
  return openStore({ plugin, path }, { name });
}

for (const plugin of ["jsonfile", "sqlite"] as const) {
  Deno.test({
    name: `${plugin} on a full disk (tmpfs, ENOSPC): the write fails clearly, prior content ` +
      `stays readable, other stores keep working` +
      (IS_ROOT ? "" : " (ignored: mounting a tmpfs needs root)"),
    ignore: !IS_ROOT,
    async fn() {
      await withTempDir(async (dir) => {
        const small = join(dir, "small");
        await Deno.mkdir(small);
        await command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", small);
        try {
          const path = join(small, FILE_OF[plugin]);
          const store = await open(plugin, path);
          const other = await open(plugin, join(dir, FILE_OF[plugin]), "other");
          try {
            await store.set(["kept"], { n: 1 });
            await store.set(["kept", "list"], [1, 2, 3]);
            const filler = await fillUp(small);

            // A write bigger than anything left: it cannot fit, however the backend lays it out.
            const big = "x".repeat(1024 * 1024);
            for (let i = 0; i < 2; i++) {
              await assert.rejects(store.set(["big"], big), (err: Error) => {
                assert.match(err.message, /disk is full \(.*\)/, err.message);
                assert.match(err.message, /store "main"|nothing .*written|Nothing was written/i);
                assert.doesNotMatch(err.message, /undefined|\[object/);
                return true;
              });
            }
            // Prior content: in this store, and in another opened on the same file.
            assert.deepEqual((await store.get(["kept"]))?.value, { n: 1 });
            assert.equal(await store.get(["big"]), null);
            // The process keeps serving another store, in another directory.
            await other.set(["alive"], true);
            assert.equal((await other.get(["alive"]))?.value, true);

            // Room again: the same store writes.
            await Deno.remove(filler);
            await store.set(["after"], 1);
            assert.equal((await store.get(["after"]))?.value, 1);
          } finally {
            await store.close();
            await other.close();
          }
          const reopened = await open(plugin, path);
          try {
            assert.deepEqual((await reopened.get(["kept"]))?.value, { n: 1 });
            assert.deepEqual((await reopened.get(["kept", "list"]))?.value, [1, 2, 3]);
            assert.equal(await reopened.get(["big"]), null);
            assert.equal((await reopened.get(["after"]))?.value, 1);
          } finally {
            await reopened.close();
          }
          // No temp file of a failed write is left behind.
          const names = [...Deno.readDirSync(small)].map((e) => e.name);
          assert.deepEqual(names.filter((n) => n.includes(".tmp-")), [], names.join(", "));
        } finally {
          await command("umount", small);
        }
      });
    },
  });
}

/** An error like the one Deno throws for `code`. */
function osError(code: "ENOSPC" | "EIO" | "EACCES"): Error {
  const text = {
    ENOSPC: "No space left on device (os error 28)",
    EIO: "Input/output error (os error 5)",
    EACCES: "Permission denied (os error 13)",
  }[code];
  const err = code === "EACCES" ? new Deno.errors.PermissionDenied(text) : new Error(text);
  return Object.assign(err, { code });
}

/** Make `op` of every jsonfile commit fail with `code` while `fn` runs. */
async function withFault(
  op: keyof CommitIo,
  code: "ENOSPC" | "EIO" | "EACCES",
  fn: () => Promise<void>,
): Promise<void> {
  io[op] = (() => Promise.reject(osError(code))) as never;
  try {
    await fn();
  } finally {
    io[op] = realIo[op] as never;
  }
}

const BEFORE_RENAME: [keyof CommitIo, "ENOSPC" | "EIO" | "EACCES", RegExp][] = [
  ["createTemp", "EACCES", /is not writable by this process \(permission denied\)/],
  ["createTemp", "ENOSPC", /the disk is full \(No space left on device/],
  ["write", "ENOSPC", /the disk is full \(No space left on device/],
  ["write", "EIO", /the disk reported an I\/O error \(Input\/output error/],
  ["sync", "EIO", /the disk reported an I\/O error \(Input\/output error/],
  ["rename", "EACCES", /is not writable by this process \(permission denied\)/],
  ["rename", "EIO", /the disk reported an I\/O error \(Input\/output error/],
];

for (const [op, code, message] of BEFORE_RENAME) {
  Deno.test(`jsonfile: ${code} on ${op} fails the commit clearly; nothing is applied, prior content stays readable, other stores keep working`, async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "a", "state.json");
      const store = await open("jsonfile", path);
      const other = await open("jsonfile", join(dir, "b", "state.json"), "other");
      await store.set(["kept"], 1);
      const before = await Deno.readTextFile(path);
      await withFault(op, code, async () => {
        const results = await Promise.allSettled([store.set(["kept"], 2), store.set(["new"], 1)]);
        for (const result of results) {
          assert.equal(result.status, "rejected");
          const err = (result as PromiseRejectedResult).reason as Error;
          assert.match(err.message, /^Cannot commit to store "main": /);
          assert.match(err.message, message);
          assert.match(err.message, /[Nn]othing was written/);
          assert.equal(err instanceof StoreReadOnlyError, code === "EACCES");
        }
        // The store still holds, and the file still is, what was there before.
        assert.equal((await store.get(["kept"]))?.value, 1);
        assert.equal(await store.get(["new"]), null);
        assert.equal(await Deno.readTextFile(path), before);
        // Another store: another directory, same fault-free reads; its writes meet the fault too
        // (it is the same process-wide seam), so it reads.
        assert.equal(await other.get(["x"]), null);
      });
      // No temp file is left, and once the fault is gone the same store writes again.
      assert.deepEqual(
        [...Deno.readDirSync(join(dir, "a"))].map((e) => e.name).sort(),
        ["state.json", "state.json.lock"],
      );
      await store.set(["kept"], 3);
      await other.set(["x"], 1);
      await store.close();
      await other.close();
      const reopened = await open("jsonfile", path);
      assert.equal((await reopened.get(["kept"]))?.value, 3);
      assert.equal(await reopened.get(["new"]), null);
      await reopened.close();
    });
  });
}

Deno.test("jsonfile: EIO on the directory fsync after the rename: the commit stands and says so, with a warning", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json");
    const warnings: Warning[] = [];
    const store = await openStore({ plugin: "jsonfile", path }, {
      name: "main",
      onWarning: (warning) => void warnings.push(warning),
    });
    await store.set(["kept"], 1);
    const printed: unknown[] = [];
    const warn = console.warn;
    console.warn = (...args: unknown[]) => void printed.push(args.join(" "));
    try {
      await withFault("syncDir", "EIO", async () => {
        // Every process already sees it: reporting it failed would have it retried on top of itself.
        assert.equal((await store.set(["kept"], 2)).ok, true);
      });
    } finally {
      console.warn = warn;
    }
    assert.deepEqual(printed, [], "the library never prints: the warning goes to onWarning");
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0].code, "DIR_SYNC_FAILED");
    assert.match(
      warnings[0].message,
      /^Store "main": a commit was applied to .*state\.json, but flushing the directory .* failed: the disk reported an I\/O error .*may not survive a power loss$/,
    );
    assert.equal((await store.get(["kept"]))?.value, 2);
    await store.close();
    const reopened = await open("jsonfile", path);
    assert.equal((await reopened.get(["kept"]))?.value, 2);
    await reopened.close();
  });
});
