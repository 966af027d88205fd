// The conformance suite (@flowstate/core/testing) against a plugin with one deliberate mistake
// (tests/fixtures/buggy_plugin.ts), run as a plugin author runs it: `deno test` of a suite file.
// Each mistake must fail the suite, saying what is wrong, and never hang it.
import assert from "node:assert/strict";
import { openStore } from "../mod.ts";
import buggy from "./fixtures/buggy_plugin.ts";

const SUITE = new URL("./fixtures/buggy_suite.ts", import.meta.url).pathname;

/** `deno test` of the suite with `env`; killed if it has not ended after two minutes (a hang). */
async function suite(env: Record<string, string>): Promise<{ code: number; out: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["test", "--allow-read", "--allow-env", SUITE],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const text = new TextDecoder();
  return { code, out: text.decode(stdout) + text.decode(stderr) };
}

Deno.test("the conformance suite passes the buggy plugin without a bug, the in-flight-writes case too", async () => {
  const { code, out } = await suite({});
  assert.equal(code, 0, out);
  assert.match(
    out,
    /persistence: writes in flight when close\(\) is called land or reject, never vanish \.\.\. ok/,
  );
  assert.match(out, /open\(\) passes ctx\.clock and ctx\.changes to openStore \.\.\. ok/);
});

Deno.test("a driver that writes although a check failed fails the suite, named, instead of hanging it", async () => {
  const { code, out } = await suite({ FLOWSTATE_TEST_BUG: "writes-on-conflict" });
  assert.equal(code, 1, out);
  assert.match(out, /change feed: a failed compare-and-set records nothing \.\.\. FAILED/);
  assert.match(
    out,
    /TypeError: Cannot commit to store "buggy": its driver reported a conflict but applied the commit .*a commit with a failing check must write nothing/,
  );
});

Deno.test("a driver whose list() ignores startExclusive fails the paging cases, naming startExclusive", async () => {
  const { code, out } = await suite({ FLOWSTATE_TEST_BUG: "ignores-start-exclusive" });
  assert.equal(code, 1, out);
  assert.match(
    out,
    /list\(\) resumed from a cursor gave again the entry it stopped after \(\[.*\]\): a driver's list\(range\) must leave out range\.start when range\.startExclusive is true/,
  );
  assert.doesNotMatch(out, /paging did not end after 100 pages/);
});

Deno.test("a driver that acknowledges writes and drops them at close fails the in-flight-writes case", async () => {
  const { code, out } = await suite({ FLOWSTATE_TEST_BUG: "acks-then-drops" });
  assert.equal(code, 1, out);
  assert.match(
    out,
    /persistence: writes in flight when close\(\) is called land or reject, never vanish \.\.\. FAILED/,
  );
  assert.match(out, /are not in the store after reopening: set \["w","0"\]/);
});

Deno.test("an open function that drops ctx.changes fails the suite once, saying so, and runs no case", async () => {
  const { code, out } = await suite({ FLOWSTATE_TEST_OPEN: "drops-changes" });
  assert.equal(code, 1, out);
  assert.match(out, /open\(\) passes ctx\.clock and ctx\.changes to openStore \.\.\. FAILED/);
  assert.match(out, /AssertionError: open\(\) dropped ctx\.changes: pass it to openStore/);
  assert.match(
    out,
    /change feed: one entry per changed key, gap-free, in commit order \(not run: fix open\(\) first\) \.\.\. ignored/,
  );
  assert.doesNotMatch(out, /change feed: .* \.\.\. ok/);
});

Deno.test("an open function that drops ctx.clock fails the suite once with what to pass", async () => {
  const { code, out } = await suite({ FLOWSTATE_TEST_OPEN: "drops-clock" });
  assert.equal(code, 1, out);
  assert.match(out, /AssertionError: open\(\) must pass ctx\.clock to openStore/);
  assert.doesNotMatch(out, /open\(\) dropped ctx\.changes/);
  assert.match(out, /FAILED \| 0 passed \| 1 failed \(1 step\)/);
});

Deno.test("store.close() lets the writes on their way finish, even with a driver that drops them once closed", async () => {
  const id = `close_drops_${crypto.randomUUID().slice(0, 8)}`;
  const store = await openStore({ plugin: buggy, id, bug: "close-drops" });
  const writing = store.set(["a"], 1);
  await store.close();
  assert.equal((await writing).ok, true);
  await using again = await openStore({ plugin: buggy, id, bug: "close-drops" });
  assert.equal((await again.get(["a"]))?.value, 1, "an acknowledged write vanished at close");
});

Deno.test("a native clear() that counts expired entries fails the clear cases, saying what to return", async () => {
  const { code, out } = await suite({ FLOWSTATE_TEST_BUG: "clear-counts-expired" });
  assert.equal(code, 1, out);
  assert.match(out, /clear\(\) counts only live entries \.\.\. FAILED/);
  assert.match(
    out,
    /clear\(\) skips the expired entry in its count: a driver's native clear\(range, now\) deletes every entry in the range, expired ones too, but returns how many were live at `now`/,
  );
});

Deno.test("a driver that cannot hold a value at the 16 MiB limit fails the suite, saying what to raise", async () => {
  const { code, out } = await suite({ FLOWSTATE_TEST_BUG: "caps-values" });
  assert.equal(code, 1, out);
  assert.match(out, /a value of exactly 16 MiB of JSON \(the limit\) round-trips \.\.\. FAILED/);
  assert.match(
    out,
    /set\(\) of a value of exactly 16777216 bytes of JSON threw: .*max_allowed_packet.*Every backend must hold any value up to that limit/,
  );
});
