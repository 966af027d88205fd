/**
 * End-to-end tests of the `flowstate` CLI: each test runs `deno run cli.ts`
 * as a subprocess in a temporary working directory with FLOWSTATE_HOME set.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Result, withSandbox } from "./_cli_sandbox.ts";

const DENO_JSON = fileURLToPath(new URL("../deno.json", import.meta.url));

function assertNoStackTrace(text: string): void {
  assert.doesNotMatch(text, /^\s+at /m, `unexpected stack trace:\n${text}`);
}

const MEMORY_CONFIG = "stores:\n  main:\n    plugin: memory\n    snapshot: main.snapshot.json\n";

Deno.test("flowstate --help exits 0 and lists the commands", async () => {
  await withSandbox(async ({ run }) => {
    const result = await run("--help");
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /Usage: flowstate/);
    assert.match(result.stdout, /\bstores\b/);
    assert.match(result.stdout, /\bstate\b/);
    assert.match(result.stdout, /--config <path>/);
    assert.match(result.stdout, /Exit codes: 0 ok, 1 failure or not found, 2 usage error/);
  });
});

Deno.test("flowstate --version prints the version from deno.json", async () => {
  await withSandbox(async ({ run }) => {
    const { version } = JSON.parse(await Deno.readTextFile(DENO_JSON));
    const result = await run("--version");
    assert.equal(result.code, 0);
    assert.equal(result.stdout.trim(), version);
  });
});

Deno.test("flowstate with an unknown command exits 2 with one readable error", async () => {
  await withSandbox(async ({ run }) => {
    const result = await run("stats");
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^error: unknown command 'stats'/);
    assert.match(result.stderr, /did you mean state/i);
    assertNoStackTrace(result.stderr);
    // With --help (anywhere) it is the same error, not the program's help with exit 0.
    for (const args of [["stats", "--help"], ["-c", "x.yaml", "stats", "-h"], ["help", "stats"]]) {
      const help = await run(...args);
      assert.equal(help.code, 2, args.join(" "));
      assert.equal(help.stderr, result.stderr, args.join(" "));
      assert.equal(help.stdout, "");
    }
    assert.equal((await run("state", "--help")).code, 0);
  });
});

Deno.test("an unknown subcommand of any group exits 2 with a suggestion, --help or not", async () => {
  await withSandbox(async ({ run }) => {
    for (
      const [group, typo, near] of [
        [["runs"], "lss", "ls"],
        [["state"], "gett", "get"],
        [["flows"], "versins", "versions"],
        [["jobs"], "lss", "ls"],
        [["schedules"], "lss", "ls"],
        [["workers"], "lss", "ls"], // a group with a default subcommand
        [["migrate"], "dat", "data"],
        [["migrate", "data"], "sttus", "status"],
      ] as const
    ) {
      const expected = `error: unknown command '${typo}'\n(Did you mean ${near}?)\n` +
        `(run flowstate ${group.join(" ")} --help for usage)\n`;
      for (
        const args of [
          [...group, typo],
          [...group, typo, "--help"],
          [...group, typo, "--json", "-h"],
          ["-c", "flowstate.yaml", ...group, typo, "--help"],
          ["help", ...group, typo],
          [...group, "help", typo],
        ]
      ) {
        const result = await run(...args);
        assert.equal(result.code, 2, args.join(" "));
        assert.equal(result.stderr, expected, args.join(" "));
        assert.equal(result.stdout, "", args.join(" "));
      }
    }
    // As a JSON log line: the same words, without the help hint (as commander's own errors).
    const logged = await run("--log-format", "json", "runs", "lss", "--help");
    assert.equal(logged.code, 2);
    assert.equal(JSON.parse(logged.stderr).msg, "unknown command 'lss'\n(Did you mean ls?)");
    // An option the group does not take is commander's error, as before (not "unknown command").
    const option = await run("state", "--store", "default", "ls");
    assert.equal(option.code, 2);
    assert.match(option.stderr, /^error: unknown option '--store'\n/);
    // Known subcommands (and a command's arguments) still get their help.
    for (const args of [["runs", "ls", "--help"], ["help", "runs"], ["run", "lss", "--help"]]) {
      const result = await run(...args);
      assert.equal(result.code, 0, args.join(" "));
      assert.match(result.stdout, /^Usage: flowstate /, args.join(" "));
    }
  });
});

Deno.test("a usage error of a subcommand names that subcommand's help, whose options it lists", async () => {
  await withSandbox(async ({ run }) => {
    for (
      const [args, help] of [
        [["runs", "lss"], "flowstate runs --help"],
        [["runs", "show", "x", "--jsn"], "flowstate runs show --help"],
        [["state", "get"], "flowstate state get --help"],
        [["run"], "flowstate run --help"],
        [["rn"], "flowstate --help"],
      ] as const
    ) {
      const result = await run(...args);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, new RegExp(`\\n\\(run ${help} for usage\\)\\n$`), args.join(" "));
    }
    const listed = await run("runs", "show", "--help");
    assert.match(listed.stdout, /--json/, "the help named lists the option the user mistyped");
  });
});

Deno.test("a flowstate.yml (not .yaml) beside no flowstate.yaml exits 2 saying to rename or name it, instead of using the default store", async () => {
  await withSandbox(async ({ dir, home, run }) => {
    await Deno.writeTextFile(join(dir, "flowstate.yml"), "stores:\n  main: { plugin: memory }\n");
    for (const args of [["stores"], ["state", "set", "k", "1"]]) {
      const result = await run(...args);
      assert.equal(result.code, 2, result.stderr);
      assert.equal(
        result.stderr,
        "error: Cannot load config: there is a flowstate.yml here, and the config file is " +
          "named flowstate.yaml: rename it, or name it with --config flowstate.yml " +
          '($FLOWSTATE_CONFIG, or openRuntime({ config: "flowstate.yml" }) in a program)\n',
      );
    }
    assert.equal(
      await Deno.stat(join(home, "state.db")).catch(() => null),
      null,
      "no default store",
    );
    const named = await run("--config", "flowstate.yml", "stores");
    assert.equal(named.code, 0, named.stderr);
    assert.match(named.stdout, /^main\s+memory/m);
  });
});

Deno.test("a flow given as --config says it is a flow, once, instead of an error for each of its fields", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "hello.flow.yaml"),
      'id: hello\nnodes:\n  - { id: a, type: log, with: { message: "${{ run.id }}" } }\n',
    );
    const result = await run("--config", "hello.flow.yaml", "stores");
    assert.equal(result.code, 2, result.stderr);
    assert.equal(
      result.stderr,
      "error: hello.flow.yaml:1:1: this is a flow (it has id: and nodes:), not a config: run it " +
        "with flowstate run <file>; --config names a flowstate.yaml (stores:, flows:, …)\n",
    );
  });
});

Deno.test("records: written as a mapping says it takes a store's name, with the one it named", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: { plugin: memory }\nrecords: { store: main }\n",
    );
    const result = await run("stores");
    assert.equal(result.code, 2, result.stderr);
    assert.equal(
      result.stderr,
      'error: flowstate.yaml:3:1: records: expected the name of the store that keeps the records, like "records: main", got a mapping\n',
    );
  });
});

Deno.test("flowstate without a command prints usage and exits 2", async () => {
  await withSandbox(async ({ run }) => {
    const result = await run();
    assert.equal(result.code, 2);
    assert.match(result.stderr, /Usage: flowstate/);
  });
});

Deno.test("flowstate state set and get round-trip across processes (memory snapshot)", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), MEMORY_CONFIG);
    const set = await run("state", "set", "flow/counter/count", "41");
    assert.equal(set.code, 0, set.stderr);
    assert.equal(set.stdout.trim(), 'Set flow/counter/count in store "main"');
    const setJson = await run("state", "set", '["flow","counter","count"]', "42", "--json");
    assert.equal(setJson.code, 0, setJson.stderr);
    const written = JSON.parse(setJson.stdout);
    assert.deepEqual(Object.keys(written), ["key", "version"]);
    assert.deepEqual(written.key, ["flow", "counter", "count"]);

    const get = await run("state", "get", "flow/counter/count");
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stdout, "42\n");
    const getJson = await run("state", "get", '["flow","counter","count"]', "--json");
    assert.equal(getJson.code, 0, getJson.stderr);
    assert.deepEqual(JSON.parse(getJson.stdout), {
      key: ["flow", "counter", "count"],
      value: 42,
      version: written.version,
      expiresAt: null,
    });
  });
});

Deno.test("flowstate state set and get use the default sqlite store under FLOWSTATE_HOME", async () => {
  await withSandbox(async ({ home, run }) => {
    const set = await run("state", "set", "greeting", '{"text":"hello"}');
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /in store "default"/);
    const get = await run("state", "get", "greeting", "--json");
    assert.equal(get.code, 0, get.stderr);
    assert.deepEqual(JSON.parse(get.stdout).value, { text: "hello" });
    assert.ok((await Deno.stat(join(home, "state.db"))).isFile);
  });
});

Deno.test("flowstate state get of a missing key exits 1 (--json prints null)", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), MEMORY_CONFIG);
    const result = await run("state", "get", "nope");
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    // The snapshot does not exist yet, and reading does not create it.
    assert.match(
      result.stderr,
      /^error: Key nope not found\. No store yet at .*main\.snapshot\.json \(store "main"\)/,
    );
    const json = await run("state", "get", "nope", "--json");
    assert.equal(json.code, 1);
    assert.equal(json.stdout.trim(), "null");
  });
});

Deno.test("flowstate state set with a value that is not JSON exits 2 and explains quoting", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), MEMORY_CONFIG);
    const result = await run("state", "set", "greeting", "hello");
    assert.equal(result.code, 2);
    assert.equal(
      result.stderr.trim(),
      `error: Cannot set greeting: hello is not valid JSON: Unexpected token 'h' in JSON at ` +
        `position 0 (line 1 column 1); to store it as a string, type (JSON in shell quotes): '"hello"'`,
    );
    assertNoStackTrace(result.stderr);
  });
});

Deno.test("flowstate state set: the suggestion for text that is not JSON is what to type in a POSIX shell, and the JSON error has its position", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), MEMORY_CONFIG);
    const cases: [string, string, string][] = [
      [
        '{"a":1',
        `Expected ',' or '}' after property value in JSON at position 6 (line 1 column 7)`,
        `'"{\\"a\\":1"'`,
      ],
      [
        `{'a': "it's"}`,
        `Expected property name or '}' in JSON at position 1 (line 1 column 2)`,
        `'"{'\\''a'\\'': \\"it'\\''s\\"}"'`,
      ],
      [
        "[1,\n2",
        `Expected ',' or ']' after array element in JSON at position 5 (line 2 column 2)`,
        `'"[1,\\n2"'`,
      ],
      [
        '{"a":tru}',
        `Unexpected token '}' in JSON at position 8 (line 1 column 9)`,
        `'"{\\"a\\":tru}"'`,
      ],
      ["", "Unexpected end of JSON input at position 0 (line 1 column 1)", `'""'`],
    ];
    for (const [text, problem, typed] of cases) {
      const result = await run("state", "set", "a/b", text);
      assert.equal(result.code, 2, text);
      const [, message, suggestion] =
        /^error: Cannot set a\/b: .* is not valid JSON: (.*); to store it as a string, type \(JSON in shell quotes\): (.*)\n$/s
          .exec(result.stderr) ?? [];
      assert.equal(message, problem, result.stderr);
      assert.equal(suggestion, typed, result.stderr);
      // What a POSIX shell makes of the suggestion is the JSON string of the text typed...
      const word = await new Deno.Command("sh", { args: ["-c", `printf %s ${suggestion}`] })
        .output();
      assert.equal(new TextDecoder().decode(word.stdout), JSON.stringify(text));
      // ...so passing it stores exactly that text.
      const stored = await run("state", "set", "a/b", new TextDecoder().decode(word.stdout));
      assert.equal(stored.code, 0, stored.stderr);
      const got = await run("state", "get", "a/b", "--json");
      assert.equal(JSON.parse(got.stdout).value, text);
    }
    // Too long to spell out: how to quote it instead, not a cut-off suggestion.
    const long = await run("state", "set", "a/b", `${"x".repeat(300)}\nyz`);
    assert.equal(long.code, 2);
    assert.match(
      long.stderr,
      /^error: Cannot set a\/b: x{40}… is not valid JSON: Unexpected token 'x' in JSON at position 0 \(line 1 column 1\); to store it as a string, pass it as a JSON string in single quotes \(each ' written as '\\''\)\n$/,
    );
  });
});

Deno.test("flowstate rejects malformed keys and numeric options with exit 2", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), MEMORY_CONFIG);
    const emptyPart = await run("state", "get", "flow//count");
    assert.equal(emptyPart.code, 2);
    assert.match(emptyPart.stderr, /part 2 is empty; .* JSON array/);
    const badJsonKey = await run("state", "get", "[1,2]");
    assert.equal(badJsonKey.code, 2);
    assert.match(badJsonKey.stderr, /must be an array of strings/);
    const badExpiry = await run("state", "set", "k", "1", "--expire-in", "soon");
    assert.equal(badExpiry.code, 2);
    assert.match(badExpiry.stderr, /--expire-in must be an integer >= 1/);
    const badLimit = await run("state", "ls", "--limit", "-3");
    assert.equal(badLimit.code, 2);
    // A time range that holds no time is a mistake, not an empty listing.
    for (const archived of [[], ["--archived"]]) {
      const range = await run(
        "runs",
        "ls",
        "--since",
        "2030-01-01",
        "--until",
        "2020-01-01",
        ...archived,
      );
      assert.equal(range.code, 2, range.stderr);
      assert.match(range.stderr, /--since must come before --until/);
    }
  });
});

Deno.test("flowstate state ls lists a prefix in key order, with --limit and --json", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), MEMORY_CONFIG);
    for (const [key, value] of [["b/2", "2"], ["b/1", '"one"'], ["a", "0"], ["b/3", "[3]"]]) {
      const set = await run("state", "set", key, value);
      assert.equal(set.code, 0, set.stderr);
    }
    const all = await run("state", "ls");
    assert.equal(all.code, 0, all.stderr);
    assert.equal(all.stdout, 'a\t0\nb/1\t"one"\nb/2\t2\nb/3\t[3]\n');
    const limited = await run("state", "ls", "b", "--limit", "2", "--json");
    assert.equal(limited.code, 0, limited.stderr);
    const entries = JSON.parse(limited.stdout);
    assert.deepEqual(entries.map((e: { key: string[] }) => e.key), [["b", "1"], ["b", "2"]]);
    assert.deepEqual(Object.keys(entries[0]), ["key", "value", "version", "expiresAt"]);
    const none = await run("state", "ls", "zzz", "--json");
    assert.equal(none.code, 0);
    assert.deepEqual(JSON.parse(none.stdout), []);
    // --limit 0 asks for nothing: no "No entries" note over a store that has some.
    const zero = await run("state", "ls", "--limit", "0");
    assert.deepEqual([zero.code, zero.stdout, zero.stderr], [0, "", ""]);
  });
});

Deno.test("flowstate state rm deletes a key and exits 1 when it was absent", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), MEMORY_CONFIG);
    assert.equal((await run("state", "set", "k", "1")).code, 0);
    const rm = await run("state", "rm", "k", "--json");
    assert.equal(rm.code, 0, rm.stderr);
    assert.deepEqual(JSON.parse(rm.stdout), { key: ["k"], deleted: true });
    const again = await run("state", "rm", "k", "--json");
    assert.equal(again.code, 1);
    assert.deepEqual(JSON.parse(again.stdout), { key: ["k"], deleted: false });
    assert.equal((await run("state", "get", "k")).code, 1);
  });
});

Deno.test("flowstate state --store picks a store; an unknown one exits 2 with a suggestion", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      MEMORY_CONFIG + "  cache:\n    plugin: memory\n    snapshot: cache.snapshot.json\n",
    );
    assert.equal((await run("state", "set", "k", '"in cache"', "--store", "cache")).code, 0);
    assert.equal((await run("state", "get", "k")).code, 1, "the default is the global store");
    const get = await run("state", "get", "k", "--store", "cache");
    assert.equal(get.stdout.trim(), '"in cache"');
    const unknown = await run("state", "get", "k", "--store", "cahce");
    assert.equal(unknown.code, 2);
    assert.equal(
      unknown.stderr.trim(),
      'error: Unknown store "cahce" (did you mean "cache"?): the configured stores are main, cache',
    );
  });
});

Deno.test("flowstate with an invalid config exits 2 with file:line:column and no stack trace", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main:\n    plugin: memory\nscopes:\n  global: mian\n",
    );
    const result = await run("state", "get", "k");
    assert.equal(result.code, 2);
    assert.equal(
      result.stderr.trim(),
      'error: flowstate.yaml:5:3: scopes.global: no store named "mian" (did you mean "main"?); the stores are "main"',
    );
    assertNoStackTrace(result.stderr);
  });
});

Deno.test("flowstate --config names the file; malformed YAML exits 2 with its position", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.mkdir(join(dir, "conf"));
    await Deno.writeTextFile(join(dir, "conf", "fs.yaml"), "stores:\n  main: { plugin: memory\n");
    const result = await run("--config", "conf/fs.yaml", "stores");
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^error: conf\/fs\.yaml:\d+:\d+: invalid YAML: /);
    assertNoStackTrace(result.stderr);
    const missing = await run("--config", "nope.yaml", "stores");
    assert.equal(missing.code, 2);
    assert.equal(
      missing.stderr.trim(),
      "error: Cannot read config file nope.yaml: the file does not exist",
    );
  });
});

Deno.test("flowstate --debug prints the stack trace of an error", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main:\n    plugin: memory\n    snapshto: x.json\n",
    );
    const plain = await run("state", "get", "k");
    assert.equal(plain.code, 2);
    assert.match(plain.stderr, /^error: flowstate\.yaml:4:5: stores\.main\.snapshto: /);
    assertNoStackTrace(plain.stderr);
    const debug = await run("--debug", "state", "get", "k");
    assert.equal(debug.code, 2);
    assert.match(debug.stderr, /^\s+at /m);
  });
});

Deno.test("flowstate stores --json describes every store", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      MEMORY_CONFIG + "  scratch:\n    plugin: memory\nscopes:\n  node: scratch\n",
    );
    assert.equal((await run("state", "set", "a", "1")).code, 0);
    assert.equal((await run("state", "set", "b", "2")).code, 0);
    const result = await run("stores", "--json");
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), [
      {
        name: "main",
        plugin: "memory",
        location: `memory (snapshot ${join(dir, "main.snapshot.json")})`,
        entries: 2,
        scopes: ["global", "flow"],
      },
      { name: "scratch", plugin: "memory", location: "memory", entries: 0, scopes: ["node"] },
    ]);
    const table = await run("stores");
    assert.equal(table.code, 0);
    assert.match(table.stdout, /^NAME\s+PLUGIN\s+ENTRIES\s+SCOPES\s+LOCATION\n/);
    assert.match(table.stdout, /^main\s+memory\s+2\s+global,flow\s+memory \(snapshot /m);
  });
});

Deno.test("flowstate stores reports a store that cannot open and exits 2 for bad options", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  good: { plugin: memory }\n  bad: { plugin: memory, size: 3 }\n",
    );
    const result = await run("stores", "--json");
    assert.equal(result.code, 2);
    const [good, bad] = JSON.parse(result.stdout);
    assert.equal(good.entries, 0);
    assert.equal(bad.location, null);
    assert.equal(bad.entries, null);
    assert.match(bad.error, /^flowstate\.yaml:3:26: stores\.bad\.size: .*unknown option "size"/);
  });
});

for (const plugin of ["jsonfile", "sqlite"] as const) {
  Deno.test(`flowstate refuses a damaged ${plugin} store on every command until stores repair sets it aside`, async () => {
    await withSandbox(async ({ dir, run }) => {
      const file = join(dir, plugin === "jsonfile" ? "state.json" : "state.db");
      await Deno.writeTextFile(
        join(dir, "flowstate.yaml"),
        `stores:\n  main: { plugin: ${plugin}, path: ${file} }\n`,
      );
      assert.equal((await run("state", "set", "a", "1")).code, 0);
      // Damage the file: cut it short (jsonfile) or overwrite its header (sqlite).
      const bytes = await Deno.readFile(file);
      const damaged = plugin === "jsonfile" ? bytes.subarray(0, bytes.length >> 1) : bytes.slice();
      if (plugin === "sqlite") damaged.set(new TextEncoder().encode("not a database, no"), 0);
      await Deno.writeFile(file, damaged);
      const before = await Array.fromAsync(Deno.readDir(dir), (e) => e.name);

      // Read-only and writing commands alike refuse it, every time, and move nothing.
      for (
        const args of [["stores"], ["state", "get", "a"], ["stores"], ["state", "set", "b", "2"]]
      ) {
        const result = await run(...args);
        assert.equal(result.code, 1, `${args.join(" ")}: ${result.stderr}`);
        assert.match(result.stderr, /Cannot (open|read)[^\n]*store "main"/, args.join(" "));
        assertNoStackTrace(result.stderr);
        assert.deepEqual(await Deno.readFile(file), damaged, `${args.join(" ")} changed the file`);
        assert.deepEqual(
          (await Array.fromAsync(Deno.readDir(dir), (e) => e.name)).sort(),
          before.sort(),
          `${args.join(" ")} moved or made files`,
        );
      }

      // The one explicit step: set it aside, say where.
      const repair = await run("stores", "repair", "main", "--json");
      assert.equal(repair.code, 0, repair.stderr);
      const report = JSON.parse(repair.stdout);
      assert.equal(report.path, file);
      assert.match(
        report.movedTo,
        new RegExp(`^${file.replaceAll(".", "\\.")}\\.corrupt-\\d{8}T\\d{9}Z$`),
      );
      assert.deepEqual(await Deno.readFile(report.movedTo), damaged, "kept byte for byte");

      // Only now does a fresh store start.
      assert.equal((await run("state", "get", "a")).code, 1, "the fresh store is empty");
      assert.equal((await run("state", "set", "b", "2")).code, 0);
      const healthy = await run("stores", "repair", "main");
      assert.equal(healthy.code, 0);
      assert.match(healthy.stdout, /opens cleanly: nothing to repair/);
    });
  });
}

Deno.test("flowstate state set with JSON nested thousands deep exits 2 with a clear error, no crash", async () => {
  await withSandbox(async ({ run }) => {
    const deep = "[".repeat(20_000) + "]".repeat(20_000);
    const result = await run("state", "set", "k", deep);
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      /^error: Cannot set k: value\[0\]\[0\].*is nested deeper than 256 levels/,
    );
    assert.doesNotMatch(result.stderr, /Maximum call stack/);
    assert.ok(result.stderr.length < 400, result.stderr);
    assert.equal((await run("state", "get", "k")).code, 1, "nothing was written");
  });
});

/**
 * Each store spec, as store "main", makes `state set` and `state ls` exit 2 with one error at
 * the option: `expected(option)` is the regular expression of what follows `Cannot open store
 * "main": `.
 */
async function assertStoresRefused(
  { dir, run }: { dir: string; run: (...args: string[]) => Promise<Result> },
  cases: readonly (readonly [spec: string, option: string])[],
  expected: (option: string) => string,
): Promise<void> {
  for (const [spec, option] of cases) {
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), `stores:\n  main: ${spec}\n`);
    for (const args of [["state", "set", "k", "1"], ["state", "ls"]]) {
      const result = await run(...args);
      assert.equal(result.code, 2, `${spec} ${args}: ${result.stderr}`);
      assert.match(
        result.stderr,
        new RegExp(
          `^error: flowstate\\.yaml:2:\\d+: stores\\.main\\.${option}: Cannot open store "main": ${
            expected(option)
          }`,
        ),
      );
      assertNoStackTrace(result.stderr);
    }
  }
}

Deno.test("a store file option that names a directory exits 2 at its place, saying so (sqlite, jsonfile, memory snapshot)", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.mkdir(join(dir, "data"));
    await assertStoresRefused(
      { dir, run },
      [
        ["{ plugin: sqlite, path: data }", "path"],
        ["{ plugin: jsonfile, path: data }", "path"],
        ["{ plugin: memory, snapshot: data }", "snapshot"],
      ],
      (option) =>
        `\\S*data is a directory, not a store file: point "${option}" at a file \\(one inside it, say\\)`,
    );
    assert.deepEqual([...Deno.readDirSync(join(dir, "data"))], [], "nothing was created in it");
  });
});

Deno.test("a store file option under a file, not a folder, exits 2 at its place, naming the file (was a bare 'File exists')", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(join(dir, "notes"), "a file\n");
    await assertStoresRefused(
      { dir, run },
      [
        ["{ plugin: sqlite, path: notes/state.db }", "path"],
        ["{ plugin: jsonfile, path: notes/deeper/state.json }", "path"],
        ["{ plugin: memory, snapshot: notes/snap.json }", "snapshot"],
      ],
      (option) =>
        `\\S*notes is a file, not a folder, so it cannot hold \\S+: point "${option}" elsewhere, or move the file away\n$`,
    );
    assert.equal(await Deno.readTextFile(join(dir, "notes")), "a file\n", "the file is untouched");
  });
});

Deno.test("a home or store path from ${env.DIR} whose value holds a $ part is used as it is: the check is of what the file says", async () => {
  await withSandbox(async ({ dir, runWith }) => {
    const env = { DIR: join(dir, "$data", "a$b") }; // neither folder exists yet
    for (
      const [config, file] of [
        ["home: ${env.DIR}/home\n", "home/state.db"],
        ['stores:\n  main: { plugin: sqlite, path: "${env.DIR}/s.db" }\n', "s.db"],
        ['stores:\n  main: { plugin: jsonfile, path: "${env.DIR}/s.json" }\n', "s.json"],
        ['stores:\n  main: { plugin: memory, snapshot: "${env.DIR}/m.json" }\n', "m.json"],
      ]
    ) {
      await Deno.remove(join(dir, "$data"), { recursive: true }).catch(() => {});
      await Deno.writeTextFile(join(dir, "flowstate.yaml"), config);
      // Twice: the second read of the config comes from its disk cache.
      for (const time of ["first", "second"]) {
        const result = await runWith(env, "state", "set", "k", "1");
        assert.equal(result.code, 0, `${config} (${time}): ${result.stderr}`);
      }
      assert.ok((await Deno.stat(join(env.DIR, file))).isFile, config);
    }
    // What the file itself says is still refused, whatever the environment holds.
    await Deno.remove(join(dir, "$data"), { recursive: true });
    for (
      const config of [
        "home: $data/h\n",
        'stores:\n  main: { plugin: sqlite, path: "$data/s.db" }\n',
      ]
    ) {
      await Deno.writeTextFile(join(dir, "flowstate.yaml"), config);
      const result = await runWith({ data: "x" }, "state", "set", "k", "1");
      assert.equal(result.code, 2, config);
      assert.match(result.stderr, /holds "\$data", which nothing expands here/, config);
    }
  });
});

Deno.test("a store path with ~ or $HOME (which no shell expands here) exits 2 at the option, saying what to write, and creates no folder named ~", async () => {
  await withSandbox(async ({ dir, run }) => {
    for (
      const [spec, option, written, name] of [
        ["{ plugin: sqlite, path: ~/state.db }", "path", "~", "HOME"],
        ['{ plugin: jsonfile, path: "$HOME/state.json" }', "path", "$HOME", "HOME"],
        [
          '{ plugin: memory, snapshot: "data/$DATA_DIR/snap.json" }',
          "snapshot",
          "$DATA_DIR",
          "DATA_DIR",
        ],
      ]
    ) {
      await Deno.writeTextFile(join(dir, "flowstate.yaml"), `stores:\n  main: ${spec}\n`);
      const result = await run("state", "set", "k", "1");
      assert.equal(result.code, 2, `${spec}: ${result.stderr}`);
      assert.equal(
        result.stderr.replace(/^(error: flowstate\.yaml:2:)\d+:/, "$1C:").replaceAll(dir, "DIR"),
        `error: flowstate.yaml:2:C: stores.main.${option}: Cannot open store "main": ` +
          `${option} holds "${written}", which nothing expands here (no shell reads the config): ` +
          `write \${env.${name}} for the value of that environment variable\n`,
      );
    }
    for (
      const [home, written, name] of [["~/fs", "~", "HOME"], [
        "$XDG_DATA_HOME/fs",
        "$XDG_DATA_HOME",
        "XDG_DATA_HOME",
      ]]
    ) {
      await Deno.writeTextFile(join(dir, "flowstate.yaml"), `home: "${home}"\n`);
      const result = await run("state", "set", "k", "1");
      assert.equal(result.code, 2, result.stderr);
      assert.equal(
        result.stderr,
        `error: flowstate.yaml:1:1: home: holds "${written}", which nothing expands here (no shell reads the config): write \${env.${name}} for the value of that environment variable\n`,
      );
    }
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
        n === "~" || n.startsWith("$") || n === "data"
      ),
      [],
      "no folder named ~ or $HOME was made (by a store or the home)",
    );
    // A folder that really is named ~ is used as it is.
    await Deno.mkdir(join(dir, "~"));
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: { plugin: sqlite, path: ~/state.db }\n",
    );
    const real = await run("state", "set", "k", "1");
    assert.equal(real.code, 0, real.stderr);
    assert.ok((await Deno.stat(join(dir, "~", "state.db"))).isFile);
  });
});

Deno.test("a home that is a file, not a directory, exits 2 saying so (was a bare 'File exists' / 'Not a directory')", async () => {
  await withSandbox(async ({ dir, runWith }) => {
    const file = join(dir, "home-file");
    await Deno.writeTextFile(file, "not a directory\n");
    for (const args of [["state", "set", "k", "1"], ["state", "ls"], ["backup"]]) {
      const result = await runWith({ FLOWSTATE_HOME: file }, ...args);
      assert.equal(result.code, 2, `${args}: ${result.stderr}`);
      assert.match(
        result.stderr,
        /^error: Flowstate's home \S*home-file is a file, not a directory: point \$FLOWSTATE_HOME \(or home: in the config\) at a directory/,
      );
      assertNoStackTrace(result.stderr);
    }
    assert.equal(await Deno.readTextFile(file), "not a directory\n");
  });
});

Deno.test("a jsonfile path that is a dangling symlink creates the file it points to; a symlink loop is a config error", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.mkdir(join(dir, "elsewhere"));
    await Deno.symlink(join(dir, "elsewhere", "state.json"), join(dir, "state.json"));
    await Deno.symlink("loop2", join(dir, "loop1"));
    await Deno.symlink("loop1", join(dir, "loop2"));
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: { plugin: jsonfile, path: state.json }\n" +
        "  loopy: { plugin: jsonfile, path: loop1 }\n  loopier: { plugin: sqlite, path: loop2 }\n",
    );
    const set = await run("state", "set", "k", "1");
    assert.equal(set.code, 0, set.stderr);
    assert.ok((await Deno.lstat(join(dir, "state.json"))).isSymlink, "the link is kept");
    assert.match(await Deno.readTextFile(join(dir, "elsewhere", "state.json")), /"k"/);
    // A chain of links to a missing file: the file is made at its end, every link kept.
    await Deno.symlink("b.json", join(dir, "a.json"));
    await Deno.symlink(join("elsewhere", "c.json"), join(dir, "b.json"));
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: { plugin: jsonfile, path: state.json }\n" +
        "  chain: { plugin: jsonfile, path: a.json }\n" +
        "  loopy: { plugin: jsonfile, path: loop1 }\n  loopier: { plugin: sqlite, path: loop2 }\n",
    );
    const chained = await run("state", "set", "--store", "chain", "k", "2");
    assert.equal(chained.code, 0, chained.stderr);
    assert.ok((await Deno.lstat(join(dir, "a.json"))).isSymlink);
    assert.ok((await Deno.lstat(join(dir, "b.json"))).isSymlink, "the middle link is kept");
    assert.match(await Deno.readTextFile(join(dir, "elsewhere", "c.json")), /"k"/);
    for (const [store, option] of [["loopy", "path"], ["loopier", "path"]]) {
      const loop = await run("state", "set", "--store", store, "k", "1");
      assert.equal(loop.code, 2, loop.stderr);
      assert.match(
        loop.stderr,
        new RegExp(
          `stores\\.${store}\\.${option}: Cannot open store "${store}": \\S*loop\\d is a loop of symbolic links: point "${option}" at a file`,
        ),
      );
    }
  });
});

Deno.test("state.increment past Number.MAX_SAFE_INTEGER fails saying so, and the count is left as it was", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "c.flow.yaml"),
      "id: c\nnodes:\n  - { id: n, type: state.increment, with: { key: count } }\n",
    );
    const max = String(Number.MAX_SAFE_INTEGER);
    assert.equal((await run("state", "set", "--flow", "c", "count", max)).code, 0);
    const result = await run("run", "c.flow.yaml");
    assert.equal(result.code, 1, result.stderr);
    assert.match(
      result.stdout + result.stderr,
      /Cannot increment \["flow","c","count"\]: 9007199254740991 \+ 1 is past 9007199254740991 \(Number\.MAX_SAFE_INTEGER\), where numbers stop counting exactly/,
    );
    assert.equal((await run("state", "get", "--flow", "c", "count")).stdout.trim(), max);
  });
});

Deno.test("flowstate stores shows a plugin module's own name, not its path", async () => {
  await withSandbox(async ({ dir, run }) => {
    const memory = new URL("../plugins/memory/mod.ts", import.meta.url).href;
    await Deno.mkdir(join(dir, "plugins"));
    await Deno.writeTextFile(
      join(dir, "plugins", "mine.ts"),
      `export { default } from "${memory}";\n`,
    );
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  mine:\n    plugin: ./plugins/mine.ts\n",
    );
    const listed = await run("stores");
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^mine\s+memory\s+0\s/m);
    assert.doesNotMatch(listed.stdout, /plugins\/mine\.ts/);
  });
});

Deno.test("a plugin's own warning (context.warn) is printed with the store it is about", async () => {
  await withSandbox(async ({ dir, run }) => {
    const memory = new URL("../plugins/memory/mod.ts", import.meta.url).href;
    await Deno.mkdir(join(dir, "plugins"));
    // As docs/writing-a-plugin.md says: the plugin reports, the core adds the store's name.
    await Deno.writeTextFile(
      join(dir, "plugins", "old_server.ts"),
      `import memory from "${memory}";
export default {
  ...memory,
  name: "old-server",
  open(options, context) {
    context.warn?.({ code: "OLD_SERVER", message: "the server is older than 7; upgrade it" });
    return memory.open(options, context);
  },
};
`,
    );
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  default: { plugin: memory }\n  cache:\n    plugin: ./plugins/old_server.ts\n",
    );
    const result = await run("state", "set", "--store", "cache", "--scope", "global", "k", "1");
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stderr,
      /^warning: store "cache": the server is older than 7; upgrade it$/m,
    );
  });
});
