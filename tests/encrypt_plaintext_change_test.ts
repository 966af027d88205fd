/**
 * An encrypted store stores its declared `plaintext` fields beside each sealed
 * value, so that the backend's queries, indexes and search can use them. A
 * path declared plaintext after values were written is not beside those
 * values until the rekey job runs: a query on it would silently not find
 * them. The store records which paths its values carry; a query, explain or
 * search on a newly declared path is refused (saying to run rekey) until
 * rekey has stored it beside every value.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore, type StoreSpec } from "../mod.ts";
import { backupStore, rekeyStore, restoreBackup } from "../jobs.ts";
import { withCliProject } from "./_cli_sandbox.ts";

const KEY = "33".repeat(32);

function spec(path: string, plaintext: string[], plugin: "sqlite" | "jsonfile"): StoreSpec {
  return { plugin, path, encrypt: { key: KEY, plaintext } } as StoreSpec;
}

for (const plugin of ["sqlite", "jsonfile"] as const) {
  Deno.test(`${plugin}: a path declared plaintext after values were written is refused by queries until rekey, then finds them`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "flowstate-plaintext-change-" });
    try {
      const path = join(dir, plugin === "sqlite" ? "s.db" : "s.json");
      {
        await using before = await openStore(spec(path, ["status"], plugin), { name: "main" });
        await before.set(["o", "1"], { status: "open", customer: { id: "c1" } });
        await before.set(["o", "2"], { status: "paid", customer: { id: "c2" } });
      }
      await using after = await openStore(spec(path, ["status", "customer.id"], plugin), {
        name: "main",
      });
      // Another process (here: another store) opened with the new declaration before rekey.
      await using other = await openStore(spec(path, ["status", "customer.id"], plugin), {
        name: "main",
      });
      const byCustomer = {
        prefix: ["o"],
        where: [{ path: "customer.id", op: "eq" as const, value: "c1" }],
      };
      const refused =
        /Cannot query: where\[0\] \("customer\.id"\) was declared plaintext in encrypted store "main" after values were written without it \(they carry status\).*run the rekey job/;
      await assert.rejects(() => after.query(byCustomer), refused);
      await assert.rejects(
        () => after.query({ prefix: ["o"], orderBy: { path: "customer.id" } }),
        /orderBy\[0\].*declared plaintext.*rekey/,
      );
      await assert.rejects(() => after.explain(byCustomer), /Cannot explain: .*rekey/);
      await assert.rejects(() => other.query(byCustomer), refused);

      const report = await rekeyStore(after);
      assert.equal(report.resealed, 2);
      assert.deepEqual((await after.query(byCustomer)).map((e) => e.key), [["o", "1"]]);
      // The other store reads the record again: rekey ran since it opened.
      assert.deepEqual((await other.query(byCustomer)).map((e) => e.key), [["o", "1"]]);
      await after.close();
      await other.close();
      // Reopened with the same declaration: nothing is refused.
      await using again = await openStore(spec(path, ["status", "customer.id"], plugin), {
        name: "main",
      });
      assert.deepEqual((await again.query(byCustomer)).map((e) => e.key), [["o", "1"]]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("a store that holds no entries takes a changed plaintext declaration at once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-plaintext-change-" });
  try {
    const path = join(dir, "s.db");
    {
      await using first = await openStore(spec(path, [], "sqlite"), { name: "main" });
      await first.set(["o", "1"], { status: "open" });
      await first.delete(["o", "1"]);
    }
    await using store = await openStore(spec(path, ["status"], "sqlite"), { name: "main" });
    await store.set(["o", "2"], { status: "open" });
    const open = await store.query({
      prefix: ["o"],
      where: [{ path: "status", op: "eq", value: "open" }],
    });
    assert.deepEqual(open.map((e) => e.key), [["o", "2"]]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CLI: state query on a newly declared plaintext path says to run rekey (exit 2), and finds the value after jobs run rekey", async () => {
  const config = (plaintext: string) =>
    `stores:\n  default: { plugin: sqlite, path: state.db, encrypt: { key: "${KEY}", plaintext: [${plaintext}] } }\n`;
  await withCliProject(config("status"), async (run, dir) => {
    for (
      const [key, value] of [["o/1", '{"status":"open","c":"ada"}'], [
        "o/2",
        '{"status":"paid","c":"bob"}',
      ]]
    ) {
      const set = await run("state", "set", key, value);
      assert.equal(set.code, 0, set.stderr);
    }
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), config("status, c"));
    const before = await run("state", "query", "--prefix", "o", "--where", "c=ada");
    assert.equal(before.code, 2, before.stdout + before.stderr);
    assert.doesNotMatch(before.stdout, /No entries match/);
    assert.match(
      before.stderr,
      /--where c=ada \("c"\) was declared plaintext .* after values were written without it .*flowstate jobs run rekey/,
    );
    const rekey = await run("jobs", "run", "rekey");
    assert.equal(rekey.code, 0, rekey.stderr);
    const after = await run("state", "query", "--prefix", "o", "--where", "c=ada");
    assert.equal(after.code, 0, after.stderr);
    assert.equal(after.stdout.trim(), 'o/1\t{"status":"open","c":"ada"}');
  });
});

Deno.test("a backup restored into an encrypted store that declares more plaintext paths: queries on them wait for rekey", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-plaintext-restore-" });
  try {
    const file = join(dir, "main.fsbackup");
    {
      await using source = await openStore(spec(join(dir, "a.db"), ["status"], "sqlite"), {
        name: "main",
      });
      await source.set(["o", "1"], { status: "open", customer: { id: "c1" } });
      await backupStore(source, file);
    }
    await using target = await openStore(
      spec(join(dir, "b.db"), ["status", "customer.id"], "sqlite"),
      { name: "copy" },
    );
    await restoreBackup(target, file);
    const byCustomer = {
      prefix: ["o"],
      where: [{ path: "customer.id", op: "eq" as const, value: "c1" }],
    };
    await assert.rejects(
      () => target.query(byCustomer),
      /"customer\.id"\) was declared plaintext .*\(they carry status\).*rekey/,
    );
    await rekeyStore(target);
    assert.deepEqual((await target.query(byCustomer)).map((e) => e.key), [["o", "1"]]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (const plugin of ["sqlite", "jsonfile"] as const) {
  Deno.test(`${plugin}: a path dropped from plaintext, then declared again, is refused until rekey: the values written meanwhile lack it`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "flowstate-plaintext-narrow-" });
    try {
      const path = join(dir, plugin === "sqlite" ? "s.db" : "s.json");
      const open = (plaintext: string[]) =>
        openStore(spec(path, plaintext, plugin), { name: "main" });
      {
        await using wide = await open(["status", "customer.id"]);
        await wide.set(["o", "1"], { status: "open", customer: { id: "c1" } });
      }
      {
        // A deploy rolled back to a config without customer.id: its writes carry status alone.
        await using narrow = await open(["status"]);
        await narrow.set(["o", "2"], { status: "open", customer: { id: "c1" } });
      }
      await using again = await open(["status", "customer.id"]);
      const byCustomer = {
        prefix: ["o"],
        where: [{ path: "customer.id", op: "eq" as const, value: "c1" }],
      };
      // Before: the record still said customer.id, and the query found o/1 alone.
      await assert.rejects(
        () => again.query(byCustomer),
        /declared plaintext in encrypted store "main" after values were written without it \(they carry status\).*rekey/,
      );
      assert.equal((await rekeyStore(again)).resealed, 1);
      assert.deepEqual((await again.query(byCustomer)).map((e) => e.key), [["o", "1"], ["o", "2"]]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
