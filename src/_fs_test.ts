import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { setAside } from "./_fs.ts";

/**
 * A SQLite file in WAL mode whose last commits live only in its `-wal`, as a
 * process killed before a checkpoint leaves it: copied while the writer is open.
 */
function walOnlyDatabase(dir: string): string {
  const scratch = join(dir, "scratch");
  Deno.mkdirSync(scratch);
  const db = new DatabaseSync(join(scratch, "w.db"));
  db.exec(
    "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; CREATE TABLE t(x); INSERT INTO t VALUES (1), (2)",
  );
  const path = join(dir, "store.db");
  Deno.copyFileSync(join(scratch, "w.db"), path);
  Deno.copyFileSync(join(scratch, "w.db-wal"), path + "-wal");
  db.close();
  Deno.removeSync(scratch, { recursive: true });
  return path;
}

function rows(path: string): number {
  const db = new DatabaseSync(path);
  try {
    const table = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 't'").get();
    if (table?.n !== 1) return 0;
    return Number(db.prepare("SELECT count(*) AS n FROM t").get()!.n);
  } finally {
    db.close();
  }
}

class Killed extends Error {}

Deno.test("setAside: a kill after any step leaves the store untouched or a complete copy with its -wal, and running it again finishes", async () => {
  const steps: string[] = [];
  {
    const dir = Deno.makeTempDirSync();
    const path = walOnlyDatabase(dir);
    await setAside(path, ["-wal", "-shm"], (step) => void steps.push(step));
    Deno.removeSync(dir, { recursive: true });
  }
  assert.ok(steps.length >= 2, `steps: ${steps.join(", ")}`);
  for (const [i, stop] of steps.entries()) {
    const dir = Deno.makeTempDirSync();
    try {
      const path = walOnlyDatabase(dir);
      await assert.rejects(
        setAside(path, ["-wal", "-shm"], (step) => {
          if (step === stop) throw new Killed(step);
        }),
        Killed,
      );
      const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
      const copy = names.find((n) => /^store\.db\.corrupt-[0-9TZ]+$/.test(n));
      const mainThere = names.includes("store.db");
      // Untouched, or a copy that opens with every commit (its -wal beside it).
      if (copy !== undefined && !mainThere) {
        const check = Deno.makeTempDirSync();
        Deno.copyFileSync(join(dir, copy), join(check, "c.db"));
        const wal = names.find((n) => n === `store.db-wal${copy.slice("store.db".length)}`);
        if (wal !== undefined) Deno.copyFileSync(join(dir, wal), join(check, "c.db-wal"));
        assert.equal(rows(join(check, "c.db")), 2, `after "${stop}" (step ${i}): ${names}`);
        Deno.removeSync(check, { recursive: true });
      } else {
        assert.ok(mainThere, `after "${stop}": ${names}`);
      }
      // Running it again (if there is still something to set aside) finishes, without a second copy.
      if (mainThere) {
        const done = await setAside(path, ["-wal", "-shm"]);
        if (copy !== undefined) assert.equal(done.movedTo, join(dir, copy));
      }
      const after = [...Deno.readDirSync(dir)].map((e) => e.name);
      assert.equal(after.filter((n) => /^store\.db\.corrupt-/.test(n)).length, 1, `${after}`);
      const moved = after.find((n) => /^store\.db\.corrupt-/.test(n))!;
      const check = Deno.makeTempDirSync();
      Deno.copyFileSync(join(dir, moved), join(check, "c.db"));
      Deno.copyFileSync(
        join(dir, `store.db-wal${moved.slice("store.db".length)}`),
        join(check, "c.db-wal"),
      );
      assert.equal(rows(join(check, "c.db")), 2, `after "${stop}" and again: ${after}`);
      Deno.removeSync(check, { recursive: true });
      // A leftover -wal beside a missing store is SQLite's to drop: a new store starts empty.
      assert.equal(rows(path), 0);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  }
});
