/**
 * A node's `when:` through the CLI: `flowstate run` of examples/on-failure.flow.yaml
 * (exit code, output, `runs show`, the state it leaves), `flowstate validate`
 * refusing a bad `when:` and `run.failed` where it would always be empty, and
 * `flowstate schema` knowing the field.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { withSandbox } from "./_cli_sandbox.ts";

const EXAMPLE = fileURLToPath(new URL("../examples/on-failure.flow.yaml", import.meta.url));

Deno.test("run: the on-failure example fails (exit 1), releases its lock, records and logs the failure; runs show says which nodes ran by when:", async () => {
  await withSandbox(async ({ dir, run }) => {
    const flow = join(dir, "on-failure.flow.yaml");
    await Deno.copyFile(EXAMPLE, flow);
    const failed = await run("run", flow);
    assert.equal(failed.code, 1, failed.stderr);
    const id = /^run: +(\S+)$/m.exec(failed.stdout)?.[1];
    assert.ok(id, failed.stdout);
    const record = JSON.parse((await run("runs", "show", id, "--json")).stdout).run;
    assert.equal(record.status, "failed");
    assert.deepEqual(record.error, { node: "check", message: "the upstream API answered 503" });
    assert.deepEqual(
      Object.fromEntries(
        Object.entries(record.nodes).map(([id, n]) => [id, (n as { status: string }).status]),
      ),
      {
        lock: "succeeded",
        import: "succeeded",
        check: "failed",
        publish: "skipped",
        unlock: "succeeded",
        record: "succeeded",
        alert: "succeeded",
      },
    );
    assert.equal(record.nodes.record.when, "on_failure");
    assert.match(
      failed.stderr,
      /\[alert\] error: check failed: the upstream API answered 503 \(kept in last-failure\)/,
    );

    const kept = await run("state", "get", "last-failure", "--flow", "on-failure");
    assert.equal(kept.code, 0, kept.stderr);
    assert.deepEqual(JSON.parse(kept.stdout), {
      run: record.id,
      failed: [{ node: "check", error: "the upstream API answered 503" }],
    });
    const lock = await run("state", "get", "lock", "--flow", "on-failure");
    assert.notEqual(lock.code, 0, "the lock was released");

    const shown = await run("runs", "show", record.id);
    assert.equal(shown.code, 0, shown.stderr);
    const heads = shown.stdout.split("\n").filter((line) => /^ {2}\w+: /.test(line));
    assert.deepEqual(heads.map((line) => line.replace(/, \d+ms/, "")), [
      "  lock: succeeded, 1 attempt",
      "  import: succeeded, 1 attempt",
      "  check: failed, 1 attempt",
      "  unlock: succeeded, 1 attempt (when: always)",
      "  record: succeeded, 1 attempt (when: on_failure)",
      "  alert: succeeded, 1 attempt",
      "  publish: skipped, 0 attempts",
    ]);

    const healthy = await run("run", flow, "--input", "healthy=true", "--json");
    assert.equal(healthy.code, 0, healthy.stderr);
    const ok = JSON.parse(healthy.stdout);
    assert.equal(ok.status, "succeeded");
    assert.equal(ok.nodes.unlock.status, "succeeded");
    assert.deepEqual(ok.nodes.record, { status: "skipped", attempts: 0, when: "on_failure" });
    assert.equal(ok.nodes.alert.status, "skipped");
    const again = await run("runs", "show", ok.id);
    assert.match(again.stdout, /^ {2}record: skipped, 0 attempts, \d+ms \(when: on_failure\)$/m);
  });
});

Deno.test("validate: an unknown when: value is refused at its place with a suggestion, and run.failed only where it can be filled", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "w.flow.yaml"),
      `id: w
nodes:
  - { id: work, type: fail }
  - id: alert
    type: log
    needs: [work]
    when: on_falure
    with: { message: hi }
  - id: early
    type: log
    with: { message: "\${{ run.failed }}" }
  - id: watcher
    type: log
    when: always
    with: { message: "\${{ nodes.work.status }} \${{ nodes.work.error }} \${{ run.failed }}" }
  - id: next
    type: log
    needs: [watcher]
    with: { message: "\${{ run.failed[0].node }}" }
outputs:
  failed: "\${{ run.failed }}"
`,
    );
    const result = await run("validate", "w.flow.yaml");
    assert.equal(result.code, 2, result.stderr);
    assert.deepEqual(result.stderr.trim().split("\n"), [
      'error: w.flow.yaml:7:11: nodes[1].when: expected one of "on_success", "on_failure", "always", got "on_falure" (did you mean "on_failure"?)',
      'error: w.flow.yaml:11:22: nodes[2].with.message: node "early" reads run.failed, which only a node with when: on_failure or always (or one after it) can see filled; add when: on_failure',
      'error: w.flow.yaml:21:11: outputs.failed: output "failed" reads run.failed: outputs are computed only when the run succeeded, when it is empty',
    ]);
  });
});

Deno.test("schema: the JSON schema of a flow knows when: and its values", async () => {
  await withSandbox(async ({ run }) => {
    const result = await run("schema");
    assert.equal(result.code, 0, result.stderr);
    const schema = JSON.parse(result.stdout);
    const text = JSON.stringify(schema);
    const found: unknown[] = [];
    const walk = (v: unknown) => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (typeof v === "object" && v !== null) {
        const o = v as Record<string, unknown>;
        if (typeof o.properties === "object" && o.properties !== null && "when" in o.properties) {
          found.push((o.properties as Record<string, unknown>).when);
        }
        Object.values(o).forEach(walk);
      }
    };
    walk(schema);
    assert.ok(found.length > 0, text.slice(0, 200));
    assert.deepEqual((found[0] as { enum: string[] }).enum, ["on_success", "on_failure", "always"]);
  });
});
