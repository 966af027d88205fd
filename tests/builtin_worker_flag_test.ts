// A built-in node that runs in a Worker (http, exec) without Deno's
// --unstable-worker-options: the refusal names the flag and the deno.json
// setting, never `nodes: { trusted }` (a built-in is not a module one can trust).
import assert from "node:assert/strict";
import { join } from "node:path";
import { resultOf } from "./_cli_sandbox.ts";

const ROOT = new URL("..", import.meta.url).pathname;

Deno.test("http and exec nodes without --unstable-worker-options: the refusal says how to fix it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-worker-flag-" });
  try {
    await Deno.writeTextFile(
      join(dir, "calls.flow.yaml"),
      [
        "id: calls",
        "nodes:",
        "  - id: get",
        "    type: http",
        "    permissions: { net: [example.com] }",
        "    with: { url: https://example.com/ }",
        "  - id: list",
        "    type: exec",
        "    permissions: { run: [ls] }",
        "    with: { command: ls }",
        "",
      ].join("\n"),
    );
    // -A: the command line is readable, so Flowstate sees the flag is missing.
    const result = resultOf(
      await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--config",
          join(ROOT, "deno.json"),
          join(ROOT, "cli.ts"),
          "validate",
          "calls.flow.yaml",
        ],
        cwd: dir,
        env: { NO_COLOR: "1", RUST_BACKTRACE: "0", FLOWSTATE_HOME: join(dir, "home") },
        stdin: "null",
      }).output(),
    );
    assert.equal(result.code, 2, result.stderr);
    for (const [kind, line] of [["http", "4:11"], ["exec", "8:11"]]) {
      assert.match(
        result.stderr,
        new RegExp(
          `calls\\.flow\\.yaml:${line}: nodes\\[\\d\\]\\.type: ${kind} nodes run in Workers with their declared permissions, which needs Deno's --unstable-worker-options flag: add it to the deno run/test command \\(or "unstable": \\["worker-options"\\] to the project's deno\\.json\\)`,
        ),
      );
    }
    assert.doesNotMatch(result.stderr, /trusted/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
