// The conformance suite run from a plugin's own project (tests/fixtures/linked_plugin: a deno.json
// that links this checkout as jsr:@flowstate/core and maps a name of its own), as a stranger runs
// it before the core is published: the multi-process case's second process must resolve the
// plugin's imports as the test does, and a close() that leaves something running must fail that
// case, saying so, instead of hanging the suite.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { HANG_LIMIT_MS } from "./_deadline.ts";

const PROJECT = fileURLToPath(new URL("./fixtures/linked_plugin/", import.meta.url));

/** `deno test suite.ts` in the plugin's project, as its author runs it; killed if it hangs. */
async function suite(env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "test",
      "--no-lock",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-run",
      "--allow-net",
      "--allow-sys",
      "suite.ts",
    ],
    cwd: PROJECT,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(HANG_LIMIT_MS),
  }).output();
  const text = new TextDecoder();
  return { code, out: text.decode(stdout) + text.decode(stderr) };
}

const CASE = "multiProcess: two processes writing with compare-and-set lose no update";

Deno.test("the second process of the suite resolves a linked plugin's imports with its project's deno.json", async () => {
  const { code, out } = await suite();
  assert.equal(code, 0, out);
  assert.ok(out.includes(`${CASE} ... ok`), out);
  assert.doesNotMatch(out, /not in import map/);
});

Deno.test("a driver whose close() leaves a timer running fails the multi-process case, saying so, instead of hanging", async () => {
  const { code, out } = await suite({ FLOWSTATE_TEST_LEAK: "1" });
  assert.equal(code, 1, out);
  assert.ok(out.includes(`${CASE} ... FAILED`), out);
  assert.match(
    out,
    /the second process closed its store \(store\.close\(\) resolved\) but did not exit within 30 s: the driver's close\(\) must release every connection/,
  );
});
