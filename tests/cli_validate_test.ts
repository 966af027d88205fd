/**
 * `flowstate validate` reports every static problem of a flow at once, each at
 * its `file:line:column` (issue 9): store names against the config's stores,
 * sub-flow files, cron fields out of range (also when the daemon loads the
 * config), unknown fields of a `schedule` object, and every template problem
 * in a string; option problems alongside the flow's other problems.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { withSandbox } from "./_cli_sandbox.ts";

const CONFIG = "stores:\n  main: { plugin: memory }\n  shared: { plugin: memory }\n";

function lines(stderr: string): string[] {
  return stderr.trim().split("\n");
}

Deno.test("validate: a state node's unknown store is reported at its place, against the config's stores", async () => {
  await withSandbox(async ({ dir, run, home }) => {
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), CONFIG);
    await Deno.writeTextFile(
      join(dir, "s.flow.yaml"),
      `id: s
nodes:
  - id: a
    type: state.set
    with: { key: k, value: 1, store: shraed }
  - id: b
    type: state.get
    with: { key: k, store: shared }
  - id: c
    type: state.get
    with: { key: k, store: "\${{ 'main' }}" }
`,
    );
    const result = await run("validate", "s.flow.yaml");
    assert.equal(result.code, 2, result.stderr);
    assert.deepEqual(lines(result.stderr), [
      'error: s.flow.yaml:5:38: nodes[0].with.store: unknown store "shraed" (did you mean "shared"?); the configured stores are "main", "shared"',
    ]);
    // run refuses it the same way, before anything is written
    const ran = await run("run", "s.flow.yaml");
    assert.equal(ran.code, 2, ran.stderr);
    assert.match(ran.stderr, /s\.flow\.yaml:5:38: nodes\[0\]\.with\.store: unknown store "shraed"/);
    await assert.rejects(Deno.stat(home), Deno.errors.NotFound, "nothing was written");
  });
});

Deno.test("validate: a flow node's missing sub-flow file is reported at its place", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.mkdir(join(dir, "flows", "folder"));
    await Deno.writeTextFile(
      join(dir, "flows", "child.flow.yaml"),
      "id: child\nnodes:\n  - id: a\n    type: log\n    with: { message: hi }\n",
    );
    await Deno.writeTextFile(
      join(dir, "flows", "parent.flow.yaml"),
      `id: parent
nodes:
  - id: ok
    type: flow
    with: { flow: ./child.flow.yaml }
  - id: gone
    type: flow
    with: { flow: ./chlid.flow.yaml }
  - id: dir
    type: flow
    with: { flow: ./folder }
`,
    );
    const result = await run("validate", "flows/parent.flow.yaml");
    assert.equal(result.code, 2, result.stderr);
    const [gone, folder, ...rest] = lines(result.stderr);
    assert.match(
      gone,
      /^error: flows\/parent\.flow\.yaml:8:19: nodes\[1\]\.with\.flow: sub-flow \.\/chlid\.flow\.yaml does not exist \(looked for .*flows\/chlid\.flow\.yaml\)$/,
    );
    assert.match(
      folder,
      /^error: flows\/parent\.flow\.yaml:11:19: nodes\[2\]\.with\.flow: sub-flow \.\/folder is a directory, not a flow file/,
    );
    assert.deepEqual(rest, []);
  });
});

Deno.test("validate: every template problem of one string is reported, each at its column", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "t.flow.yaml"),
      `id: t
nodes:
  - id: a
    type: log
    with: { message: "\${{ nope }} and \${{ 1 + }} and \${{ inputs.x }} and \${{ len( }}" }
`,
    );
    const result = await run("validate", "t.flow.yaml");
    assert.equal(result.code, 2, result.stderr);
    const found = lines(result.stderr);
    assert.equal(found.length, 4, result.stderr);
    assert.match(found[0], /^error: t\.flow\.yaml:5:22: .*reads inputs\.x, which is not declared/);
    assert.match(
      found[1],
      /^error: t\.flow\.yaml:5:27: .*Cannot parse \$\{\{ nope \}\}: unknown name "nope"/,
    );
    assert.match(
      found[2],
      /^error: t\.flow\.yaml:5:47: .*Cannot parse \$\{\{ 1 \+ \}\}: expected a value/,
    );
    assert.match(found[3], /^error: t\.flow\.yaml:5:\d+: .*Cannot parse \$\{\{ len\( \}\}/);
  });
});

Deno.test("validate: unknown fields of a schedule object are named, with a suggestion, at their place", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "sched.flow.yaml"),
      `id: sched
schedule:
  cron: "0 * * * *"
  timezon: UTC
  overlaps: skip
nodes:
  - id: a
    type: log
    with: { message: hi }
`,
    );
    const result = await run("validate", "sched.flow.yaml");
    assert.equal(result.code, 2, result.stderr);
    assert.deepEqual(lines(result.stderr), [
      'error: sched.flow.yaml:4:3: schedule.timezon: unknown field (did you mean "timezone"?)',
      'error: sched.flow.yaml:5:3: schedule.overlaps: unknown field (did you mean "overlap"?)',
    ]);
  });
});

Deno.test("a cron field out of range is reported at its place by validate and by the daemon's config load", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "cron.flow.yaml"),
      'id: cron\nschedule: "61 * * * *"\nnodes:\n  - id: a\n    type: log\n    with: { message: hi }\n',
    );
    // croner counts days and months from 0: its "day value 31" was not what was written.
    await Deno.writeTextFile(
      join(dir, "day.flow.yaml"),
      'id: day\nschedule: "0 9 32 13 *"\nnodes:\n  - id: a\n    type: log\n    with: { message: hi }\n',
    );
    const day = await run("validate", "day.flow.yaml");
    assert.equal(day.code, 2, day.stderr);
    assert.deepEqual(lines(day.stderr), [
      'error: day.flow.yaml:2:11: schedule: invalid cron expression "0 9 32 13 *": the day of month field "32" is out of range (1-31)',
    ]);
    const validated = await run("validate", "cron.flow.yaml");
    assert.equal(validated.code, 2, validated.stderr);
    assert.deepEqual(lines(validated.stderr), [
      'error: cron.flow.yaml:2:11: schedule: invalid cron expression "61 * * * *": the minute field "61" is out of range (0-59)',
    ]);

    await Deno.writeTextFile(join(dir, "flowstate.yaml"), CONFIG + "flows: [./cron.flow.yaml]\n");
    const daemon = await run("daemon");
    assert.equal(daemon.code, 2, daemon.stderr);
    assert.match(
      daemon.stderr,
      /cron\.flow\.yaml:2:11: schedule: invalid cron expression "61 \* \* \* \*": the minute field "61" is out of range \(0-59\)/,
    );

    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      CONFIG + 'jobs:\n  gc: { schedule: "0 25 * * *" }\n',
    );
    const job = await run("daemon");
    assert.equal(job.code, 2, job.stderr);
    assert.match(
      job.stderr,
      /^error: flowstate\.yaml:5:9: jobs\.gc\.schedule: invalid cron expression "0 25 \* \* \*": the hour field "25" is out of range \(0-23\)/,
    );
  });
});

Deno.test("validate: node option problems are reported with the flow's other problems, at once", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "all.flow.yaml"),
      `id: all
descripton: typo
nodes:
  - id: a
    type: log
  - id: b
    type: delay
    with: { for: 5 parsecs }
  - id: c
    type: state.get
    with: { key: k, store: nowhere }
  - id: d
    type: log
    with: { message: hi }
    needs: [zz]
`,
    );
    const result = await run("validate", "all.flow.yaml");
    assert.equal(result.code, 2, result.stderr);
    const found = lines(result.stderr);
    assert.match(
      found[0],
      /^error: all\.flow\.yaml:2:1: descripton: unknown field \(did you mean "description"\?\)/,
    );
    assert.match(
      found[1],
      /^error: all\.flow\.yaml:4:5: nodes\[0\]\.with\.message: missing required option "message" for log/,
    );
    assert.match(found[2], /^error: all\.flow\.yaml:8:18: nodes\[1\]\.with\.for: /);
    assert.match(
      found[3],
      /^error: all\.flow\.yaml:11:28: nodes\[2\]\.with\.store: unknown store "nowhere"/,
    );
    assert.match(
      found[4],
      /^error: all\.flow\.yaml:15:13: nodes\[3\]\.needs\[0\]: unknown node "zz"/,
    );
    assert.equal(found.length, 5, result.stderr);
  });
});

Deno.test("validate and run: a misspelt option of a built-in node is found when its value is a template", async () => {
  await withSandbox(async ({ dir, run, home }) => {
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), CONFIG);
    await Deno.writeTextFile(
      join(dir, "t5.flow.yaml"),
      `id: t5
inputs:
  who: { type: string, default: x }
nodes:
  - id: c
    type: log
    with:
      mesage: "hi \${{ inputs.who }}"
  - id: d
    type: state.get
    with: { key: "\${{ inputs.who }}", store: shraed, scpe: flow }
  - id: e
    type: state.increment
    with: { key: k, by: "\${{ inputs.who }}" }
`,
    );
    const result = await run("validate", "t5.flow.yaml");
    assert.equal(result.code, 2, result.stderr);
    assert.deepEqual(lines(result.stderr), [
      'error: t5.flow.yaml:8:7: nodes[0].with.message: missing required option "message" for log',
      'error: t5.flow.yaml:8:7: nodes[0].with.mesage: unknown option "mesage" for log (did you mean "message"?)',
      'error: t5.flow.yaml:11:54: nodes[1].with.scpe: unknown option "scpe" for state.get (did you mean "scope"?)',
      'error: t5.flow.yaml:11:46: nodes[1].with.store: unknown store "shraed" (did you mean "shared"?); the configured stores are "main", "shared"',
    ]);
    // run refuses it the same way, before anything is written (no failed run recorded)
    const ran = await run("run", "t5.flow.yaml");
    assert.equal(ran.code, 2, ran.stderr);
    assert.match(
      ran.stderr,
      /^error: t5\.flow\.yaml:8:7: nodes\[0\]\.with\.mesage: unknown option/m,
    );
    await assert.rejects(Deno.stat(home), Deno.errors.NotFound, "nothing was written");
    // A templated value is still checked when the run evaluates it (node e's "by").
    await Deno.writeTextFile(
      join(dir, "t6.flow.yaml"),
      `id: t6
inputs:
  who: { type: string, default: x }
nodes:
  - id: e
    type: state.increment
    with: { key: k, by: "\${{ inputs.who }}" }
`,
    );
    assert.equal((await run("validate", "t6.flow.yaml")).code, 0);
    const failed = await run("run", "t6.flow.yaml");
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(
      failed.stdout,
      /error: +node "e": t6\.flow\.yaml:7:25: nodes\[0\]\.with\.by: invalid options for state\.increment: /,
    );
  });
});

Deno.test("validate: a custom node's misspelt option is found when its value is a template, in a Worker or trusted", async () => {
  await withSandbox(async ({ dir, run }) => {
    const node = fileURLToPath(import.meta.resolve("./fixtures/nodes/explode.ts"));
    await Deno.writeTextFile(
      join(dir, "c.flow.yaml"),
      `id: c
inputs:
  why: { type: string, default: x }
nodes:
  - id: boom
    type: ${node}
    with: { mesage: "because \${{ inputs.why }}" }
`,
    );
    const inWorker = await run("validate", "c.flow.yaml");
    assert.equal(inWorker.code, 2, inWorker.stderr);
    assert.deepEqual(lines(inWorker.stderr), [
      `error: c.flow.yaml:7:11: nodes[0].with.message: missing required option "message" for ${node}`,
      `error: c.flow.yaml:7:13: nodes[0].with.mesage: unknown option "mesage" for ${node}`,
    ]);
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      `nodes:\n  trusted: [${JSON.stringify(node)}]\n`,
    );
    const trusted = await run("validate", "c.flow.yaml");
    assert.equal(trusted.code, 2, trusted.stderr);
    assert.deepEqual(lines(trusted.stderr), [
      `error: c.flow.yaml:7:11: nodes[0].with.message: missing required option "message" for ${node}`,
      `error: c.flow.yaml:7:13: nodes[0].with.mesage: unknown option "mesage" for ${node} (did you mean "message"?)`,
    ]);
  });
});

Deno.test("validate: a rule across a custom node's options that a templated value decides is left to the run, in a Worker or trusted", async () => {
  await withSandbox(async ({ dir, run }) => {
    const node = fileURLToPath(import.meta.resolve("./fixtures/nodes/cross_rule.ts"));
    await Deno.writeTextFile(
      join(dir, "r.flow.yaml"),
      `id: r
inputs:
  mode: { type: string, default: offline }
nodes:
  - id: f
    type: ${node}
    with: { mode: "\${{ inputs.mode }}" }
`,
    );
    for (const trusted of [false, true]) {
      if (trusted) {
        await Deno.writeTextFile(
          join(dir, "flowstate.yaml"),
          `nodes:\n  trusted: [${JSON.stringify(node)}]\n`,
        );
      }
      const checked = await run("validate", "r.flow.yaml");
      assert.equal(checked.code, 0, `trusted: ${trusted}\n${checked.stderr}`);
      const offline = await run("run", "r.flow.yaml");
      assert.equal(offline.code, 0, offline.stderr);
      // The run decides: online without a url breaks the rule, with the schema's own words.
      const online = await run("run", "r.flow.yaml", "--input", "mode=online");
      assert.equal(online.code, 1, online.stderr);
      assert.match(online.stdout + online.stderr, /url is required unless mode is offline/);
    }
  });
});

Deno.test("a flow file that is not there: the path looked at, and the path meant when deno task ran from a subfolder", async () => {
  await withSandbox(async ({ dir, run, runWith, home }) => {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(
      join(dir, "flows", "hello.flow.yaml"),
      "id: hello\nnodes:\n  - id: a\n    type: log\n    with: { message: hi }\n",
    );
    // `deno task` runs in the project's folder and says where it was typed in INIT_CWD.
    const fromFlows = { INIT_CWD: join(dir, "flows") };
    for (const command of ["run", "validate"]) {
      const result = await runWith(fromFlows, command, "hello.flow.yaml");
      assert.equal(result.code, 2, result.stderr);
      assert.equal(
        result.stderr.trim(),
        `error: hello.flow.yaml: Cannot load flow: no such file ${join(dir, "hello.flow.yaml")}; ` +
          `relative paths are taken from ${dir}, where \`deno task\` runs the command, ` +
          `not from ${join(dir, "flows")}, where it was typed: did you mean flows/hello.flow.yaml?`,
      );
    }
    // Not there from either folder: where relative paths are taken from, no suggestion.
    const nowhere = await runWith(fromFlows, "validate", "nothere.flow.yaml");
    assert.equal(nowhere.code, 2);
    assert.match(
      nowhere.stderr,
      /no such file \S+nothere\.flow\.yaml; relative paths are taken from .*, where it was typed\n$/,
    );
    // Typed where it runs (no INIT_CWD elsewhere): the absolute path, and a close name.
    const typo = await run("validate", "flows/helo.flow.yaml");
    assert.equal(typo.code, 2);
    assert.equal(
      typo.stderr.trim(),
      `error: flows/helo.flow.yaml: Cannot load flow: no such file ${
        join(dir, "flows", "helo.flow.yaml")
      } (did you mean flows/hello.flow.yaml?)`,
    );
    // An INIT_CWD that is not below the working directory is some other `deno task`'s (a test
    // runner's, inherited): no hint about where the command was typed.
    const inherited = await runWith({ INIT_CWD: "/" }, "validate", "flows/helo.flow.yaml");
    assert.equal(inherited.stderr.trim(), typo.stderr.trim());
    await assert.rejects(Deno.stat(home), Deno.errors.NotFound, "nothing was written");
  });
});

Deno.test("a node module that is not there: paths are relative to the flow's folder, and the file meant", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.mkdir(join(dir, "nodes"));
    await Deno.mkdir(join(dir, "bad"));
    await Deno.writeTextFile(join(dir, "nodes", "greet.ts"), "export default 1;\n");
    await Deno.writeTextFile(
      join(dir, "bad", "typo3.flow.yaml"),
      "id: t3\nnodes:\n  - id: a\n    type: ./nodez/greet.ts\n  - id: b\n    type: ../nodes/gret.ts\n  - id: c\n    type: ./elsewhere/thing.ts\n",
    );
    const result = await run("validate", "bad/typo3.flow.yaml");
    assert.equal(result.code, 2, result.stderr);
    const base = join(dir, "bad");
    assert.deepEqual(lines(result.stderr), [
      `error: bad/typo3.flow.yaml:4:11: nodes[0].type: cannot load node module ./nodez/greet.ts: Module not found "file://${
        join(base, "nodez", "greet.ts")
      }"; module paths are relative to the flow file's folder ${base} (did you mean ../nodes/greet.ts?)`,
      `error: bad/typo3.flow.yaml:6:11: nodes[1].type: cannot load node module ../nodes/gret.ts: Module not found "file://${
        join(dir, "nodes", "gret.ts")
      }"; module paths are relative to the flow file's folder ${base} (did you mean ../nodes/greet.ts?)`,
      `error: bad/typo3.flow.yaml:8:11: nodes[2].type: cannot load node module ./elsewhere/thing.ts: Module not found "file://${
        join(base, "elsewhere", "thing.ts")
      }"; module paths are relative to the flow file's folder ${base}`,
    ]);
  });
});

Deno.test("an alias inside its own anchor (a cycle) is refused at the alias, in a flow and in the config", async () => {
  await withSandbox(async ({ dir, run, home }) => {
    await Deno.writeTextFile(
      join(dir, "loop.flow.yaml"),
      "id: loop\nnodes:\n  - &n { id: a, type: log, with: { message: [*n] } }\n",
    );
    for (const command of ["validate", "run"]) {
      const result = await run(command, "loop.flow.yaml");
      assert.equal(result.code, 2, result.stderr);
      assert.deepEqual(lines(result.stderr), [
        "error: loop.flow.yaml:3:46: *n is inside its own anchor &n, so its data would never end; write the repeated part out instead of the alias",
      ]);
    }
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: &m { plugin: memory, path: *m }\n",
    );
    const config = await run("stores");
    assert.equal(config.code, 2, config.stderr);
    assert.deepEqual(lines(config.stderr), [
      "error: flowstate.yaml:2:36: *m is inside its own anchor &m, so its data would never end; write the repeated part out instead of the alias",
    ]);
    await assert.rejects(Deno.stat(home), Deno.errors.NotFound, "nothing was written");
  });
});

/** In a fresh sandbox, write each `[file, text]` and run `args`: exit 2 and exactly the `expected` line. */
async function oneErrorEach(cases: [string, string, string[], string][]): Promise<void> {
  await withSandbox(async ({ dir, run }) => {
    for (const [file, text, args, expected] of cases) {
      await Deno.writeTextFile(join(dir, file), text);
      const result = await run(...args);
      assert.equal(result.code, 2, result.stderr);
      assert.deepEqual(lines(result.stderr), [expected]);
    }
  });
}

Deno.test("config values of the wrong kind are one clear sentence at their place (changes.keep, a list)", async () => {
  const config = (store: string) => `stores:\n  main:\n    ${store}\n`;
  await oneErrorEach([
    [
      "flowstate.yaml",
      config("plugin: memory\n    changes: { keep: forever }"),
      ["state", "ls"],
      'error: flowstate.yaml:4:5: stores.main.changes: Cannot open store "main": changes.keep: expected a duration like "500ms", "2s", "1.5m", "1h", "1d" or a number of milliseconds, got "forever"',
    ],
    [
      "flowstate.yaml",
      config("plugin: sqlite\n    path: s.db\n    indexes: [{ prefix: orders, path: status }]"),
      ["state", "ls"],
      'error: flowstate.yaml:5:17: stores.main.indexes[0].prefix: expected a list, got the string "orders"',
    ],
  ]);
});

Deno.test("the commonest YAML slips are one error each, saying what to do (not yaml's words, repeated)", async () => {
  const validate = ["validate", "f.flow.yaml"];
  await oneErrorEach(
    ([
      [
        "id: t\nnodes:\n\t- id: a\n    type: log\n",
        "error: f.flow.yaml:3:1: a tab indents this line, and YAML indents with spaces only: replace the tab with spaces",
      ],
      [
        "id: t\ninputs:\n  name: { type: string }\nnodes:\n" +
        "  - { id: a, type: log, with: { message: ${{ inputs.name }} } }\n",
        'error: f.flow.yaml:5:42: ${{ … }} must be quoted here: YAML reads its { and } as a mapping; write "${{ inputs.name }}"',
      ],
      [
        "id: t\nnodes:\n  - id: a\n    type: log\n    with:\n      message: hi: there\n",
        'error: f.flow.yaml:6:16: this value holds ": ", which YAML reads as one more key: quote it, like message: "hi: there"',
      ],
      // A template in a block value needs no quotes: the ": " after it is the slip, and a tab
      // before it is.
      [
        "id: t\ninputs:\n  name: { type: string }\nnodes:\n  - id: a\n    type: log\n    with:\n" +
        "      message: Hello ${{ inputs.name }}: welcome\n",
        'error: f.flow.yaml:8:16: this value holds ": ", which YAML reads as one more key: quote it, like message: "Hello ${{ inputs.name }}: welcome"',
      ],
      [
        "id: t\ninputs:\n  name: { type: string }\nnodes:\n  - id: a\n    type: log\n    with:\n" +
        "\t  message: ${{ inputs.name }}\n",
        "error: f.flow.yaml:8:1: a tab indents this line, and YAML indents with spaces only: replace the tab with spaces",
      ],
      [
        "id: t\nnodes:\n  - id: a\n    type: log\n     with: { message: x }\n",
        "error: f.flow.yaml:5:6: this line is indented more than the line above it, so YAML reads it as part of that line's value: indent it like the keys beside it",
      ],
    ] as [string, string][]).map(([text, expected]) => ["f.flow.yaml", text, validate, expected]),
  );
});

Deno.test("a key or list item indented unlike the ones beside it is one error at that key or item, with the columns; a second document says what to do", async () => {
  // The reviewer's files: a node with `with:` and `needs:`, one line slipped in each.
  const flow = (a: string, b: string) =>
    `id: demo\nnodes:\n  - id: a\n    type: log\n${a}${b}    type: log\n    needs: [a]\n` +
    "    with: { message: there }\n";
  const ok = "    with: { message: hi }\n";
  const item = "  - id: b\n";
  await withSandbox(async ({ dir, run }) => {
    const cases: [string, string, string][] = [
      [
        "t2",
        flow("   with: { message: hi }\n", item),
        "error: t2.flow.yaml:5:4: `with:` is indented 3 spaces; the keys beside it use 4: indent it like them",
      ],
      [
        "t4",
        flow("  with: { message: hi }\n", item),
        "error: t4.flow.yaml:5:3: `with:` is indented 2 spaces; the keys beside it use 4: indent it like them",
      ],
      [
        "t6",
        `id: demo\nnodes:\n  - id: a\n    type: log\n${ok}${item}    type: log\n   needs: [a]\n` +
        "    with: { message: there }\n",
        "error: t6.flow.yaml:8:4: `needs:` is indented 3 spaces; the keys beside it use 4: indent it like them",
      ],
      [
        "t7",
        `id: demo\nnodes:\n  - id: a\n    type: log\n${ok} - id: b\n   type: log\n   needs: [a]\n` +
        "   with: { message: there }\n",
        "error: t7.flow.yaml:6:2: `- id: b` is indented 1 space; the list items beside it use 2: indent it like them",
      ],
      [
        "n3",
        `id: demo\nnodes:\n  - id: a\n    type: log\n${ok}---\nid: other\nnodes:\n  - id: b\n    type: log\n`,
        "error: n3.flow.yaml:6:1: a second YAML document starts here (`---`); a flow file holds one: remove the `---` and what follows, or put the other flow in a file of its own",
      ],
    ];
    for (const [name, text, expected] of cases) {
      await Deno.writeTextFile(join(dir, `${name}.flow.yaml`), text);
      const result = await run("validate", `${name}.flow.yaml`);
      assert.equal(result.code, 2, result.stderr);
      assert.deepEqual(lines(result.stderr), [expected], name);
    }
  });
});

Deno.test("an unquoted template inside a flow mapping written over several lines gets the quote-it hint, not yaml's raw errors", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "f.flow.yaml"),
      "id: t\ninputs:\n  name: { type: string }\nnodes:\n  - id: a\n    type: log\n    with: {\n" +
        "      message: ${{ inputs.name }}\n    }\n",
    );
    const result = await run("validate", "f.flow.yaml");
    assert.equal(result.code, 2, result.stderr);
    const errors = lines(result.stderr);
    assert.equal(
      errors[0],
      'error: f.flow.yaml:8:16: ${{ … }} must be quoted here: YAML reads its { and } as a mapping; write "${{ inputs.name }}"',
    );
    // The template's own line has only the hint; what follows the template's } is yaml's.
    assert.deepEqual(errors.filter((e) => e.startsWith("error: f.flow.yaml:8:")), [errors[0]]);
  });
});

Deno.test("validate: a folder stands for its *.flow.yaml files, and no argument for the config's flows:", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.mkdir(join(dir, "flows"));
    const good = "id: good\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n";
    const bad = "id: bad\nnodes:\n  - { id: a, type: nope }\n";
    await Deno.writeTextFile(join(dir, "flows", "good.flow.yaml"), good);
    await Deno.writeTextFile(join(dir, "flows", "bad.flow.yaml"), bad);
    await Deno.writeTextFile(join(dir, "flows", "notes.yaml"), "rows: [1]\n");
    await Deno.mkdir(join(dir, "empty"));

    const folder = await run("validate", "flows");
    assert.equal(folder.code, 2, folder.stderr);
    assert.deepEqual(lines(folder.stdout), ["ok flows/good.flow.yaml"]);
    assert.match(
      folder.stderr,
      /^error: flows\/bad\.flow\.yaml:3:\d+: nodes\[0\]\.type: unknown node type "nope"/m,
    );
    assert.doesNotMatch(folder.stderr, /notes\.yaml/);

    // No argument and no flows: in the config: how to give some.
    const none = await run("validate");
    assert.equal(none.code, 2, none.stderr);
    assert.match(
      none.stderr,
      /give flow files or folders, or list them under flows: in flowstate\.yaml/,
    );

    // No argument: the config's flows:.
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: { plugin: memory }\nflows: [./flows]\n",
    );
    await Deno.writeTextFile(
      join(dir, "flows", "bad.flow.yaml"),
      good.replace("id: good", "id: bad"),
    );
    const all = await run("validate", "--json");
    assert.equal(all.code, 0, all.stderr);
    const results = JSON.parse(all.stdout) as { file: string; ok: boolean }[];
    assert.deepEqual(results.map((r) => [r.file.replace(/^.*\/flows\//, ""), r.ok]), [
      ["bad.flow.yaml", true],
      ["good.flow.yaml", true],
    ]);

    const empty = await run("validate", "empty");
    assert.equal(empty.code, 2, empty.stderr);
    assert.match(empty.stderr, /empty is a folder with no \*\.flow\.yaml file/);
  });
});

Deno.test("validate warns of ${inputs.x} and {{ inputs.x }}, templates written the way other tools write theirs (plain text here)", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "look.flow.yaml"),
      "id: look\ninputs:\n  name: { type: string, default: x }\nnodes:\n  - id: a\n    type: log\n" +
        '    with: { message: "${inputs.name}, {{ inputs.name }}, ${{ inputs.name }}, $${{ inputs.name }}, ${HOME}" }\n' +
        'outputs:\n  o: "{{nodes.a.output}}"\n',
    );
    const result = await run("validate", "look.flow.yaml");
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(lines(result.stderr), [
      'warning: look.flow.yaml: node a: with.message holds "${inputs.name}", which is plain text, not a template: write ${{ inputs.name }}',
      'warning: look.flow.yaml: node a: with.message holds "{{ inputs.name }}", which is plain text, not a template: write ${{ inputs.name }}',
      'warning: look.flow.yaml: outputs.o holds "{{nodes.a.output}}", which is plain text, not a template: write ${{ nodes.a.output }}',
    ]);
    const json = JSON.parse((await run("validate", "--json", "look.flow.yaml")).stdout);
    assert.equal(json[0].warnings.length, 3);
  });
});
