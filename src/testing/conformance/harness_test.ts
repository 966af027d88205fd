import assert from "node:assert/strict";
import { openStore } from "../../plugin.ts";
import { testStore } from "./mod.ts";

// The harness itself: cleanup hooks, and the multiProcess check (it must be
// able to fail).

// Every case's id is cleaned up once its stores are closed, and afterAll runs
// once, after all of them.
const opened = new Set<string>();
const cleaned: string[] = [];
testStore(
  "cleanup hooks (memory)",
  async ({ id, clock, indexes, search, changes }) => {
    assert.ok(!cleaned.includes(id), `case ${id} opened its store after its cleanup ran`);
    opened.add(id);
    return await openStore({ plugin: "memory", indexes, search, changes }, { clock });
  },
  {
    cleanup: ({ id }) => void cleaned.push(id),
    afterAll: () => {
      assert.ok(opened.size > 100, `the suite opened stores for ${opened.size} ids`);
      assert.deepEqual(
        [...cleaned].sort(),
        [...opened].sort(),
        "cleanup ran once for every id that was opened",
      );
    },
  },
);

/** Run the suite file `name` of testdata/ in a child `deno test`, which must fail: its output. */
async function failingSuite(name: string): Promise<string> {
  const suite = new URL(`../testdata/${name}`, import.meta.url).pathname;
  const { code, stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["test", "--allow-read", "--allow-env", "--allow-run", suite],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(stdout);
  assert.equal(code, 1, out);
  return out;
}

Deno.test("testStore rejects a cleanup that is not a function and a multiProcess without spec", () => {
  const open = () => openStore({ plugin: "memory" });
  assert.throws(
    () => testStore("x", open, { cleanup: "drop" as never }),
    /options\.cleanup must be a function/,
  );
  assert.throws(
    () => testStore("x", open, { multiProcess: {} as never }),
    /options\.multiProcess\.spec must be a function/,
  );
});

Deno.test("the multiProcess case fails a store whose second process does not see the first's writes", async () => {
  const out = await failingSuite("false_claim_suite.ts");
  const step = "multiProcess: two processes writing with compare-and-set lose no update";
  // That case fails, in both suites, and says why.
  assert.match(out, /with spec: Store conformance \.\.\. FAILED/);
  assert.match(out, /without spec: Store conformance \.\.\. FAILED/);
  assert.equal(out.split(`${step} ... FAILED`).length - 1, 2, out);
  assert.match(out, /a smaller count is a lost update/);
  assert.match(out, /pass testStore\(name, open, \{ multiProcess: \{ spec:/);
  // It ignores mustExist too: the mustExist case fails in both suites, saying why.
  const mustExist =
    "multiProcess: mustExist refuses a store that does not exist, creates nothing, and opens one that does";
  assert.equal(out.split(`${mustExist} ... FAILED`).length - 1, 2, out);
  assert.match(
    out,
    /of a store that does not exist opened one: with context\.mustExist the plugin must throw StoreMissingError/,
  );
  assert.match(out, /FAILED \| 0 passed \(\d+ steps\) \| 2 failed \(4 steps\)/);
});

Deno.test("the suite fails a plugin whose clear keeps expired entries, whose purge deletes a live one, or whose commit is not atomic, saying why", async () => {
  const out = await failingSuite("lax_plugins_suite.ts");
  const failed = out.split("\n").filter((line) => / \.\.\. FAILED/.test(line))
    .map((line) => line.trim().replace(/ \.\.\. FAILED.*$/, ""));
  assert.deepEqual(failed.sort(), [
    "20 concurrent compare-and-set increments end at exactly 20",
    "clear keeps expired: Store conformance",
    "clear() with bounds counts only live entries and removes expired ones",
    "commit not atomic: Store conformance",
    "concurrent set(ifVersion: null): exactly one writer wins",
    "purge too early: Store conformance",
    "purgeExpired() deletes expired entries, returns how many, keeps live ones",
  ], out);
  assert.match(out, /clear\(\) must delete expired entries too/);
  assert.match(out, /an entry is live while expiresAt > now/);
  assert.match(out, /all 20 compare-and-sets succeeded, so \d+ wrote over a version that had/);
  assert.equal(
    out.split("The driver's commit() must evaluate its checks and apply its writes with no other")
      .length - 1,
    2,
    out,
  );
});
