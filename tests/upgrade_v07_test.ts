/**
 * Upgrading in place from Flowstate 0.7.0: this version reads the stores 0.7
 * wrote (`tests/fixtures/v0.7/`, made with the 0.7.0 release, see its README)
 * as they are, through the CLI.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cliOk, type ProjectCli, runCli, workOneRun } from "./_cli_sandbox.ts";

const FIXTURES = fileURLToPath(new URL("./fixtures/v0.7/", import.meta.url));

/** A copy of fixture project `name` in a temp directory (removed after `fn`). */
async function withFixture(
  name: string,
  fn: (run: ProjectCli, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-v07-" });
  try {
    await copyDir(join(FIXTURES, name), dir);
    await fn((...args) => runCli(dir, args), dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function copyDir(from: string, to: string): Promise<void> {
  for await (const e of Deno.readDir(from)) {
    if (e.isDirectory) {
      await Deno.mkdir(join(to, e.name));
      await copyDir(join(from, e.name), join(to, e.name));
    } else await Deno.copyFile(join(from, e.name), join(to, e.name));
  }
}

/** The run 0.7 recorded abandoned in `abandoned/` (see the fixtures' README). */
const ABANDONED = "0mxdz6owimgbdjtz13jb";

Deno.test("a run 0.7 recorded abandoned: a resume says its nodes that succeeded did, and run again", async () => {
  await withFixture("abandoned", async (run) => {
    // 0.7 recorded its end with no node outcome: its events say what ran.
    const shown = await cliOk(run, "runs", "show", ABANDONED);
    assert.match(shown, /status: +failed/);
    assert.match(shown, /abandoned: no heartbeat/);
    const preview = JSON.parse(
      await cliOk(run, "runs", "resume", ABANDONED, "--dry-run", "--json"),
    ) as { nodes: { node: string; reused: boolean; reason: string; message: string }[] };
    const by = new Map(preview.nodes.map((n) => [n.node, n]));
    // The charge was made (its state.increment wrote 1): not "did not run", but why it runs again.
    for (const node of ["charge", "receipt"]) {
      const d = by.get(node)!;
      assert.equal(d.reused, false, node);
      assert.equal(d.reason, "output", `${node}: ${d.message}`);
      assert.match(d.message, /succeeded in run .*abandoned.*its side effects happen again/);
    }
    assert.equal(by.get("settle")!.reason, "status");
    assert.equal(by.get("done")!.reason, "not-run");
    assert.equal((await cliOk(run, "state", "get", "flow/charge/charges")).trim(), "1");
  });
});

/** The run of `signal_taken/` (see the fixtures' README). */
const APPROVED = "0mxdzd3trus3h52v5as1";

Deno.test("a run whose end 0.7 recorded after its wait node took a signal: its retry waits for a new one", async () => {
  await withFixture("signal_taken", async (run, dir) => {
    // The same flow, with a wait that gives up soon (rather than wait for ever for a new signal).
    const flow = join(dir, "flows", "approve.flow.yaml");
    const text = await Deno.readTextFile(flow);
    await Deno.writeTextFile(
      flow,
      text.replace("with: { signal: approve }", "with: { signal: approve, timeout: 1s }")
        .replace("for: 20s", "for: 0s"),
    );
    assert.match(await cliOk(run, "runs", "retry", APPROVED), /queued again/);
    await workOneRun(dir);
    const shown = await cliOk(run, "runs", "show", APPROVED);
    // Before: the approval of its first attempt was given again, and it paid without one.
    assert.match(shown, /status: +failed/);
    assert.match(shown, /no signal "approve" within 1s/);
    assert.equal((await run("state", "get", "flow/approve/paid")).code, 1);
  });
});

Deno.test("a 0.7 backup of an encrypted store restored into one declaring more plaintext: queries wait for rekey", async () => {
  await withFixture("encrypted_backup", async (run, dir) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      `stores:
  default:
    plugin: sqlite
    path: s.db
    encrypt: { key: "${"33".repeat(32)}", plaintext: [status, customer.id] }
`,
    );
    const restored = await run("restore", "enc07.fsbackup", "--store", "default");
    assert.equal(restored.code, 0, restored.stderr);
    // Before: exit 0 and no entry, the values sealed by 0.7 lacking customer.id beside them.
    const refused = await run("state", "query", "--where", "customer.id=c1");
    assert.equal(refused.code, 2, refused.stdout);
    assert.match(refused.stderr, /customer\.id.*run the rekey job \(flowstate jobs run rekey\)/);
    assert.match(restored.stderr, /made by Flowstate 0\.7 or before .* run the rekey job/);
    await cliOk(run, "jobs", "run", "rekey");
    const found = await cliOk(run, "state", "query", "--where", "customer.id=c1");
    assert.deepEqual(found.trim().split("\n").map((l) => l.split("\t")[0]), ["o/1", "o/2"]);
  });
});
