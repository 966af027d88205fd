/**
 * A sandboxed node cannot harm its runner or get more than its flow declares
 * through the Worker machinery itself: forged messages, its own imports, the
 * memory watchdog, permission prompts, the working directory, log volume.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliArgv, cliCommand, type Sandbox, withSandbox } from "./_cli_sandbox.ts";
import { streamLines } from "./fixtures/daemon_process.ts";
import { exitOf } from "./_deadline.ts";

const PASS = `{ "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } }`;

/** A node that posts `with.message` (a JSON text, or `with.raw` as it is) on its Worker's own channel. */
const FORGER = `
export default {
  kind: "flowstate.node",
  optionsSchema: ${PASS},
  async run(_ctx, input) {
    if (input.message !== undefined) globalThis.postMessage(input.message);
    if (input.raw !== undefined) globalThis.postMessage(input.raw);
    await new Promise((r) => setTimeout(r, 300));
    return "survived";
  },
};
`;

interface RunJson {
  status: string;
  nodes: Record<string, { status: string; output?: unknown; error?: string }>;
}

const FORGED: Record<string, string> = {
  notString: "raw: { op: done }",
  noError: 'message: \'{"op":"loadError"}\'',
  unknownOp: 'message: \'{"op":"explode","id":1}\'',
  badId: 'message: \'{"op":"done","id":"one"}\'',
  badArgs: 'message: \'{"op":"call","id":1,"run":1,"method":"get","args":5}\'',
  badLog: 'message: \'{"op":"log","run":1,"message":{"a":1},"level":"info"}\'',
  notJson: "message: 'not json'",
  nullJson: "message: 'null'",
};

Deno.test("a node's Worker sending a message Flowstate does not understand fails that node only; the run is recorded", async () => {
  await withSandbox(async (sandbox) => {
    await Deno.mkdir(join(sandbox.dir, "nodes"));
    await Deno.writeTextFile(join(sandbox.dir, "nodes", "forger.js"), FORGER);
    const ids = Object.keys(FORGED);
    const yaml = "id: t\nnodes:\n" +
      ids.map((id, i) =>
        `  - id: ${id}\n    type: ./nodes/forger.js\n    continueOnError: true\n` +
        (i > 0 ? `    needs: [${ids[i - 1]}]\n` : "") +
        `    with: { ${FORGED[id]} }\n`
      ).join("") +
      `  - { id: after, type: ./nodes/forger.js, needs: [${ids.at(-1)}], with: {} }\n`;
    await Deno.writeTextFile(join(sandbox.dir, "t.flow.yaml"), yaml);
    const result = await sandbox.run("run", "t.flow.yaml", "--json");
    assert.ok(result.stdout.trim() !== "", `no output (exit ${result.code}): ${result.stderr}`);
    const record = JSON.parse(result.stdout) as RunJson;
    for (const id of ids) {
      assert.equal(record.nodes[id].status, "failed", `${id}: ${JSON.stringify(record.nodes[id])}`);
      assert.match(
        record.nodes[id].error ?? "",
        /^the node's Worker sent a message Flowstate does not understand: .*; it was stopped$/,
        id,
      );
    }
    assert.equal(record.nodes.after.output, "survived");
    const runs = JSON.parse((await sandbox.run("runs", "ls", "--json")).stdout);
    assert.equal(runs.length, 1);
    assert.notEqual(runs[0].status, "running", JSON.stringify(runs[0]));
  });
});

Deno.test("daemon: a node sending a message Flowstate does not understand fails its tick; other flows keep running", async () => {
  await withSandbox(async ({ dir, home }) => {
    await Deno.mkdir(join(dir, "nodes"));
    await Deno.writeTextFile(join(dir, "nodes", "forger.js"), FORGER);
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "flows: [./good.flow.yaml, ./bad.flow.yaml]\n" +
        "jobs:\n  retention: { enabled: false }\n  gc: { enabled: false }\n",
    );
    await Deno.writeTextFile(
      join(dir, "good.flow.yaml"),
      'id: good\nschedule: "* * * * * *"\nnodes:\n  - { id: a, type: transform, with: { value: 1 } }\n',
    );
    await Deno.writeTextFile(
      join(dir, "bad.flow.yaml"),
      'id: bad\nschedule: "* * * * * *"\nnodes:\n' +
        "  - { id: forge, type: ./nodes/forger.js, with: { raw: { op: done } } }\n",
    );
    const child = cliCommand(dir, ["daemon", "--json"], { home }).spawn();
    const stdout = streamLines(child.stdout);
    const stderr = new Response(child.stderr).text();
    const ends = () => stdout.lines.map((l) => JSON.parse(l)).filter((e) => e.type === "tick.end");
    let exited = false;
    child.status.then(() => exited = true);
    // A guard against waiting forever, not a timing assertion: the checks below say what is missing.
    const giveUp = Date.now() + 60_000;
    // Good ticks after bad ones: the daemon outlived them.
    while (
      !exited && Date.now() < giveUp &&
      !(ends().filter((e) => e.scheduleId === "flow:bad").length >= 2 &&
        ends().filter((e) => e.scheduleId === "flow:good").length >= 3)
    ) await new Promise((r) => setTimeout(r, 50));
    if (exited) assert.fail(`the daemon exited: ${await stderr}`);
    child.kill("SIGTERM");
    const status = await exitOf(child);
    await stdout.done;
    assert.equal(status.code, 0, await stderr);
    const bad = ends().filter((e) => e.scheduleId === "flow:bad");
    const good = ends().filter((e) => e.scheduleId === "flow:good");
    assert.ok(bad.length >= 2 && good.length >= 3, JSON.stringify(ends()));
    for (const end of bad) assert.equal(end.status, "failed", JSON.stringify(end));
    for (const end of good) assert.equal(end.status, "succeeded", JSON.stringify(end));
    assert.ok(good.at(-1).tick > bad[0].tick);
    const shown = await cliCommand(dir, ["runs", "show", bad[0].runId, "--json"], { home })
      .output();
    const detail = JSON.parse(new TextDecoder().decode(shown.stdout));
    assert.match(
      detail.run.nodes.forge.error,
      /^the node's Worker sent a message Flowstate does not understand: object \{"op":"done"\}/,
    );
  });
});

/** A node module importing `specifier` as `type` (text, bytes, json) and returning its length. */
function importer(specifier: string, type: string): string {
  return `import data from ${JSON.stringify(specifier)} with { type: ${JSON.stringify(type)} };
export default {
  kind: "flowstate.node",
  optionsSchema: ${PASS},
  run: () => typeof data === "string" ? data : data.length ?? JSON.stringify(data),
};
`;
}

/**
 * A project in the sandbox with `nodes/`, `lib/helper.txt` ("helper") and a
 * sqlite store at `data/state.db` holding the global value "hunter2".
 */
async function projectWithStore(sandbox: Sandbox): Promise<void> {
  const { dir } = sandbox;
  await Deno.mkdir(join(dir, "nodes"));
  await Deno.mkdir(join(dir, "lib"));
  await Deno.writeTextFile(join(dir, "lib", "helper.txt"), "helper");
  await Deno.writeTextFile(
    join(dir, "flowstate.yaml"),
    "stores:\n  default: { plugin: sqlite, path: data/state.db }\n",
  );
  await Deno.writeTextFile(
    join(dir, "set.flow.yaml"),
    "id: set\nnodes:\n  - { id: s, type: state.set, with: { scope: global, key: k, value: hunter2 } }\n",
  );
  const set = await sandbox.run("run", "set.flow.yaml");
  assert.equal(set.code, 0, set.stderr);
}

Deno.test("a node's own imports read only its project, its folders and its read: paths; never the store, the home, the config or other files", async () => {
  await withSandbox(async (sandbox) => {
    const { dir, home } = sandbox;
    const outside = await Deno.makeTempDir({ prefix: "flowstate-outside-" });
    try {
      await Deno.writeTextFile(join(outside, "secret.txt"), "outside secret");
      await projectWithStore(sandbox);
      await Deno.writeTextFile(join(dir, ".env"), "TOKEN=hunter2");
      const refused: Record<string, [string, string]> = {
        passwd: ["/etc/passwd", "text"],
        outside: [join(outside, "secret.txt"), "text"],
        store: ["../data/state.db", "text"],
        home: [join(home, "state.db"), "text"],
        config: ["../flowstate.yaml", "text"],
        dotenv: ["../.env", "text"],
      };
      for (const [name, [specifier, type]] of Object.entries(refused)) {
        await Deno.writeTextFile(join(dir, "nodes", `${name}.js`), importer(specifier, type));
        await Deno.writeTextFile(
          join(dir, `${name}.flow.yaml`),
          `id: ${name}\nnodes:\n  - { id: a, type: ./nodes/${name}.js }\n`,
        );
        const result = await sandbox.run("run", `${name}.flow.yaml`);
        assert.equal(result.code, 2, `${name}: ${result.stdout}${result.stderr}`);
        assert.match(
          result.stderr,
          /cannot load node module .*: Requires read access to "[^"]+": a node module imports only from the project, its flow's folder, its own folder and the node's permissions: read: paths/,
          `${name}: ${result.stderr}`,
        );
        // Not Deno's advice to the runner, which has --allow-read already.
        assert.doesNotMatch(result.stderr, /run again with the --allow-read flag/, name);
        assert.doesNotMatch(result.stderr, /Uncaught|hunter2|outside secret|root:/, name);
      }
      // What a node legitimately imports: a project file outside its folder, and its read: paths.
      await Deno.writeTextFile(
        join(dir, "nodes", "lib.js"),
        importer("../lib/helper.txt", "text"),
      );
      await Deno.writeTextFile(
        join(dir, "nodes", "declared.js"),
        importer(join(outside, "secret.txt"), "text"),
      );
      await Deno.writeTextFile(
        join(dir, "ok.flow.yaml"),
        "id: ok\nnodes:\n  - { id: lib, type: ./nodes/lib.js }\n" +
          `  - { id: declared, type: ./nodes/declared.js, permissions: { read: [${outside}] } }\n`,
      );
      const ok = await sandbox.run("run", "ok.flow.yaml", "--json");
      assert.equal(ok.code, 0, ok.stderr);
      const record = JSON.parse(ok.stdout) as RunJson;
      assert.equal(record.nodes.lib.output, "helper");
      assert.equal(record.nodes.declared.output, "outside secret");
    } finally {
      await Deno.remove(outside, { recursive: true });
    }
  });
});

/** A node module whose top level and `run` each try `code` (an expression, awaited), as `{ top, run }`. */
function tryer(code: string): string {
  const attempt =
    `(async () => { try { return String(await (${code})); } catch (e) { return e.name + ": " + e.message; } })()`;
  return `const top = await ${attempt};
export default {
  kind: "flowstate.node",
  optionsSchema: ${PASS},
  run: async () => ({ top, run: await ${attempt} }),
};
`;
}

Deno.test("a node's code, its top level included, reads only its read: paths, though its imports read the project; import() with a literal specifier reads what an import may", async () => {
  await withSandbox(async (sandbox) => {
    const { dir } = sandbox;
    await projectWithStore(sandbox);
    await Deno.writeTextFile(join(dir, "lib", "other.txt"), "other");
    const read = (file: string) =>
      `Deno.readTextFile(new URL(${JSON.stringify(file)}, import.meta.url))`;
    const nodes: Record<string, string> = {
      // What its imports may read, its own code may not: the node declares no read:.
      readLib: tryer(read("../lib/helper.txt")),
      // A literal import() is an import: the project's files, never the store.
      importLib: tryer(
        `import("../lib/helper.txt", { with: { type: "text" } }).then((m) => m.default)`,
      ),
      importStore: tryer(
        `import("../data/state.db", { with: { type: "text" } }).then((m) => m.default.length)`,
      ),
      // A file it declares, inside a folder its imports may read: still readable.
      declared: tryer(read("../lib/helper.txt")),
      undeclared: tryer(read("../lib/other.txt")),
    };
    let flow = "id: reads\nnodes:\n";
    for (const [name, source] of Object.entries(nodes)) {
      await Deno.writeTextFile(join(dir, "nodes", `${name}.js`), source);
      const permissions = name === "declared" || name === "undeclared"
        ? `, permissions: { read: [${join(dir, "lib", "helper.txt")}] }`
        : "";
      flow += `  - { id: ${name}, type: ./nodes/${name}.js${permissions} }\n`;
    }
    await Deno.writeTextFile(join(dir, "reads.flow.yaml"), flow);
    const result = await sandbox.run("run", "reads.flow.yaml", "--json");
    assert.equal(result.code, 0, result.stderr);
    const record = JSON.parse(result.stdout) as RunJson;
    const outputs = Object.fromEntries(
      Object.keys(nodes).map((id) => [id, record.nodes[id].output as { top: string; run: string }]),
    );
    for (const where of ["top", "run"] as const) {
      assert.match(
        outputs.readLib[where],
        /^NotCapable: Requires read access to ".*helper\.txt"/,
        where,
      );
      assert.equal(outputs.importLib[where], "helper", where);
      assert.match(
        outputs.importStore[where],
        /Requires read access to ".*state\.db"/,
        `${where}: ${outputs.importStore[where]}`,
      );
      assert.equal(outputs.declared[where], "helper", where);
      assert.match(
        outputs.undeclared[where],
        /^NotCapable: Requires read access to ".*other\.txt"/,
        where,
      );
    }
    assert.doesNotMatch(result.stdout, /hunter2/);
  });
});

Deno.test("a node module importing a remote module its import: does not list loads as the runner's imports allow; one it lists loads the same", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () =>
      new Response('export const greeting = "remote hi";\n', {
        headers: { "content-type": "application/javascript" },
      }),
  );
  try {
    await withSandbox(async (sandbox) => {
      const host = `127.0.0.1:${server.addr.port}`;
      await Deno.mkdir(join(sandbox.dir, "nodes"));
      await Deno.writeTextFile(
        join(sandbox.dir, "nodes", "remote.js"),
        `import { greeting } from "http://${host}/greeting.js";
export default { kind: "flowstate.node", optionsSchema: ${PASS}, run: () => greeting };
`,
      );
      await Deno.writeTextFile(
        join(sandbox.dir, "remote.flow.yaml"),
        "id: remote\nnodes:\n  - { id: plain, type: ./nodes/remote.js }\n" +
          `  - { id: listed, type: ./nodes/remote.js, permissions: { import: ["${host}"] } }\n`,
      );
      // The runner may import from the server; no lock file is written for it.
      const [program, ...args] = cliArgv(["run", "remote.flow.yaml", "--json"]);
      const output = await new Deno.Command(program, {
        args: [args[0], "--no-lock", `--allow-import=${host}`, ...args.slice(1)],
        cwd: sandbox.dir,
        env: { FLOWSTATE_HOME: sandbox.home, NO_COLOR: "1", RUST_BACKTRACE: "0" },
        stdin: "null",
      }).output();
      const stdout = new TextDecoder().decode(output.stdout);
      assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
      const record = JSON.parse(stdout) as RunJson;
      assert.equal(record.nodes.plain.output, "remote hi");
      assert.equal(record.nodes.listed.output, "remote hi");
    });
  } finally {
    await server.shutdown();
  }
});

/** A node allocating about 10 MiB every 10 ms for `with.rounds` rounds, after `with.evade`. */
const HOG = `
export default {
  kind: "flowstate.node",
  optionsSchema: ${PASS},
  async run(_ctx, input) {
    if (input.evade === "memoryUsage") {
      const real = Deno.memoryUsage;
      Object.defineProperty(Deno, "memoryUsage", { value: () => ({ ...real(), heapUsed: 0 }) });
    } else if (input.evade === "timers") {
      for (let i = 0; i < 10000; i++) { clearInterval(i); clearTimeout(i); }
    } else if (input.evade === "onmessage") {
      globalThis.onmessage = null;
      MessagePort.prototype.postMessage = () => {};
      EventTarget.prototype.dispatchEvent = () => true;
    } else if (input.evade === "block") {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
      return "woke";
    }
    const kept = [];
    for (let i = 0; i < input.rounds; i++) {
      kept.push(new Array(1.3e6).fill(i + 0.5));
      await new Promise((r) => setTimeout(r, 10));
    }
    return kept.length;
  },
};
`;

Deno.test("nodes.memoryLimit stops a node that tampers with the Worker's watchdog; a Worker that stops answering is stopped", async () => {
  await withSandbox(async (sandbox) => {
    await Deno.mkdir(join(sandbox.dir, "nodes"));
    await Deno.writeTextFile(join(sandbox.dir, "nodes", "hog.js"), HOG);
    await Deno.writeTextFile(
      join(sandbox.dir, "flowstate.yaml"),
      "stores:\n  default: { plugin: memory }\nnodes:\n  memoryLimit: 64MiB\n",
    );
    // One after the other: nodes of one run running at once share their module's Worker.
    const evasions = ["none", "memoryUsage", "timers", "onmessage"];
    const yaml = "id: t\nnodes:\n" +
      [...evasions, "block"].map((evade, i, all) =>
        `  - id: ${evade}\n    type: ./nodes/hog.js\n    continueOnError: true\n` +
        (i > 0 ? `    needs: [${all[i - 1]}]\n` : "") +
        `    with: { evade: ${evade}, rounds: 60 }\n`
      ).join("");
    await Deno.writeTextFile(join(sandbox.dir, "t.flow.yaml"), yaml);
    const result = await sandbox.run("run", "t.flow.yaml", "--json");
    assert.ok(result.stdout.trim() !== "", result.stderr);
    const record = JSON.parse(result.stdout) as RunJson;
    for (const evade of evasions) {
      assert.equal(
        record.nodes[evade].status,
        "failed",
        `${evade}: ${JSON.stringify(record.nodes[evade])}`,
      );
      assert.match(
        record.nodes[evade].error ?? "",
        /^the node's Worker used \d+ MiB of memory \(heap and buffers\), over its limit of 64 MiB/,
        `${evade}: ${record.nodes[evade].error}`,
      );
    }
    assert.equal(record.nodes.block.status, "failed", JSON.stringify(record.nodes.block));
    assert.match(
      record.nodes.block.error ?? "",
      /^the node's Worker answered no heap check for 10 s/,
    );
  });
});

const REACHING = `
export default {
  kind: "flowstate.node",
  optionsSchema: ${PASS},
  async run(_ctx, input) {
    if (input.attempt === "request") {
      const status = await Deno.permissions.request({ name: "read", path: "/etc/passwd" });
      return status.state;
    }
    if (input.attempt === "requestSync") return Deno.permissions.requestSync({ name: "env" }).state;
    if (input.attempt === "chdir") { Deno.chdir(input.to); return Deno.cwd(); }
    if (input.attempt === "internal") {
      return typeof Deno[Deno.internal];
    }
    throw new Error("unknown attempt");
  },
};
`;

Deno.test("a node cannot ask for more permissions or change the runner's working directory", async () => {
  await withSandbox(async (sandbox) => {
    await Deno.mkdir(join(sandbox.dir, "nodes"));
    await Deno.mkdir(join(sandbox.dir, "data"));
    await Deno.writeTextFile(join(sandbox.dir, "nodes", "reach.js"), REACHING);
    const data = join(sandbox.dir, "data");
    const yaml = "id: t\nnodes:\n" +
      "  - { id: request, type: ./nodes/reach.js, continueOnError: true, with: { attempt: request } }\n" +
      "  - { id: requestSync, type: ./nodes/reach.js, continueOnError: true, with: { attempt: requestSync } }\n" +
      `  - { id: chdir, type: ./nodes/reach.js, continueOnError: true, with: { attempt: chdir, to: ${data} }, permissions: { read: [./data] } }\n` +
      "  - { id: internal, type: ./nodes/reach.js, with: { attempt: internal } }\n" +
      "  - { id: cwd, type: transform, needs: [chdir], with: { value: ok } }\n";
    await Deno.writeTextFile(join(sandbox.dir, "t.flow.yaml"), yaml);
    const result = await sandbox.run("run", "t.flow.yaml", "--json");
    assert.ok(result.stdout.trim() !== "", result.stderr);
    const record = JSON.parse(result.stdout) as RunJson;
    assert.match(
      record.nodes.request.error ?? "",
      /^a node cannot call Deno\.permissions\.request\(\)/,
    );
    assert.match(
      record.nodes.requestSync.error ?? "",
      /^a node cannot call Deno\.permissions\.request\(\)/,
    );
    assert.match(record.nodes.chdir.error ?? "", /^a node cannot call Deno\.chdir\(\)/);
    assert.equal(record.nodes.internal.output, "undefined");
  });
});

const FLOOD = `
export default {
  kind: "flowstate.node",
  optionsSchema: ${PASS},
  async run(ctx, input) {
    ctx.log("é".repeat(input.long));
    for (let i = 0; i < input.n; i++) {
      ctx.log("x".repeat(input.len));
      if (i % 1000 === 0) await new Promise((r) => setTimeout(r, 0));
    }
    return "done";
  },
};
`;

Deno.test("ctx.log keeps at most 10,000 lines and 4 MiB per attempt, each line at most 16 KiB; one line says how many were dropped", async () => {
  await withSandbox(async (sandbox) => {
    await Deno.mkdir(join(sandbox.dir, "nodes"));
    await Deno.writeTextFile(join(sandbox.dir, "nodes", "flood.js"), FLOOD);
    await Deno.writeTextFile(
      join(sandbox.dir, "t.flow.yaml"),
      "id: t\nnodes:\n" +
        "  - { id: lines, type: ./nodes/flood.js, with: { n: 12000, len: 10, long: 1 } }\n" +
        "  - { id: bytes, type: ./nodes/flood.js, with: { n: 5000, len: 1000, long: 20000 } }\n",
    );
    const result = await sandbox.run("run", "t.flow.yaml", "--json");
    assert.equal(result.code, 0, result.stderr);
    const id = JSON.parse(result.stdout).id;
    const shown = await sandbox.run("runs", "show", id, "--json");
    const events = JSON.parse(shown.stdout).events as {
      type: string;
      node?: string;
      level?: string;
      message?: string;
    }[];
    const logs = (node: string) => events.filter((e) => e.type === "node.log" && e.node === node);
    const lines = logs("lines");
    assert.equal(lines.length, 10_001);
    assert.equal(
      lines.at(-1)!.message,
      "2,001 log lines of attempt 1 dropped: an attempt logs at most 10,000 lines and 4 MiB",
    );
    assert.equal(lines.at(-1)!.level, "warn");
    const bytes = logs("bytes");
    const size = (text: string) => new TextEncoder().encode(text).length;
    const first = bytes[0].message!;
    assert.ok(size(first) <= 16 * 1024, String(size(first)));
    assert.match(first, /^é+ … \(cut: 40,000 bytes, over the 16 KiB a log line may hold\)$/);
    const kept = bytes.slice(0, -1).reduce((n, e) => n + size(e.message!), 0);
    assert.ok(kept <= 4 * 1024 * 1024, String(kept));
    assert.match(bytes.at(-1)!.message!, /^\d[\d,]* log lines of attempt 1 dropped/);
  });
});
