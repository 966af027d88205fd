import assert from "node:assert/strict";
import { join } from "node:path";
import { withSandbox } from "./_cli_sandbox.ts";
import { openStore } from "../mod.ts";

const CONFIG = `stores:
  default:
    plugin: sqlite
    path: state.db
    indexes:
      - { prefix: [orders], path: status }
      - { prefix: [orders], path: [customer, id] }
    search: { prefix: [notes], fields: [title, body] }
`;

async function seed(run: (...args: string[]) => Promise<{ code: number; stderr: string }>) {
  const writes: [string, unknown][] = [
    ["orders/1", { status: "open", createdAt: 3, customer: { id: 7 } }],
    ["orders/2", { status: "closed", createdAt: 1, customer: { id: 7 } }],
    ["orders/3", { status: "open", createdAt: 2, customer: { id: 9 } }],
    ["notes/a", { title: "Shopping list", body: "apples and pears" }],
    ["notes/b", { title: "Apples", body: "red apples, green apples" }],
    ["notes/c", { title: "Other", body: "nothing here", extra: "apples" }],
  ];
  for (const [key, value] of writes) {
    const r = await run("state", "set", key, JSON.stringify(value));
    assert.equal(r.code, 0, r.stderr);
  }
}

Deno.test("flowstate state query filters, sorts and explains with the declared index", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), CONFIG);
    await seed(run);
    const open = await run(
      "state",
      "query",
      "--prefix",
      "orders",
      "--where",
      "status=open",
      "--order-by=-createdAt",
      "--json",
    );
    assert.equal(open.code, 0, open.stderr);
    assert.deepEqual(JSON.parse(open.stdout).map((e: { key: string[] }) => e.key), [
      ["orders", "1"],
      ["orders", "3"],
    ]);
    const text = await run("state", "query", "--prefix", "orders", "--where", "customer.id>=8");
    assert.equal(text.code, 0, text.stderr);
    assert.equal(text.stdout, 'orders/3\t{"status":"open","createdAt":2,"customer":{"id":9}}\n');
    const limited = await run(
      "state",
      "query",
      "--prefix",
      "orders",
      "--order-by",
      "customer.id,createdAt:desc",
      "--limit",
      "2",
      "--json",
    );
    assert.deepEqual(JSON.parse(limited.stdout).map((e: { key: string[] }) => e.key[1]), [
      "1",
      "2",
    ]);
    const plan = await run(
      "state",
      "query",
      "--prefix",
      "orders",
      "--where",
      "status=open",
      "--explain",
      "--json",
    );
    assert.equal(plan.code, 0, plan.stderr);
    const parsed = JSON.parse(plan.stdout);
    assert.match(parsed.index, /^fs_ix_/);
    assert.equal(parsed.scan, false);
    assert.equal(parsed.by, "native");
    const unindexed = await run(
      "state",
      "query",
      "--prefix",
      "orders",
      "--where",
      "x=1",
      "--explain",
    );
    assert.equal(unindexed.code, 0, unindexed.stderr);
    assert.match(unindexed.stdout, /^no index: scans every entry under the prefix/);
    const bad = await run("state", "query", "--where", "=3");
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /Invalid --where "=3"/);
    // A doubled operator is refused, not compared with the text ">100" (which matched nothing).
    const doubled = await run("state", "query", "--prefix", "orders", "--where", "price>>100");
    assert.equal(doubled.code, 2, doubled.stderr);
    assert.equal(
      doubled.stderr.trim(),
      `error: Invalid --where "price>>100": the value ">100" starts with an operator character (a typo for price>100?); to compare with that text, write it as a JSON string: price>'">100"'`,
    );
    const quoted = await run("state", "query", "--prefix", "orders", "--where", 'price>">100"');
    assert.equal(quoted.code, 0, quoted.stderr);
    // A misspelt direction is not read as a field named "createdAt:dsc" (nothing sorted).
    const typo = await run("state", "query", "--prefix", "orders", "--order-by", "createdAt:dsc");
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /"dsc" is not a direction \(did you mean "desc"\?\)/);
    assert.match(typo.stderr, /createdAt:asc or createdAt:desc/);
    // "-createdAt" as a word of its own is not commander's "argument missing": it says to write "=".
    for (const rest of [[], ["--limit", "3"]]) {
      const spaced = await run("state", "query", "--order-by", "-createdAt", ...rest);
      assert.equal(spaced.code, 2);
      assert.equal(
        spaced.stderr,
        'error: --order-by -createdAt: a value that starts with "-" is read as an option; write --order-by=-createdAt\n',
      );
    }
    const upper = await run("state", "query", "--prefix", "orders", "--order-by", "createdAt:DESC");
    assert.equal(upper.code, 0, upper.stderr);
    assert.deepEqual(upper.stdout.split("\n").filter(Boolean).map((l) => l.split("\t")[0]), [
      "orders/1",
      "orders/3",
      "orders/2",
    ]);
  });
});

Deno.test("flowstate state search ranks entries holding every word", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), CONFIG);
    await seed(run);
    const hits = await run("state", "search", "APPLES", "--json");
    assert.equal(hits.code, 0, hits.stderr);
    const parsed = JSON.parse(hits.stdout);
    // notes/c has "apples" only in an undeclared field.
    assert.deepEqual(parsed.map((h: { key: string[] }) => h.key), [["notes", "b"], ["notes", "a"]]);
    assert.ok(parsed[0].score >= parsed[1].score);
    assert.deepEqual(Object.keys(parsed[0]), ["key", "value", "version", "expiresAt", "score"]);
    const inTitle = await run("state", "search", "apples", "--fields", "title");
    assert.equal(inTitle.code, 0, inTitle.stderr);
    assert.match(inTitle.stdout, /^\S+\tnotes\/b\t/);
    // Three significant digits: sqlite's BM25 scores are ~1e-6, which 3 decimals would print as 0.
    const score = Number(inTitle.stdout.split("\t")[0]);
    assert.ok(score > 0, inTitle.stdout);
    assert.equal(inTitle.stdout.trim().split("\n").length, 1);
    const none = await run("state", "search", "pears apples missing");
    assert.equal(none.code, 0);
    assert.match(none.stderr, /Nothing matches/);
    const undeclared = await run("state", "search", "apples", "--fields", "extra");
    assert.equal(undeclared.code, 2);
    assert.match(undeclared.stderr, /field "extra" is not indexed for search/);
  });
});

Deno.test("flowstate state search compares words in Unicode NFKC: NFC finds NFD, ASCII finds full-width, letters find a ligature", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), CONFIG);
    const value = { title: "Cafe\u0301 \uff2c\uff21\uff34\uff34\uff25", body: "\ufb01ne print" };
    const set = await run("state", "set", "notes/d", JSON.stringify(value));
    assert.equal(set.code, 0, set.stderr);
    for (
      const text of ["caf\u00e9 latte", "CAF\u00c9", "fine print", "\uff4c\uff41\uff54\uff54\uff45"]
    ) {
      const hits = await run("state", "search", text, "--json");
      assert.equal(hits.code, 0, hits.stderr);
      assert.deepEqual(JSON.parse(hits.stdout).map((h: { key: string[] }) => h.key), [
        ["notes", "d"],
      ], text);
    }
  });
});

Deno.test("a bad index declaration in the config is reported at its file:line:column", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  default:\n    plugin: sqlite\n    path: s.db\n    indexes:\n      - { prefix: [orders], pth: status }\n",
    );
    const r = await run("state", "query", "--prefix", "orders");
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /flowstate\.yaml:6:\d+/);
    assert.match(r.stderr, /pth/);
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  default:\n    plugin: sqlite\n    path: s.db\n    indexes:\n      - { prefix: [orders], path: items.0 }\n",
    );
    const deep = await run("state", "set", "a", "1");
    assert.notEqual(deep.code, 0);
    assert.match(deep.stderr, /flowstate\.yaml:5:\d+/);
    assert.match(deep.stderr, /array index/);
  });
});

Deno.test("state.query and state.search nodes query and search a scope", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      `stores:
  default:
    plugin: sqlite
    path: state.db
    indexes: [{ prefix: [global, orders], path: status }]
    search: { prefix: [global, notes], fields: [text] }
`,
    );
    await Deno.writeTextFile(
      join(dir, "find.flow.yaml"),
      `id: find
nodes:
  - { id: a, type: state.set, with: { scope: global, key: [orders, "1"], value: { status: open, n: 2 } } }
  - { id: b, type: state.set, with: { scope: global, key: [orders, "2"], value: { status: done, n: 1 } } }
  - { id: c, type: state.set, with: { scope: global, key: [orders, "3"], value: { status: open, n: 1 } } }
  - { id: d, type: state.set, with: { scope: global, key: [notes, x], value: { text: "Blue Whale" } } }
  - { id: e, type: state.set, with: { scope: global, key: [notes, y], value: { text: "blue sky" } } }
  - id: open
    type: state.query
    needs: [a, b, c]
    with:
      scope: global
      prefix: orders
      where: [{ path: status, op: eq, value: open }]
      orderBy: { path: n }
  - id: found
    type: state.search
    needs: [d, e]
    with: { scope: global, text: whale BLUE, prefix: notes }
outputs:
  open: "\${{ nodes.open.output }}"
  found: "\${{ nodes.found.output }}"
`,
    );
    const r = await run("run", "find.flow.yaml", "--json");
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const outputs = JSON.parse(r.stdout).outputs;
    assert.deepEqual(outputs.open, [
      { key: ["orders", "3"], value: { status: "open", n: 1 } },
      { key: ["orders", "1"], value: { status: "open", n: 2 } },
    ]);
    assert.equal(outputs.found.length, 1);
    assert.deepEqual(outputs.found[0].key, ["notes", "x"]);
    assert.equal(typeof outputs.found[0].score, "number");
    await Deno.writeTextFile(
      join(dir, "bad.flow.yaml"),
      `id: bad
nodes:
  - { id: q, type: state.query, with: { scope: global, where: [{ path: a, op: like, value: 1 }] } }
`,
    );
    const invalid = await run("validate", "bad.flow.yaml");
    assert.equal(invalid.code, 2);
    assert.match(invalid.stdout + invalid.stderr, /bad\.flow\.yaml:3:\d+.*op/);
  });
});

Deno.test("an index declared on a large existing store is built at open, with a line before and after", async () => {
  await withSandbox(async ({ dir, run }) => {
    {
      await using store = await openStore({ plugin: "sqlite", path: join(dir, "big.db") });
      const op = store.atomic();
      for (let i = 0; i < 10_001; i++) {
        op.set(["orders", String(i)], { status: i === 7 ? "x" : "y" });
      }
      assert.ok((await op.commit()).ok);
    }
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  default:\n    plugin: sqlite\n    path: big.db\n    indexes: [{ prefix: [orders], path: status }]\n",
    );
    const first = await run(
      "state",
      "query",
      "--prefix",
      "orders",
      "--where",
      "status=x",
      "--json",
    );
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(JSON.parse(first.stdout).map((e: { key: string[] }) => e.key), [[
      "orders",
      "7",
    ]]);
    assert.match(
      first.stderr,
      /building index fs_ix_\w+ on status under \["orders"\]: 10001 entries/,
    );
    assert.match(first.stderr, /built index fs_ix_\w+ .* in \d+ ms/);
    const second = await run("state", "query", "--prefix", "orders", "--where", "status=x");
    assert.equal(second.code, 0, second.stderr);
    assert.doesNotMatch(second.stderr, /building/);
  });
});

Deno.test("encrypted store: state search without --fields reads the declared plaintext fields; a sealed field in --where, --order-by or --fields is a usage error naming the option as typed", async () => {
  await withSandbox(async ({ dir, run }) => {
    const config = (search: string) =>
      `stores:
  default:
    plugin: sqlite
    path: state.db
${search}    encrypt: { key: "${"ab".repeat(32)}", plaintext: [title] }
`;
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      config("    search: { prefix: [global, notes], fields: [title] }\n"),
    );
    const set = await run(
      "state",
      "set",
      "--scope",
      "global",
      "notes/q3",
      '{"title":"Quarterly report","body":"secret"}',
    );
    assert.equal(set.code, 0, set.stderr);
    const scoped = ["--scope", "global", "--prefix", "notes"];
    const found = await run("state", "search", "report", ...scoped, "--json");
    assert.equal(found.code, 0, found.stderr);
    assert.deepEqual(JSON.parse(found.stdout).map((h: { key: string[] }) => h.key), [[
      "notes",
      "q3",
    ]]);
    const sealed = 'which is sealed in encrypted store "default"';
    const declare = "declare it plaintext (encrypt: { plaintext: [title, body] }) and run the " +
      "rekey job";
    for (
      const [args, message] of [
        [
          ["search", "report", ...scoped, "--fields", "title,body"],
          `Cannot search: --fields title,body names "body", ${sealed} (search cannot read sealed ` +
          `values); search plaintext fields only (--fields title), or ${declare}`,
        ],
        [
          ["query", ...scoped, "--where", "body=secret"],
          `Cannot query: --where body=secret is on "body", ${sealed} (queries cannot read sealed ` +
          `values); ${declare}, or filter the listed values in your code`,
        ],
        [
          ["query", ...scoped, "--where", "title~Q", "--order-by=title,-body"],
          `Cannot query: --order-by=-body is on "body", ${sealed} (queries cannot read sealed ` +
          `values); ${declare}, or filter the listed values in your code`,
        ],
        [
          ["query", ...scoped, "--order-by", "body", "--explain"],
          `Cannot explain: --order-by body is on "body", ${sealed} (queries cannot read sealed ` +
          `values); ${declare}, or filter the listed values in your code`,
        ],
      ] as const
    ) {
      const r = await run("state", ...args);
      assert.deepEqual(
        { code: r.code, stdout: r.stdout, stderr: r.stderr },
        { code: 2, stdout: "", stderr: `error: ${message}\n` },
        args.join(" "),
      );
    }
    // The nodes: state.search without fields works; a sealed path names the node's option.
    await Deno.writeTextFile(
      join(dir, "find.flow.yaml"),
      `id: find
nodes:
  - { id: found, type: state.search, with: { scope: global, prefix: notes, text: REPORT } }
  - { id: q, type: state.query, needs: [found], with: { scope: global, where: [{ path: body, op: exists }] } }
`,
    );
    const flow = await run("run", "find.flow.yaml", "--json");
    assert.equal(flow.code, 1, flow.stderr + flow.stdout);
    const record = JSON.parse(flow.stdout);
    assert.deepEqual(record.nodes.found.output.map((h: { key: string[] }) => h.key), [[
      "notes",
      "q3",
    ]]);
    assert.match(
      record.nodes.q.error,
      /^Cannot query: where\[0\] is on "body", which is sealed in encrypted store "default"/,
    );
    assert.doesNotMatch(flow.stderr, /--debug/);
    // Without a search declaration a search without --fields would read every field.
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), config(""));
    const undeclared = await run("state", "search", "report", ...scoped);
    assert.deepEqual({ code: undeclared.code, stderr: undeclared.stderr }, {
      code: 2,
      stderr: `error: Cannot search: without fields a search reads every field (the store ` +
        `declares no search fields) in encrypted store "default" (search cannot read sealed ` +
        `values); search plaintext fields only (--fields title)\n`,
    });
    const named = await run("state", "search", "report", ...scoped, "--fields", "title");
    assert.equal(named.code, 0, named.stderr);
    assert.match(named.stdout, /\tnotes\/q3\t/);
  });
});
