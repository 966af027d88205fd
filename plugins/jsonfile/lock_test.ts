import assert from "node:assert/strict";
import { join } from "node:path";
import { LOCK_WAIT_FACTOR, lockWaitBudget, parseLockHolder, removeLockFile } from "./lock.ts";
import { drain, files, lines, open, spawnHelper, withTempDir } from "./testdata/helpers.ts";
import { exitOf } from "../../tests/_deadline.ts";

// ---------------------------------------------------------------------------
// Several processes

Deno.test({
  name: "jsonfile: two processes doing 500 compare-and-set increments each end at 1000",
  async fn() {
    await withTempDir(async (dir) => {
      // On a loaded machine one process may get all its turns before the other starts: then
      // the run proves nothing about contention, and it is repeated (at most three times).
      let path = "";
      for (let attempt = 1;; attempt++) {
        path = join(dir, `counter-${attempt}.json`);
        const children = [0, 1].map(() => spawnHelper("jsonfile_cas.ts", [path, "500", "full"]));
        const outs = children.map((child) => lines(child.stdout));
        for (const out of outs) assert.equal((await out.next()).value, "ready");
        for (const child of children) await child.stdin.close(); // go
        const outputs = await Promise.all(outs.map(drain));
        for (const child of children) assert.equal((await exitOf(child)).code, 0);
        const written = outputs.map((out) => out.filter((l) => /^\d+$/.test(l)).map(Number));
        assert.equal(written[0].length, 500);
        assert.equal(written[1].length, 500);
        // Every value 1..1000 was written exactly once: no increment was lost or duplicated.
        assert.deepEqual(
          [...written[0], ...written[1]].sort((a, b) => a - b),
          Array.from({ length: 1000 }, (_, i) => i + 1),
        );
        // And the two processes really ran at the same time.
        const overlapped = Math.min(...written[0]) < Math.max(...written[1]) &&
          Math.min(...written[1]) < Math.max(...written[0]);
        if (overlapped) break;
        assert.ok(attempt < 3, "the two processes never ran at the same time in three tries");
      }
      const store = await open(path);
      assert.equal((await store.get(["counter"]))?.value, 1000);
      await store.close();
      await assert.rejects(Deno.stat(`${path}.lock`), Deno.errors.NotFound);
    });
  },
});

for (const durability of ["full", "relaxed"]) {
  Deno.test(`jsonfile keeps every acknowledged write when the writer is killed (SIGKILL, durability ${durability})`, async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "state.json");
      const child = spawnHelper("jsonfile_writer.ts", [path, durability]);
      await child.stdin.close();
      const acked: string[] = [];
      let killed = false;
      for await (const line of lines(child.stdout)) {
        acked.push(line);
        if (!killed && acked.length >= 300) {
          child.kill("SIGKILL");
          killed = true;
        }
      }
      assert.equal((await exitOf(child)).signal, "SIGKILL");
      assert.ok(acked.length >= 300);
      // The file parses, has no partial entry, and holds every acknowledged key.
      const parsed = JSON.parse(await Deno.readTextFile(path));
      assert.equal(parsed.format, "flowstate.jsonfile");
      // The killed writer may have left its lock file and a temp file; neither wedges the
      // store: its lock died with it (lockTimeout 0: one try, no waiting).
      const store = await open(path, { lockTimeout: 0 });
      const entries = await store.getMany(acked.map((name) => ["acked", name]));
      const missing = acked.filter((_, i) => entries[i] === null);
      assert.deepEqual(missing, [], `acknowledged but missing: ${missing.join(", ")}`);
      for (const entry of entries) {
        const [id, i] = entry!.key[1].split("-").map(Number);
        assert.deepEqual({ ...entry!.value as object, padding: "" }, { id, i, padding: "" });
      }
      await store.set(["after"], true);
      await store.close();
      assert.deepEqual((await files(dir)).filter((n) => n !== "state.json"), []);
    });
  });
}

// ---------------------------------------------------------------------------
// Locks

/** Whether some handle holds the lock on `lockPath` (probed through a handle of our own). */
function lockIsHeld(lockPath: string): boolean {
  using probe = Deno.openSync(lockPath, { read: true, write: true });
  if (!probe.tryLockSync(true)) return true;
  probe.unlockSync();
  return false;
}

/** Whether process `pid` is stopped (by SIGSTOP), as `ps` tells. */
async function isStopped(pid: number): Promise<boolean> {
  const { stdout } = await new Deno.Command("ps", { args: ["-o", "stat=", "-p", String(pid)] })
    .output();
  return new TextDecoder().decode(stdout).trim().startsWith("T");
}

Deno.test("jsonfile waits for a live lock holder, then fails naming it; once the holder is killed, the next commit takes the lock at once", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json");
    const store = await open(path, { lockTimeout: 300 });
    await store.set(["a"], 1);
    const holder = spawnHelper("jsonfile_lock_holder.ts", [`${path}.lock`]);
    await holder.stdin.close();
    const out = lines(holder.stdout);
    try {
      assert.equal((await out.next()).value, "locked");
      const started = performance.now();
      await assert.rejects(store.set(["a"], 2), (err: Error) => {
        assert.ok(err instanceof Deno.errors.TimedOut);
        assert.match(
          err.message,
          new RegExp(
            `^Cannot commit to store "main": the lock file .*state\\.json\\.lock is held by process ${holder.pid} on host ".*" since .*` +
              // The wait is raised when this store's own commits were slow (a loaded machine).
              `(300 ms \\(lockTimeout\\)|\\d+ ms \\(lockTimeout 300 ms, raised for 2 processes taking turns at about \\d+ ms per commit\\))`,
          ),
        );
        return true;
      });
      assert.ok(performance.now() - started >= 250, "the commit waited for the lock");
      await assert.rejects(
        open(path, { lockTimeout: 50 }),
        new RegExp(`^TimedOut: Cannot open store "main": .* held by process ${holder.pid} `),
      );
      // Reads do not take the lock; the failed commit changed nothing.
      assert.equal((await store.get(["a"]))?.value, 1);
      // The store that failed to open closed its lock file, without deleting the held one.
      assert.ok(lockIsHeld(`${path}.lock`));
    } finally {
      holder.kill("SIGKILL");
      await exitOf(holder);
      await drain(out);
    }
    // The OS released the dead holder's lock: no waiting, nothing to break.
    const next = await open(path, { lockTimeout: 0 });
    assert.equal((await next.set(["a"], 3)).ok, true);
    await next.close();
    assert.equal((await store.set(["a"], 4)).ok, true);
    await store.close();
    await assert.rejects(Deno.stat(`${path}.lock`), Deno.errors.NotFound);
    const reopened = await open(path);
    assert.equal((await reopened.get(["a"]))?.value, 4);
    await reopened.close();
  });
});

Deno.test({
  name:
    "jsonfile: a writer killed (SIGKILL) while it holds the lock does not block the next writer",
  ignore: Deno.build.os === "windows",
  async fn() {
    await withTempDir(async (dir) => {
      const path = join(dir, "state.json");
      const child = spawnHelper("jsonfile_writer.ts", [path, "full"]);
      await child.stdin.close();
      const out = lines(child.stdout);
      for (let i = 0; i < 20; i++) await out.next(); // it is writing, with the lock file open
      // Freeze the writer until it is caught holding the lock, then kill it.
      let caught = false;
      for (let attempt = 0; attempt < 100 && !caught; attempt++) {
        child.kill("SIGSTOP");
        for (let i = 0; i < 100 && !await isStopped(child.pid); i++) {
          /* the signal is on its way */
        }
        caught = lockIsHeld(`${path}.lock`);
        if (!caught) {
          child.kill("SIGCONT");
        }
      }
      assert.ok(caught, "the writer was never caught holding the lock");
      child.kill("SIGKILL");
      assert.equal((await exitOf(child)).signal, "SIGKILL");
      await drain(out);
      // Another process, then this one, take the lock at once (lockTimeout 0: a single try).
      const other = spawnHelper("jsonfile_open.ts", [path, "0"]);
      await other.stdin.close();
      assert.deepEqual(await drain(lines(other.stdout)), ["ok"]);
      assert.equal((await exitOf(other)).code, 0);
      const store = await open(path, { lockTimeout: 0 });
      assert.equal((await store.get(["opened"]))?.value, other.pid);
      assert.equal((await store.set(["after"], true)).ok, true);
      await store.close();
      assert.deepEqual(await files(dir), ["state.json"]);
    });
  },
});

Deno.test("lockWaitBudget() is the lockTimeout floor, raised to LOCK_WAIT_FACTOR x measured commit time x contenders", () => {
  assert.equal(LOCK_WAIT_FACTOR, 8);
  // Nothing measured yet, or quick commits: the floor.
  assert.equal(lockWaitBudget(5000, 0, 1), 5000);
  assert.equal(lockWaitBudget(5000, 3, 4), 5000);
  // Slow commits and many processes raise it: 8 x 200 ms x 6 processes.
  assert.equal(lockWaitBudget(5000, 200, 6), 9600);
  assert.equal(lockWaitBudget(100, 300, 2), 4800);
  // Fractions round up; a waiter counts itself even when it has seen no holder.
  assert.equal(lockWaitBudget(1, 0.1, 0), 1);
  assert.equal(lockWaitBudget(1, 10.05, 1), 81);
  // lockTimeout 0 means one try, whatever was measured; a nonsense measurement is ignored.
  assert.equal(lockWaitBudget(0, 500, 10), 0);
  assert.equal(lockWaitBudget(50, Number.NaN, 3), 50);
  assert.equal(lockWaitBudget(50, -5, 3), 50);
  assert.equal(lockWaitBudget(50, Infinity, 3), 50);
});

Deno.test("jsonfile waits past lockTimeout for a holder whose commits are measured to take longer", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json");
    const store = await open(path, { lockTimeout: 100 });
    await store.set(["a"], 1);
    // The holder says its commits take 300 ms, and holds the lock for 600: longer than
    // lockTimeout, well within 8 x 300 ms x 2 processes. A constant 100 ms gave up.
    const holder = spawnHelper("jsonfile_lock_holder.ts", [`${path}.lock`, "300", "600"]);
    await holder.stdin.close();
    const out = lines(holder.stdout);
    try {
      assert.equal((await out.next()).value, "locked");
      assert.equal((await store.set(["a"], 2)).ok, true);
      assert.equal((await out.next()).value, "released");
      assert.equal((await store.get(["a"]))?.value, 2);
      // This store's own holds are measured, and published for the next waiter.
      const holderLine = parseLockHolder(await Deno.readTextFile(`${path}.lock`));
      assert.equal(holderLine?.pid, Deno.pid);
      assert.equal(typeof holderLine?.holdMs, "number");
    } finally {
      try {
        holder.kill("SIGKILL");
      } catch { /* it exited on its own, as it should */ }
      await exitOf(holder);
      await drain(out);
      await store.close();
    }
  });
});

Deno.test("jsonfile waits for a lock held through another handle in the same process", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json");
    const a = await open(path, { lockTimeout: 50 });
    {
      using other = await Deno.open(`${path}.lock`, { read: true, write: true });
      await other.lock(true);
      await assert.rejects(a.set(["x"], 1), Deno.errors.TimedOut);
      // Another store in this process waits the same way.
      await assert.rejects(open(path, { lockTimeout: 50 }), Deno.errors.TimedOut);
    } // closing the handle releases the lock
    assert.equal((await a.set(["x"], 1)).ok, true);
    await a.close();
  });
});

Deno.test("jsonfile takes the lock whatever the lock file holds, and names itself in it", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json");
    const lock = `${path}.lock`;
    // A dead process's holder line, garbage, a lock of the older link-based protocol, nothing.
    const leftovers = [
      JSON.stringify({ pid: 2 ** 22 + 1, hostname: "elsewhere.example", since: "2020" }) + "\n",
      "\u0000\u0001 not json",
      JSON.stringify({ pid: 1, hostname: "elsewhere.example", createdAt: "2020", nonce: "x" }),
      "",
    ];
    for (const content of leftovers) {
      await Deno.writeTextFile(lock, content);
      const store = await open(path, { lockTimeout: 0 });
      assert.equal((await store.set(["case"], content)).ok, true);
      const holder = JSON.parse((await Deno.readTextFile(lock)).split("\n")[0]);
      assert.equal(holder.pid, Deno.pid);
      assert.equal(holder.hostname, Deno.hostname());
      assert.ok(Math.abs(Date.parse(holder.since) - Date.now()) < 60_000, holder.since);
      await store.close();
      await assert.rejects(Deno.stat(lock), Deno.errors.NotFound, "removed when the store closed");
    }
  });
});

Deno.test("jsonfile keeps excluding writers when the lock file is deleted or replaced while stores have it open", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json");
    const lock = `${path}.lock`;
    const a = await open(path, { lockTimeout: 50 });
    const b = await open(path, { lockTimeout: 50 });
    await a.set(["n"], 1);
    // b closes while no one holds the lock, so it deletes the lock file that a has open.
    await b.close();
    await assert.rejects(Deno.stat(lock), Deno.errors.NotFound);
    // Someone now locks a new lock file at the path: a must not take its deleted one.
    for (const replace of [false, true]) {
      if (replace) {
        await Deno.writeTextFile(join(dir, "elsewhere"), "");
        await Deno.rename(join(dir, "elsewhere"), lock);
      }
      const other = await Deno.open(lock, { read: true, write: true, create: true });
      await other.lock(true);
      await assert.rejects(a.set(["n"], 2), Deno.errors.TimedOut);
      other.close();
      assert.equal((await a.set(["n"], 2)).ok, true);
    }
    await a.close();
    assert.deepEqual(await files(dir), ["state.json"]);
  });
});

// ---------------------------------------------------------------------------
// Removing a lock file (what gc does)

Deno.test({
  name: "removeLockFile() leaves a lock file someone holds, and deletes it once released",
  ignore: Deno.build.os === "windows",
  async fn() {
    await withTempDir(async (dir) => {
      const path = join(dir, "state.json.lock");
      const holder = await Deno.open(path, { read: true, write: true, create: true });
      try {
        holder.lockSync(true);
        assert.equal(await removeLockFile(path), false);
        assert.deepEqual(await files(dir), ["state.json.lock"]);
        holder.unlockSync();
        assert.equal(await removeLockFile(path), true);
        assert.deepEqual(await files(dir), []);
        assert.equal(await removeLockFile(path), false, "a file that is gone");
      } finally {
        holder.close();
      }
    });
  },
});

Deno.test("removeLockFile() asks `when` with the holder the file names, and a dry run deletes nothing", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json.lock");
    const line = JSON.stringify({
      pid: 7,
      hostname: "elsewhere",
      since: "2026-01-01T00:00:00.000Z",
    });
    await Deno.writeTextFile(path, `${line.padEnd(255)}\n`);
    const seen: unknown[] = [];
    assert.equal(await removeLockFile(path, { when: (h) => (seen.push(h), false) }), false);
    assert.equal(await removeLockFile(path, { when: () => true, dryRun: true }), true);
    assert.deepEqual(await files(dir), ["state.json.lock"]);
    assert.deepEqual(seen, [{ pid: 7, hostname: "elsewhere", since: "2026-01-01T00:00:00.000Z" }]);
    await Deno.writeTextFile(path, "not a lock file");
    assert.equal(await removeLockFile(path, { when: (h) => h !== undefined }), false);
    assert.equal(await removeLockFile(path), true);
  });
});

Deno.test("a store's lock file names this process in the line parseLockHolder() reads", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json");
    const store = await open(path);
    await store.set(["a"], 1);
    const holder = parseLockHolder(await Deno.readTextFile(`${path}.lock`));
    assert.equal(holder?.pid, Deno.pid);
    assert.equal(typeof holder?.since, "string");
    await store.close();
  });
});
