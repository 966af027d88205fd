/**
 * Custom nodes run in a Worker with only the permissions their flow declares
 * (issue 11): a hostile node's every escape fails with a permission error
 * recorded on the run, and nothing outside is touched.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, withSandbox } from "./_cli_sandbox.ts";
import { parseJson } from "../src/_json.ts";
import { exitOf, hangGuard } from "./_deadline.ts";

/** A node module needing no imports: it tries `with.attempt` and returns what it got. */
const HOSTILE = `
const schema = { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } };
export default {
  kind: "flowstate.node",
  optionsSchema: schema,
  async run(ctx, input) {
    const a = input.attempt;
    const arg = input.arg;
    switch (a) {
      case "read": return await Deno.readTextFile(arg);
      case "importText": return (await import(arg, { with: { type: "text" } })).default;
      case "env": return Deno.env.get(arg) ?? "(unset)";
      case "envAll": return Object.keys(Deno.env.toObject()).sort().join(",");
      case "run": return new TextDecoder().decode((await new Deno.Command("id").output()).stdout);
      case "connect": { const c = await Deno.connect({ hostname: "127.0.0.1", port: 5432 }); c.close(); return "connected"; }
      case "listen": { const l = Deno.listen({ hostname: "127.0.0.1", port: 0 }); l.close(); return "listening"; }
      case "write": await Deno.writeTextFile(arg, "pwned"); return "written";
      case "open": { const f = await Deno.open(arg, { read: true, write: true }); f.close(); return "opened"; }
      case "state": {
        const n = await ctx.node.increment("count");
        await ctx.flow.set("seen", { n });
        ctx.log("counted " + n);
        return { n, flow: await ctx.flow.get("seen"), global: await ctx.global.get("nothing") };
      }
      case "clock": {
        const before = Date.now();
        await new Promise((r) => setTimeout(r, 3));
        return { before, now: ctx.clock.now(), after: Date.now() };
      }
      case "hang": await new Promise(() => {}); return "never";
      case "exit": Deno.exit(3); return "still here";
      case "map": return new Map([["a", 1]]);
      case "nan": return { n: NaN };
      case "setMap": await ctx.flow.set("m", new Map([["a", 1]])); return "set";
      case "keysInf": await ctx.flow.set("k1", 1); return await ctx.flow.keys({ limit: Infinity });
      case "close": globalThis.close(); return "still here";
      case "hog": { const kept = []; for (;;) { kept.push(new Array(1e6).fill(Math.random())); await new Promise((r) => setTimeout(r, 1)); } }
      case "spin": ctx.log("spinning"); await new Promise((r) => setTimeout(r, 10)); for (;;) {}
      case "connectTo": {
        const [hostname, port] = arg.split(":");
        const c = await Deno.connect({ hostname, port: Number(port) });
        c.close();
        return "connected";
      }
    }
    throw new Error("unknown attempt " + a);
  },
};
`;

interface RunJson {
  status: string;
  nodes: Record<string, { status: string; output?: unknown; error?: string }>;
}

async function runFlow(
  sandbox: {
    dir: string;
    runWith(
      env: Record<string, string>,
      ...args: string[]
    ): Promise<{ code: number; stdout: string; stderr: string }>;
  },
  yaml: string,
  env: Record<string, string> = {},
): Promise<RunJson> {
  await Deno.writeTextFile(join(sandbox.dir, "t.flow.yaml"), yaml);
  const result = await sandbox.runWith(env, "run", "t.flow.yaml", "--json");
  assert.ok(result.stdout.trim() !== "", `no output: ${result.stderr}`);
  return JSON.parse(result.stdout) as RunJson;
}

function node(id: string, attempt: string, arg?: string, permissions?: string): string {
  return `  - id: ${id}\n    type: ./nodes/hostile.ts\n    continueOnError: true\n` +
    `    with: { attempt: ${attempt}${
      arg === undefined ? "" : `, arg: ${JSON.stringify(arg)}`
    } }\n` +
    (permissions === undefined ? "" : `    permissions: ${permissions}\n`);
}

Deno.test("a custom node without permissions: every escape fails and is recorded", async () => {
  await withSandbox(async (sandbox) => {
    await Deno.mkdir(join(sandbox.dir, "nodes"));
    await Deno.writeTextFile(join(sandbox.dir, "nodes", "hostile.ts"), HOSTILE);
    const outside = await Deno.makeTempDir({ prefix: "flowstate-outside-" });
    try {
      const secret = join(outside, "secret.txt");
      await Deno.writeTextFile(secret, "secret");
      const target = join(outside, "written.txt");
      // Make the store exist first.
      const first = await runFlow(sandbox, `id: t\nnodes:\n${node("state", "state")}`);
      assert.equal(first.nodes.state.status, "succeeded", JSON.stringify(first));
      const storeFile = join(sandbox.home, "state.db");
      const storeBefore = await Deno.readFile(storeFile);
      const yaml = `id: t\nnodes:\n` +
        node("passwd", "read", "/etc/passwd") +
        node("outside", "read", secret) +
        node("env", "env", "HOME") +
        node("secret", "env", "FLOWSTATE_TEST_SECRET") +
        node("spawn", "run") +
        node("connect", "connect") +
        node("listen", "listen") +
        node("write", "write", target) +
        node("store", "open", storeFile);
      const record = await runFlow(sandbox, yaml, { FLOWSTATE_TEST_SECRET: "hunter2" });
      assert.ok(!JSON.stringify(record).includes("hunter2"));
      for (
        const id of [
          "passwd",
          "outside",
          "env",
          "secret",
          "spawn",
          "connect",
          "listen",
          "write",
          "store",
        ]
      ) {
        const n = record.nodes[id];
        assert.equal(n.status, "failed", `${id}: ${JSON.stringify(n)}`);
        assert.match(n.error ?? "", /NotCapable|Requires|permission/i, `${id}: ${n.error}`);
      }
      await assert.rejects(Deno.stat(target), Deno.errors.NotFound);
      assert.ok(storeBefore.length > 0);
    } finally {
      await Deno.remove(outside, { recursive: true });
    }
  });
});

Deno.test("a custom node's state, log and options work through the host", async () => {
  await withSandbox(async (sandbox) => {
    await Deno.mkdir(join(sandbox.dir, "nodes"));
    await Deno.writeTextFile(join(sandbox.dir, "nodes", "hostile.ts"), HOSTILE);
    const yaml = `id: t\nnodes:\n${node("state", "state")}`;
    const one = await runFlow(sandbox, yaml);
    const two = await runFlow(sandbox, yaml);
    assert.deepEqual(one.nodes.state.output, { n: 1, flow: { n: 1 }, global: null });
    assert.deepEqual(two.nodes.state.output, { n: 2, flow: { n: 2 }, global: null });
    // ctx.clock.now() is whole milliseconds since the epoch, as in-process (was fractional).
    const clock = await runFlow(sandbox, `id: t\nnodes:\n${node("clock", "clock")}`);
    const { before, now, after } = clock.nodes.clock.output as Record<string, number>;
    assert.ok(Number.isInteger(now), `ctx.clock.now() = ${now}`);
    assert.ok(before <= now && now <= after, `${before} <= ${now} <= ${after}`);
  });
});

Deno.test("read: [./data] reads there and nowhere else; env: [NAME] sees that variable only", async () => {
  await withSandbox(async (sandbox) => {
    await Deno.mkdir(join(sandbox.dir, "nodes"));
    await Deno.mkdir(join(sandbox.dir, "data"));
    await Deno.writeTextFile(join(sandbox.dir, "nodes", "hostile.ts"), HOSTILE);
    await Deno.writeTextFile(join(sandbox.dir, "data", "in.txt"), "inside");
    await Deno.writeTextFile(join(sandbox.dir, "other.txt"), "other");
    const yaml = `id: t\nnodes:\n` +
      node("inside", "read", "data/in.txt", "{ read: [./data] }") +
      node("other", "read", "other.txt", "{ read: [./data] }") +
      node("named", "env", "FLOWSTATE_TEST_ALLOWED", "{ env: [FLOWSTATE_TEST_ALLOWED] }") +
      node("unnamed", "env", "FLOWSTATE_TEST_SECRET", "{ env: [FLOWSTATE_TEST_ALLOWED] }");
    const record = await runFlow(sandbox, yaml, {
      FLOWSTATE_TEST_ALLOWED: "yes",
      FLOWSTATE_TEST_SECRET: "no",
    });
    assert.equal(record.nodes.inside.output, "inside", JSON.stringify(record.nodes.inside));
    assert.equal(record.nodes.other.status, "failed");
    assert.match(record.nodes.other.error ?? "", /read access/);
    assert.equal(record.nodes.named.output, "yes");
    assert.equal(record.nodes.unnamed.status, "failed");
    assert.match(record.nodes.unnamed.error ?? "", /env access/);
    // What to write in the flow to allow it.
    assert.match(
      record.nodes.unnamed.error ?? "",
      /; hint: add to the node in its flow file: permissions: \{ env: \["FLOWSTATE_TEST_SECRET"\] \}\)$/,
    );
    assert.match(
      record.nodes.other.error ?? "",
      /; hint: add to the node in its flow file: permissions: \{ read: \[".*other\.txt"\] \}\)$/,
    );
  });
});

Deno.test("a read hint names the file as the flow file resolves it, so adding it lets the node read", async () => {
  await withSandbox(async (sandbox) => {
    await Deno.mkdir(join(sandbox.dir, "nodes"));
    await Deno.mkdir(join(sandbox.dir, "flows"));
    await Deno.mkdir(join(sandbox.dir, "data"));
    await Deno.writeTextFile(join(sandbox.dir, "nodes", "hostile.ts"), HOSTILE);
    await Deno.writeTextFile(join(sandbox.dir, "data", "in.txt"), "inside");
    // The node reads a path relative to the working directory; the flow lives in flows/.
    const flow = (permissions?: string) =>
      `id: t\nnodes:\n` +
      node("reader", "read", "data/in.txt", permissions).replace("./nodes/", "../nodes/");
    const run = async (yaml: string) => {
      await Deno.writeTextFile(join(sandbox.dir, "flows", "t.flow.yaml"), yaml);
      const result = await sandbox.runWith({}, "run", "flows/t.flow.yaml", "--json");
      assert.ok(result.stdout.trim() !== "", `no output: ${result.stderr}`);
      return (JSON.parse(result.stdout) as RunJson).nodes.reader;
    };
    const refused = await run(flow());
    assert.equal(refused.status, "failed");
    const hint = /hint: add to the node in its flow file: permissions: (\{ read: \[.*\] \})\)$/
      .exec(refused.error ?? "");
    assert.ok(hint, refused.error);
    assert.equal(hint[1], '{ read: ["../data/in.txt"] }');
    const allowed = await run(flow(hint[1]));
    assert.equal(allowed.output, "inside", JSON.stringify(allowed));
  });
});

Deno.test("a node's import() of a file outside its read: says so, with the line to add, not Deno's advice to the runner", async () => {
  await withSandbox(async (sandbox) => {
    await Deno.mkdir(join(sandbox.dir, "nodes"));
    await Deno.writeTextFile(join(sandbox.dir, "nodes", "hostile.ts"), HOSTILE);
    const outside = await Deno.makeTempDir({ prefix: "flowstate-outside-" });
    try {
      const file = join(outside, "words.txt");
      await Deno.writeTextFile(file, "outside");
      // A computed specifier: only the node's read: paths, as for Deno.readTextFile.
      const flow = (permissions?: string) =>
        `id: t\nnodes:\n${node("imp", "importText", `file://${file}`, permissions)}`;
      const refused = (await runFlow(sandbox, flow())).nodes.imp;
      assert.equal(refused.status, "failed");
      assert.doesNotMatch(refused.error ?? "", /run again with the --allow-read flag/);
      const hint =
        /\(permission denied: the node may only do what its permissions: in the flow declare; hint: add to the node in its flow file: permissions: (\{ read: \[.*\] \})\)$/
          .exec(refused.error ?? "");
      assert.ok(hint, refused.error);
      assert.equal(hint[1], `{ read: [${JSON.stringify(file)}] }`);
      const allowed = (await runFlow(sandbox, flow(hint[1]))).nodes.imp;
      assert.equal(allowed.output, "outside", JSON.stringify(allowed));
    } finally {
      await Deno.remove(outside, { recursive: true });
    }
  });
});

Deno.test("a node module whose optionsSchema throws on the flow's options is told so at its with:, not 'cannot load'", async () => {
  await withSandbox(async (sandbox) => {
    await Deno.mkdir(join(sandbox.dir, "nodes"));
    // A refinement that reads a field the options may leave out.
    await Deno.writeTextFile(
      join(sandbox.dir, "nodes", "strict.ts"),
      `export default {
  kind: "flowstate.node",
  optionsSchema: { "~standard": { version: 1, vendor: "test", validate: (value) => (value.url.length, { value }) } },
  run: () => "ran",
};
`,
    );
    await Deno.writeTextFile(
      join(sandbox.dir, "t.flow.yaml"),
      "id: t\nnodes:\n  - id: a\n    type: ./nodes/strict.ts\n    with: { other: 1 }\n",
    );
    for (const command of ["run", "validate"]) {
      const result = await sandbox.run(command, "t.flow.yaml");
      assert.equal(result.code, 2, result.stderr);
      assert.match(
        result.stderr,
        /t\.flow\.yaml:5:11: nodes\[0\]\.with: \.\/nodes\/strict\.ts's optionsSchema threw while checking the options: .*\(a schema must report a bad option as an issue, not throw\)/,
      );
      assert.doesNotMatch(result.stderr, /cannot load node module/);
    }
  });
});

Deno.test("validate lists what each node asks for, and checks permissions: with file:line:column", async () => {
  await withSandbox(async (sandbox) => {
    await Deno.mkdir(join(sandbox.dir, "nodes"));
    await Deno.writeTextFile(join(sandbox.dir, "nodes", "hostile.ts"), HOSTILE);
    await Deno.writeTextFile(join(sandbox.dir, "nodes", "fast.ts"), HOSTILE);
    await Deno.writeTextFile(
      join(sandbox.dir, "flowstate.yaml"),
      "stores:\n  default:\n    plugin: memory\nnodes:\n  trusted: [./nodes/fast.ts]\n",
    );
    await Deno.writeTextFile(
      join(sandbox.dir, "ok.flow.yaml"),
      "id: t\nnodes:\n" + node("a", "read", "x", "{ read: [./data], env: [TOKEN] }") +
        node("b", "read", "x") +
        "  - { id: c, type: ./nodes/fast.ts, with: { attempt: read, arg: x } }\n" +
        "  - { id: d, type: log, with: { message: hi } }\n",
    );
    const ok = await sandbox.run("validate", "ok.flow.yaml", "--json");
    assert.equal(ok.code, 0, ok.stderr);
    const [result] = JSON.parse(ok.stdout);
    const none = {
      read: false,
      write: false,
      net: false,
      env: false,
      run: false,
      sys: false,
      ffi: false,
      import: false,
    };
    assert.deepEqual(result.nodes, [
      {
        id: "a",
        type: "./nodes/hostile.ts",
        runs: "worker",
        permissions: {
          ...none,
          read: [join(await Deno.realPath(sandbox.dir), "data")],
          env: ["TOKEN"],
        },
        withEnv: [],
        stateEnv: [],
        stateEnvWriters: [],
        subFlows: "capped",
      },
      {
        id: "b",
        type: "./nodes/hostile.ts",
        runs: "worker",
        permissions: none,
        withEnv: [],
        stateEnv: [],
        stateEnvWriters: [],
        subFlows: "capped",
      },
      {
        id: "c",
        type: "./nodes/fast.ts",
        runs: "trusted",
        permissions: null,
        withEnv: [],
        stateEnv: [],
        stateEnvWriters: [],
        subFlows: "any",
      },
      {
        id: "d",
        type: "log",
        runs: "builtin",
        permissions: null,
        withEnv: [],
        stateEnv: [],
        stateEnvWriters: [],
        subFlows: null,
      },
    ]);
    const text = await sandbox.run("validate", "ok.flow.yaml");
    assert.match(
      text.stdout,
      /a \(\.\/nodes\/hostile\.ts\): worker, permissions: read=.*data env=TOKEN/,
    );
    assert.match(text.stdout, /b \(\.\/nodes\/hostile\.ts\): worker, permissions: none/);
    assert.match(text.stdout, /c \(\.\/nodes\/fast\.ts\): trusted: in-process/);

    await Deno.writeTextFile(
      join(sandbox.dir, "bad.flow.yaml"),
      "id: t\nnodes:\n" + node("a", "read", "x", "{ read: yes please, bogus: true }"),
    );
    const bad = await sandbox.run("validate", "bad.flow.yaml");
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /bad\.flow\.yaml:7:26: nodes\[0\]\.permissions\.read: expected true, false or a list/,
    );
    assert.match(bad.stderr, /bad\.flow\.yaml:7:38: nodes\[0\]\.permissions\.bogus: unknown field/);
    await Deno.writeTextFile(
      join(sandbox.dir, "ffi.flow.yaml"),
      "id: t\nnodes:\n" +
        node("b", "read", "x", "{ ffi: true, import: [example.com, example.org] }"),
    );
    const ffi = await sandbox.run("validate", "ffi.flow.yaml");
    assert.equal(ffi.code, 2);
    // Every flag the runner lacks, in one message that ends in what to narrow.
    assert.match(
      ffi.stderr,
      /ffi\.flow\.yaml:7:\d+: nodes\[0\]\.permissions: .*add `--allow-ffi --allow-import=example.com,example.org` to the flags flowstate runs with, or narrow the node's `permissions:`\n/,
    );
  });
});

Deno.test("a trusted node runs in-process; a hung sandboxed node's Worker is terminated at its timeout", async () => {
  await withSandbox(async (sandbox) => {
    await Deno.mkdir(join(sandbox.dir, "nodes"));
    await Deno.writeTextFile(join(sandbox.dir, "nodes", "hostile.ts"), HOSTILE);
    await Deno.writeTextFile(join(sandbox.dir, "nodes", "fast.ts"), HOSTILE);
    await Deno.writeTextFile(join(sandbox.dir, "other.txt"), "other");
    await Deno.writeTextFile(
      join(sandbox.dir, "flowstate.yaml"),
      "stores:\n  default:\n    plugin: memory\nnodes:\n  trusted: [./nodes/fast.ts]\n",
    );
    const record = await runFlow(
      sandbox,
      "id: t\nnodes:\n" +
        "  - { id: trusted, type: ./nodes/fast.ts, with: { attempt: read, arg: other.txt } }\n" +
        "  - { id: hang, type: ./nodes/hostile.ts, timeout: 200ms, continueOnError: true, with: { attempt: hang } }\n",
    );
    assert.equal(record.nodes.trusted.output, "other");
    assert.equal(record.nodes.hang.status, "timed-out", JSON.stringify(record.nodes.hang));
  });
});

Deno.test("without --unstable-worker-options a custom node is refused with the flag to add, not a crash", async () => {
  await withSandbox(async (sandbox) => {
    await Deno.mkdir(join(sandbox.dir, "nodes"));
    await Deno.writeTextFile(join(sandbox.dir, "nodes", "hostile.ts"), HOSTILE);
    await Deno.writeTextFile(
      join(sandbox.dir, "t.flow.yaml"),
      `id: t\nnodes:\n${node("s", "state")}`,
    );
    const root = new URL("../", import.meta.url);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "--config",
        new URL("deno.json", root).pathname,
        "-A",
        new URL("cli.ts", root).pathname,
        "run",
        "t.flow.yaml",
      ],
      cwd: sandbox.dir,
      env: { FLOWSTATE_HOME: sandbox.home, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 2, stderr);
    assert.match(stderr, /t\.flow\.yaml:4:11: nodes\[0\]\.type: .*--unstable-worker-options/);
  });
});

Deno.test('net: ["127.0.0.1:<port>"] connects there and nowhere else', async () => {
  await withSandbox(async (sandbox) => {
    await Deno.mkdir(join(sandbox.dir, "nodes"));
    await Deno.writeTextFile(join(sandbox.dir, "nodes", "hostile.ts"), HOSTILE);
    // Two listeners of this test: the node may reach the first only.
    const allowed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const other = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const accepted: string[] = [];
    const accept = async (listener: Deno.Listener, name: string) => {
      for await (const conn of listener) {
        accepted.push(name);
        conn.close();
      }
    };
    const loops = [accept(allowed, "allowed"), accept(other, "other")];
    try {
      const a = `127.0.0.1:${allowed.addr.port}`;
      const o = `127.0.0.1:${other.addr.port}`;
      const net = `{ net: ["${a}"] }`;
      const record = await runFlow(
        sandbox,
        "id: t\nnodes:\n" + node("there", "connectTo", a, net) +
          node("elsewhere", "connectTo", o, net) +
          node("byName", "connectTo", `localhost:${allowed.addr.port}`, net) +
          node("database", "connectTo", "127.0.0.1:5432", net),
      );
      assert.equal(record.nodes.there.output, "connected", JSON.stringify(record.nodes.there));
      for (const id of ["elsewhere", "byName", "database"]) {
        assert.equal(record.nodes[id].status, "failed", id);
        assert.match(record.nodes[id].error!, /permission denied/, id);
      }
      assert.deepEqual(accepted, ["allowed"]);
    } finally {
      allowed.close();
      other.close();
      await Promise.allSettled(loops);
    }
  });
});

for (const attempt of ["spin", "hang"]) {
  Deno.test(`Ctrl-C cancels a run whose Worker node ${attempt === "spin" ? "spins" : "never settles"}: the Worker is terminated, the run recorded cancelled`, async () => {
    await withSandbox(async (sandbox) => {
      await Deno.mkdir(join(sandbox.dir, "nodes"));
      await Deno.writeTextFile(join(sandbox.dir, "nodes", "hostile.ts"), HOSTILE);
      await Deno.writeTextFile(
        join(sandbox.dir, "t.flow.yaml"),
        "id: t\nnodes:\n  - { id: hello, type: log, with: { message: started } }\n" +
          `  - { id: stuck, type: ./nodes/hostile.ts, needs: [hello], with: { attempt: ${attempt} } }\n`,
      );
      const child = cliCommand(sandbox.dir, ["run", "t.flow.yaml"], { home: sandbox.home })
        .spawn();
      const stdout = new Response(child.stdout).text();
      const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      let stderr = "";
      using _hang = hangGuard(child, () => stderr);
      const marker = attempt === "spin" ? "[stuck] spinning\n" : "[hello] started\n";
      while (!stderr.includes(marker)) {
        const { value, done } = await reader.read();
        if (done) break;
        stderr += value;
      }
      assert.ok(stderr.includes(marker), stderr);
      child.kill("SIGINT");
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        stderr += value;
      }
      const status = await exitOf(child);
      assert.equal(status.code, 130, stderr);
      assert.match(await stdout, /^status: +cancelled$/m);
      const shown = await sandbox.run("runs", "ls", "--json");
      const runs = JSON.parse(shown.stdout);
      assert.equal(runs.length, 1);
      assert.equal(runs[0].status, "cancelled", "no run is left running");
      const detail = JSON.parse((await sandbox.run("runs", "show", runs[0].id, "--json")).stdout);
      assert.equal(detail.run.nodes.stuck.status, "cancelled", JSON.stringify(detail.run.nodes));
    });
  });
}

Deno.test("a node module that fails to load is one clear error, without Deno's uncaught-error report", async () => {
  await withSandbox(async (sandbox) => {
    await Deno.mkdir(join(sandbox.dir, "nodes"));
    await Deno.writeTextFile(
      join(sandbox.dir, "nodes", "bad.js"),
      'throw new Error("boom at load");\n',
    );
    await Deno.writeTextFile(
      join(sandbox.dir, "t.flow.yaml"),
      "id: t\nnodes:\n  - { id: a, type: ./nodes/bad.js }\n",
    );
    for (const command of ["validate", "run"]) {
      const result = await sandbox.run(command, "t.flow.yaml");
      assert.equal(result.code, 2, result.stderr);
      assert.equal(
        result.stderr,
        "error: t.flow.yaml:3:20: nodes[0].type: cannot load node module ./nodes/bad.js: boom at load\n",
      );
    }
  });
});

Deno.test("ctx.clock in a Worker follows the runtime's clock", async () => {
  const { openRuntime } = await import("../mod.ts");
  const { fakeClock } = await import("../testing.ts");
  const dir = await Deno.makeTempDir({ prefix: "flowstate-clock-" });
  try {
    await Deno.mkdir(join(dir, "nodes"));
    await Deno.writeTextFile(
      join(dir, "nodes", "now.js"),
      'export default { kind: "flowstate.node", optionsSchema: { "~standard": { version: 1, vendor: "t", validate: (value) => ({ value }) } }, run: (ctx) => ctx.clock.now() };\n',
    );
    await Deno.writeTextFile(
      join(dir, "t.flow.yaml"),
      "id: t\nnodes:\n  - { id: a, type: ./nodes/now.js }\n",
    );
    const clock = fakeClock(Date.UTC(2030, 0, 1));
    await using rt = await openRuntime({
      config: { stores: { default: { plugin: "memory" } } },
      clock,
      cwd: dir,
    });
    const record = await rt.runFlow("t.flow.yaml");
    const now = record.nodes.a.output as number;
    assert.ok(now >= Date.UTC(2030, 0, 1) && now < Date.UTC(2030, 0, 1) + 60_000, String(now));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a node whose Worker passes nodes.memoryLimit is stopped, the reason recorded, the runner unharmed", async () => {
  await withSandbox(async (sandbox) => {
    await Deno.mkdir(join(sandbox.dir, "nodes"));
    await Deno.writeTextFile(join(sandbox.dir, "nodes", "hostile.ts"), HOSTILE);
    await Deno.writeTextFile(
      join(sandbox.dir, "flowstate.yaml"),
      "stores:\n  default: { plugin: memory }\nnodes:\n  memoryLimit: 64MiB\n",
    );
    const record = await runFlow(
      sandbox,
      "id: t\nnodes:\n" + node("hog", "hog") + node("after", "state", undefined, undefined).replace(
        "continueOnError: true\n",
        "continueOnError: true\n    needs: [hog]\n",
      ),
    );
    assert.equal(record.nodes.hog.status, "failed", JSON.stringify(record.nodes.hog));
    assert.match(
      record.nodes.hog.error!,
      /^the node's Worker used \d+ MiB of memory \(heap and buffers\), over its limit of 64 MiB \(nodes\.memoryLimit in the config\); it was stopped$/,
    );
    // The next node gets a fresh Worker.
    assert.equal(record.nodes.after.status, "succeeded", JSON.stringify(record.nodes.after));
  });
});

Deno.test("nodes.memoryLimit must be a size", async () => {
  await withSandbox(async (sandbox) => {
    await Deno.writeTextFile(
      join(sandbox.dir, "flowstate.yaml"),
      "stores:\n  default: { plugin: memory }\nnodes:\n  memoryLimit: lots\n",
    );
    const result = await sandbox.run("validate", "flowstate.yaml");
    assert.equal(result.code, 2);
    assert.match(result.stderr, /flowstate\.yaml:4:3: nodes\.memoryLimit: expected a size in MiB/);
  });
});

/** Run a flow of the hostile node with `nodes` (YAML list items) in a fresh sandbox. */
async function runHostile(nodes: string): Promise<RunJson> {
  let run: RunJson | undefined;
  await withSandbox(async (sandbox) => {
    await Deno.mkdir(join(sandbox.dir, "nodes"));
    await Deno.writeTextFile(join(sandbox.dir, "nodes", "hostile.ts"), HOSTILE);
    run = await runFlow(sandbox, "id: t\nnodes:\n" + nodes);
    const state = await sandbox.run("state", "get", "--flow", "t", "m");
    assert.equal(state.code, 1, "nothing was stored: " + state.stdout);
  });
  return run!;
}

Deno.test("a node that calls Deno.exit() or close() fails with a clear error instead of hanging its run", async () => {
  // The timeout only bounds the test: without the fix the node hangs until it.
  const run = await runHostile(
    [node("exit", "exit"), node("close", "close")].map((n) => n + "    timeout: 20s\n").join(""),
  );
  assert.equal(run.nodes.exit.status, "failed");
  assert.match(
    run.nodes.exit.error!,
    /a node cannot call Deno\.exit\(\): throw an error to fail the node, or return to end it/,
  );
  assert.equal(run.nodes.close.status, "failed");
  assert.match(run.nodes.close.error!, /a node cannot call close\(\)/);
});

Deno.test("a Worker node's output and state writes that are not JSON fail as in-process ones do (were silently changed: a Map to {}, NaN to null)", async () => {
  const run = await runHostile(node("map", "map") + node("nan", "nan") + node("setMap", "setMap"));
  assert.equal(run.nodes.map.status, "failed");
  assert.match(run.nodes.map.error!, /node map returned a value that is not JSON: value is a Map/);
  assert.equal(run.nodes.nan.status, "failed");
  assert.match(run.nodes.nan.error!, /value\.n is NaN, which JSON cannot hold/);
  assert.equal(run.nodes.setMap.status, "failed");
  assert.match(run.nodes.setMap.error!, /ctx\.flow\.set\(\): value is a Map/);
});

Deno.test("a Worker node's reads take options as in-process ones do (limit: Infinity is no limit)", async () => {
  const run = await runHostile(node("keysInf", "keysInf"));
  assert.equal(run.nodes.keysInf.status, "succeeded", run.nodes.keysInf.error ?? "");
});

Deno.test("values with escaped object keys cross the sandbox's messages as written", async () => {
  // V8's JSON.parse (nodejs/node#63785): after a parse of `{"st":1,"a\\":1}`, `{"st":1,"a\n":2}`
  // parsed as `{ st: 1, "a\\": 2 }`. The messages between a node's Worker and the host are JSON.
  const echo = `export default {
  kind: "flowstate.node",
  optionsSchema: { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } },
  run(ctx, input) { return input.value; },
};
`;
  await withSandbox(async (sandbox) => {
    await Deno.mkdir(join(sandbox.dir, "nodes"));
    await Deno.writeTextFile(join(sandbox.dir, "nodes", "echo.ts"), echo);
    const values = [{ st: 1, "a\\": 1 }, { st: 1, "a\n": 2 }, { st: 1, "\\": 3 }, {
      st: 1,
      "\n": 4,
    }];
    const yaml = `id: t\nnodes:\n` +
      values.map((value, i) =>
        `  - { id: n${i}, type: ./nodes/echo.ts${i > 0 ? `, needs: [n${i - 1}]` : ""}, ` +
        `with: { value: ${JSON.stringify(value)} } }\n`
      ).join("");
    await Deno.writeTextFile(join(sandbox.dir, "t.flow.yaml"), yaml);
    const result = await sandbox.runWith({}, "run", "t.flow.yaml", "--json");
    // Read with the fixed parser: a native parse of this output has the bug itself.
    const record = parseJson(result.stdout) as RunJson;
    assert.equal(record.status, "succeeded", result.stdout + result.stderr);
    for (const [i, value] of values.entries()) {
      assert.equal(JSON.stringify(record.nodes[`n${i}`].output), JSON.stringify(value), `n${i}`);
    }
  });
});
