/**
 * `flowstate graph <flow> [--format mermaid|dot] [--run <id>]`: the flow's
 * graph on stdout, its text exact for Mermaid and its structure checked
 * statement by statement for DOT (no Graphviz here); labels with quotes and
 * `#` escaped for each format; a node with no `needs` but `when:` drawn
 * below the last nodes of the rest; `--run` colours the nodes by a run's
 * outcomes; an invalid flow gives validate's errors and exit code.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { withSandbox } from "./_cli_sandbox.ts";

const CONFIG = "stores:\n  main: { plugin: sqlite, path: state.db }\n";

const SMALL = `id: small
nodes:
  - { id: bump, type: state.increment, with: { key: n } }
  - { id: say, type: log, needs: [bump], with: { message: "\${{ nodes.bump.output }}" } }
`;

/** Every kind of node: sub-flow (a path with quotes and #), forEach, if:, when: with and without needs. */
const NIGHTLY = `id: nightly
nodes:
  - { id: lock, type: state.set, with: { key: lock, value: 1 } }
  - id: notify
    type: flow
    needs: [lock]
    forEach: [a, b, c]
    with: { flow: './sub "x" #1.flow.yaml' }
  - id: big
    type: log
    needs: [lock]
    if: "\${{ nodes.lock.output > 1 }}"
    with: { message: big }
  - { id: unlock, type: state.delete, needs: [notify], when: always, with: { key: lock } }
  - { id: alert, type: log, when: on_failure, with: { message: failed } }
  - { id: page, type: log, needs: [alert], with: { message: paged } }
`;

const SUB = "id: sub\nnodes:\n  - { id: s, type: log, with: { message: hi } }\n";

async function project(dir: string): Promise<void> {
  await Deno.writeTextFile(join(dir, "flowstate.yaml"), CONFIG);
  await Deno.writeTextFile(join(dir, "small.flow.yaml"), SMALL);
  await Deno.writeTextFile(join(dir, "nightly.flow.yaml"), NIGHTLY);
  await Deno.writeTextFile(join(dir, 'sub "x" #1.flow.yaml'), SUB);
}

Deno.test("graph: a small flow as Mermaid, exactly (the default format)", async () => {
  await withSandbox(async ({ dir, run }) => {
    await project(dir);
    const result = await run("graph", "small.flow.yaml");
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, "");
    assert.equal(
      result.stdout,
      `flowchart TD
  %% flow: small
  n0["bump<br/>state.increment"]
  n1["say<br/>log"]
  n0 --> n1
`,
    );
    assert.equal(
      (await run("graph", "small.flow.yaml", "--format", "mermaid")).stdout,
      result.stdout,
    );
  });
});

Deno.test("graph: every kind of node in Mermaid: sub-flow path escaped, forEach, if:, when: edges dashed, the end of the run", async () => {
  await withSandbox(async ({ dir, run }) => {
    await project(dir);
    const result = await run("graph", "nightly.flow.yaml");
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      result.stdout,
      `flowchart TD
  %% flow: nightly
  n0["lock<br/>state.set"]
  n1[["notify<br/>flow: ./sub #34;x#34; #35;1.flow.yaml<br/>× 3 items"]]
  n2{{"big<br/>log<br/>if: \${{ nodes.lock.output #62; 1 }}"}}
  n3["unlock<br/>state.delete<br/>when: always"]
  n4["alert<br/>log<br/>when: on_failure"]
  n5["page<br/>log"]
  n0 --> n1
  n0 --> n2
  n1 -.-> n3
  n4 --> n5
  n1 -.->|end| n4
  n2 -.->|end| n4
  classDef onFailure stroke-dasharray:5 3
  classDef always stroke-dasharray:5 3
  classDef forEach stroke-width:3px
  class n1 forEach
  class n3 always
  class n4 onFailure
`,
    );
  });
});

/** The statements of a DOT graph, one a line inside `digraph "…" { … }`. */
function dotStatements(text: string): { name: string; statements: string[] } {
  const lines = text.trimEnd().split("\n");
  const head = /^digraph ("(?:[^"\\]|\\.)*") \{$/.exec(lines[0]);
  assert.ok(head, lines[0]);
  assert.equal(lines.at(-1), "}");
  return { name: JSON.parse(head[1]), statements: lines.slice(1, -1).map((l) => l.trim()) };
}

/** A DOT quoted string's value (its escapes are JSON's for `\\`, `\"` and `\n`). */
const unquote = (quoted: string) => JSON.parse(quoted);

Deno.test("graph --format dot: one statement per node and edge, quoted and escaped, dashed where when: is", async () => {
  await withSandbox(async ({ dir, run }) => {
    await project(dir);
    const result = await run("graph", "nightly.flow.yaml", "--format", "dot");
    assert.equal(result.code, 0, result.stderr);
    const { name, statements } = dotStatements(result.stdout);
    assert.equal(name, "nightly");
    const STRING = String.raw`"(?:[^"\\]|\\.)*"`;
    const nodeRe = new RegExp(`^(${STRING}) \\[(.*)\\];$`);
    const edgeRe = new RegExp(`^(${STRING}) -> (${STRING})(?: \\[(.*)\\])?;$`);
    const attrRe = new RegExp(`(\\w+)=(${STRING}|[\\w.]+)`, "g");
    const attrs = (text = "") =>
      Object.fromEntries(
        [...text.matchAll(attrRe)].map(([, k, v]) => [k, v.startsWith('"') ? unquote(v) : v]),
      );
    const nodes = new Map<string, Record<string, string>>();
    const edges: [string, string, Record<string, string>][] = [];
    for (const statement of statements) {
      if (/^(rankdir|node \[)/.test(statement)) continue;
      const edge = edgeRe.exec(statement);
      if (edge) {
        edges.push([unquote(edge[1]), unquote(edge[2]), attrs(edge[3])]);
        continue;
      }
      const node = nodeRe.exec(statement);
      assert.ok(node, `not a node, an edge or a default: ${statement}`);
      nodes.set(unquote(node[1]), attrs(node[2]));
    }
    assert.deepEqual([...nodes.keys()], ["lock", "notify", "big", "unlock", "alert", "page"]);
    assert.equal(nodes.get("lock")!.label, "lock\nstate.set");
    assert.equal(nodes.get("notify")!.label, 'notify\nflow: ./sub "x" #1.flow.yaml\n× 3 items');
    assert.equal(nodes.get("notify")!.peripheries, "2");
    assert.equal(nodes.get("big")!.shape, "hexagon");
    assert.equal(nodes.get("unlock")!.style, "rounded,filled,dashed");
    assert.equal(nodes.get("alert")!.style, "rounded,filled,dashed");
    assert.equal(nodes.get("page")!.style, "rounded,filled");
    assert.deepEqual(edges, [
      ["lock", "notify", {}],
      ["lock", "big", {}],
      ["notify", "unlock", { style: "dashed" }],
      ["alert", "page", {}],
      ["notify", "alert", { style: "dashed", label: "end" }],
      ["big", "alert", { style: "dashed", label: "end" }],
    ]);
  });
});

Deno.test("graph --run: the nodes coloured by a run's outcomes, with a legend; a run of another flow refused", async () => {
  await withSandbox(async ({ dir, run }) => {
    await project(dir);
    await Deno.writeTextFile(
      join(dir, "fails.flow.yaml"),
      `id: fails
nodes:
  - { id: ok, type: log, with: { message: hi } }
  - { id: boom, type: fail, needs: [ok], with: { message: down } }
  - { id: never, type: log, needs: [boom], with: { message: no } }
  - { id: alert, type: log, when: on_failure, with: { message: failed } }
  - { id: calm, type: log, when: always, needs: [ok], if: "\${{ false }}", with: { message: c } }
`,
    );
    const ran = await run("run", "fails.flow.yaml", "--json");
    assert.equal(ran.code, 1, ran.stderr);
    const runId = JSON.parse(ran.stdout).id;
    const mermaid = await run("graph", "fails.flow.yaml", "--run", runId);
    assert.equal(mermaid.code, 0, mermaid.stderr);
    const lines = mermaid.stdout.split("\n");
    assert.ok(lines.includes('  n0["ok<br/>log<br/>[succeeded]"]'), mermaid.stdout);
    assert.ok(lines.includes('  n1["boom<br/>fail<br/>[failed]"]'), mermaid.stdout);
    assert.ok(lines.includes('  n2["never<br/>log<br/>[skipped]"]'), mermaid.stdout);
    assert.ok(lines.includes('  n3["alert<br/>log<br/>when: on_failure<br/>[succeeded]"]'));
    assert.ok(
      lines.some((l) => l.startsWith(`  %% legend (run ${runId}, failed): succeeded #e3f4ea/`)),
      mermaid.stdout,
    );
    assert.ok(lines.includes("  classDef failed fill:#fbe7e5,stroke:#c8342b,color:#1d2330"));
    assert.ok(lines.includes("  class n1 failed"), mermaid.stdout);
    assert.ok(lines.includes("  class n0,n3 succeeded"), mermaid.stdout);

    const dot = await run("graph", "fails.flow.yaml", "--run", runId, "--format", "dot");
    assert.equal(dot.code, 0, dot.stderr);
    assert.match(dot.stdout, /^ {2}\/\/ legend \(run \w+, failed\): succeeded #e3f4ea\/#1f8a4c, /m);
    assert.match(
      dot.stdout,
      /^ {2}"boom" \[label="boom\\nfail\\n\[failed\]", style="rounded,filled", fillcolor="#fbe7e5", color="#c8342b"\];$/m,
    );

    const other = await run("graph", "small.flow.yaml", "--run", runId);
    assert.equal(other.code, 1);
    assert.equal(other.stdout, "");
    assert.match(other.stderr, /^error: Run \w+ is a run of flow "fails", not of "small"/);
    const missing = await run("graph", "small.flow.yaml", "--run", "00000000000000000000");
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Run 00000000000000000000 not found/);
  });
});

Deno.test("graph: an invalid flow gives validate's errors (file:line:column) and exit code, nothing on stdout", async () => {
  await withSandbox(async ({ dir, run }) => {
    await project(dir);
    await Deno.writeTextFile(
      join(dir, "bad.flow.yaml"),
      `id: bad
nodes:
  - { id: a, type: log, with: { message: hi } }
  - { id: b, type: log, needs: [nope], with: { message: hi } }
`,
    );
    const validate = await run("validate", "bad.flow.yaml");
    const graph = await run("graph", "bad.flow.yaml");
    assert.equal(validate.code, 2);
    assert.equal(graph.code, 2);
    assert.equal(graph.stdout, "");
    assert.equal(graph.stderr, validate.stderr);
    assert.match(graph.stderr, /^error: bad\.flow\.yaml:4:\d+: nodes\[1\]\.needs/);
    const format = await run("graph", "small.flow.yaml", "--format", "svg");
    assert.equal(format.code, 2);
    assert.match(format.stderr, /'svg' is invalid|Allowed choices are mermaid, dot/);
  });
});
