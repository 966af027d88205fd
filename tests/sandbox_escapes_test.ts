/**
 * A hostile node author's ways out of a sandboxed node's declared permissions
 * and resources, each through `flowstate run`: symbolic links in a declared
 * folder, Workers started from inside the node, memory outside the V8 heap,
 * messages too big for the runner to parse, and a `flow` node that starts
 * the flow file a node with no permissions picked.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { withSandbox } from "./_cli_sandbox.ts";

const PASS = `{ "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } }`;

/** A node that tries `with.attempt` (with `with.arg`) and returns what it got. */
const PROBE = `
export default {
  kind: "flowstate.node",
  optionsSchema: ${PASS},
  async run(ctx, { attempt, arg }) {
    switch (attempt) {
      case "read": return await Deno.readTextFile(arg);
      case "write": await Deno.writeTextFile(arg, "pwned"); return "written";
      case "worker": {
        const w = new Worker("data:text/javascript,postMessage(1)", { type: "module" });
        return await new Promise((r) => w.onmessage = (e) => r("worker said " + e.data));
      }
      case "nodeWorker": {
        const { Worker } = await import("node:worker_threads");
        const w = new Worker("require('node:worker_threads').parentPort.postMessage(1)", { eval: true });
        return await new Promise((r) => w.on("message", (m) => r("node worker said " + m)));
      }
      case "buffers": {
        const kept = [];
        for (let i = 0; i < 40; i++) {
          kept.push(new Uint8Array(8 * 1024 * 1024).fill(1));
          await new Promise((r) => setTimeout(r, 20));
        }
        return kept.length;
      }
      case "hugeMessage": {
        // The Worker's own JSON replaced: ctx.log would send whatever it returns.
        JSON.stringify = () => '{"op":"log","run":1,"level":"info","message":"' + "x".repeat(40 * 1024 * 1024) + '"}';
        ctx.log("hello");
        await new Promise((r) => setTimeout(r, 2000));
        return "survived";
      }
      case "longLine": {
        JSON.stringify = () => '{"op":"log","run":1,"level":"info","message":"' + "x".repeat(1024 * 1024) + '"}';
        ctx.log("hello");
        await new Promise((r) => setTimeout(r, 2000));
        return "survived";
      }
      case "strayFlood": {
        const big = "y".repeat(64 * 1024 * 1024);
        for (let i = 0; i < 20; i++) globalThis.postMessage(big);
        await new Promise((r) => setTimeout(r, 2000));
        return "survived";
      }
      case "log": ctx.log("z".repeat(arg)); return "logged";
      case "give": return arg;
      case "importRemote": await import(arg); return "imported";
      case "throwHuge": throw new Error("e".repeat(20 * 1024 * 1024));
    }
    throw new Error("unknown attempt " + attempt);
  },
};
`;

interface RunJson {
  status: string;
  nodes: Record<string, { status: string; output?: unknown; error?: string }>;
  events?: { type: string; message?: string }[];
}

/** One `nodes:` entry of the probe, `continueOnError`, after `needs` (one Worker at a time). */
function probe(
  id: string,
  attempt: string,
  options: { arg?: string | number; permissions?: string; needs?: string } = {},
): string {
  return `  - id: ${id}\n    type: ./nodes/probe.js\n    continueOnError: true\n` +
    (options.needs === undefined ? "" : `    needs: [${options.needs}]\n`) +
    `    with: { attempt: ${attempt}${
      options.arg === undefined ? "" : `, arg: ${JSON.stringify(options.arg)}`
    } }\n` +
    (options.permissions === undefined ? "" : `    permissions: ${options.permissions}\n`);
}

async function project(dir: string, config = "stores:\n  default: { plugin: memory }\n") {
  await Deno.mkdir(join(dir, "nodes"));
  await Deno.writeTextFile(join(dir, "nodes", "probe.js"), PROBE);
  await Deno.writeTextFile(join(dir, "flowstate.yaml"), config);
}

Deno.test("a symbolic link in a node's read:/write: folder that leads out of it refuses the node before it runs, naming the link and what to declare", async () => {
  await withSandbox(async (sandbox) => {
    const { dir } = sandbox;
    await project(dir);
    const outside = await Deno.makeTempDir({ prefix: "flowstate-outside-" });
    try {
      await Deno.writeTextFile(join(outside, "secret.txt"), "outside secret");
      await Deno.mkdir(join(dir, "data", "deep"), { recursive: true });
      await Deno.mkdir(join(dir, "out"));
      // A link that stays inside is fine.
      await Deno.mkdir(join(dir, "inner"));
      await Deno.writeTextFile(join(dir, "inner", "inside.txt"), "inside");
      await Deno.symlink(join(dir, "inner", "inside.txt"), join(dir, "inner", "alias.txt"));
      await Deno.symlink(join(outside, "secret.txt"), join(dir, "data", "deep", "link"));
      // A dangling link: writing through it would create the file outside.
      await Deno.symlink(join(outside, "made.txt"), join(dir, "out", "made.txt"));
      await Deno.writeTextFile(
        join(dir, "t.flow.yaml"),
        "id: t\nnodes:\n" +
          probe("reader", "read", { arg: "data/deep/link", permissions: "{ read: [./data] }" }) +
          probe("writer", "write", { arg: "out/made.txt", permissions: "{ write: [./out] }" }),
      );
      const result = await sandbox.run("run", "t.flow.yaml");
      assert.equal(result.code, 2, result.stdout + result.stderr);
      assert.doesNotMatch(result.stdout + result.stderr, /outside secret/);
      assert.match(
        result.stderr,
        new RegExp(
          `t\\.flow\\.yaml:7:27: nodes\\[0\\]\\.permissions\\.read\\[0\\]: read: \\./data holds \\./data/deep/link, a symbolic link to ${
            join(outside, "secret.txt")
          }, outside the node's read: paths \\(Deno follows links, so the node could read there\\); if it may, add \\S+secret\\.txt to its read:, else remove the link`,
        ),
      );
      assert.match(
        result.stderr,
        /t\.flow\.yaml:12:28: nodes\[1\]\.permissions\.write\[0\]: write: \.\/out holds \.\/out\/made\.txt, a symbolic link to \S+made\.txt, outside the node's write: paths/,
      );
      await assert.rejects(Deno.stat(join(outside, "made.txt")), Deno.errors.NotFound);

      // Declared, as the message says: the node reads it; a link that stays inside is read too.
      await Deno.writeTextFile(
        join(dir, "ok.flow.yaml"),
        "id: ok\nnodes:\n" +
          probe("reader", "read", {
            arg: "data/deep/link",
            permissions: `{ read: [./data, ${JSON.stringify(join(outside, "secret.txt"))}] }`,
          }) +
          probe("alias", "read", { arg: "inner/alias.txt", permissions: "{ read: [./inner] }" }),
      );
      const ok = await sandbox.run("run", "ok.flow.yaml", "--json");
      assert.equal(ok.code, 0, ok.stderr);
      const record = JSON.parse(ok.stdout) as RunJson;
      assert.equal(record.nodes.reader.output, "outside secret");
      assert.equal(record.nodes.alias.output, "inside");

      // validate says it too, at the same place.
      const validate = await sandbox.run("validate", "t.flow.yaml");
      assert.equal(validate.code, 2, validate.stderr);
      assert.match(validate.stderr, /t\.flow\.yaml:7:27: .*a symbolic link to/);
    } finally {
      await Deno.remove(outside, { recursive: true });
    }
  });
});

Deno.test("a node cannot start a Worker (Deno's or node:worker_threads'), whose memory no limit would see; buffers count toward nodes.memoryLimit; a refused import() has its hint", async () => {
  await withSandbox(async (sandbox) => {
    await project(
      sandbox.dir,
      "stores:\n  default: { plugin: memory }\nnodes:\n  memoryLimit: 64MiB\n",
    );
    await Deno.writeTextFile(
      join(sandbox.dir, "t.flow.yaml"),
      "id: t\nnodes:\n" + probe("worker", "worker") +
        probe("nodeWorker", "nodeWorker", { needs: "worker" }) +
        probe("buffers", "buffers", { needs: "nodeWorker" }) +
        probe("remote", "importRemote", { arg: "https://example.invalid/x.js", needs: "buffers" }),
    );
    const result = await sandbox.run("run", "t.flow.yaml", "--json");
    assert.ok(result.stdout.trim() !== "", result.stderr);
    const record = JSON.parse(result.stdout) as RunJson;
    for (const id of ["worker", "nodeWorker"]) {
      assert.equal(record.nodes[id].status, "failed", `${id}: ${JSON.stringify(record.nodes[id])}`);
      assert.match(
        record.nodes[id].error ?? "",
        /^a node cannot call new Worker\(\): a Worker's memory would escape nodes\.memoryLimit; do the work in the node/,
        id,
      );
    }
    assert.equal(record.nodes.buffers.status, "failed", JSON.stringify(record.nodes.buffers));
    assert.match(
      record.nodes.buffers.error ?? "",
      /^the node's Worker used \d+ MiB of memory \(heap and buffers\), over its limit of 64 MiB/,
    );
    // A refused import() says so, with the line to add, not Deno's advice to the runner.
    assert.equal(
      record.nodes.remote.error,
      'Requires import access to "example.invalid:443" (permission denied: the node may only do what its permissions: in the flow declare; hint: add to the node in its flow file: permissions: { import: ["example.invalid:443"] })',
    );
  });
});

Deno.test("a node's Worker sending a message bigger than any it may send is stopped before the runner parses it; a huge ctx.log line is cut in the Worker", async () => {
  await withSandbox(async (sandbox) => {
    // The default store: \`runs show\` reads the run back.
    await project(sandbox.dir, "nodes:\n  memoryLimit: 512MiB\n");
    await Deno.writeTextFile(
      join(sandbox.dir, "t.flow.yaml"),
      "id: t\nnodes:\n" + probe("hugeMessage", "hugeMessage") +
        probe("longLine", "longLine", { needs: "hugeMessage" }) +
        probe("strayFlood", "strayFlood", { needs: "longLine" }) +
        probe("log", "log", { arg: 4 * 1024 * 1024, needs: "strayFlood" }),
    );
    const result = await sandbox.run("run", "t.flow.yaml", "--json");
    assert.ok(result.stdout.trim() !== "", result.stderr);
    const record = JSON.parse(result.stdout) as RunJson;
    assert.equal(record.nodes.hugeMessage.status, "failed", JSON.stringify(record.nodes));
    assert.match(
      record.nodes.hugeMessage.error ?? "",
      /^the node's Worker sent a message of 41 MiB, more than any state call, output or log line can be \(33 MiB\); it was stopped$/,
    );
    assert.equal(record.nodes.longLine.status, "failed", JSON.stringify(record.nodes.longLine));
    assert.match(
      record.nodes.longLine.error ?? "",
      /^the node's Worker sent a message Flowstate does not understand: .*; it was stopped$/,
    );
    assert.equal(record.nodes.strayFlood.status, "failed", JSON.stringify(record.nodes.strayFlood));
    assert.match(record.nodes.strayFlood.error ?? "", /"yyyy.*…; it was stopped$/);
    assert.equal(record.nodes.log.output, "logged");
    const shown = await sandbox.run("runs", "show", JSON.parse(result.stdout).id, "--json");
    assert.match(shown.stdout, /z … \(cut: 4,194,304 bytes, over the 16 KiB a log line may hold\)/);
  });
});

Deno.test("a flow node whose flow: a sandboxed node computes runs the sub-flow within that node's permissions", async () => {
  await withSandbox(async (sandbox) => {
    const { dir } = sandbox;
    await project(dir);
    await Deno.writeTextFile(join(dir, "secret.txt"), "the secret");
    await Deno.writeTextFile(
      join(dir, "privileged.flow.yaml"),
      "id: privileged\nnodes:\n" +
        probe("r", "read", { arg: "secret.txt", permissions: "{ read: [./secret.txt] }" }) +
        "outputs: { got: '${{ nodes.r.output }}' }\n",
    );
    await Deno.writeTextFile(
      join(dir, "plan.flow.yaml"),
      `id: plan
inputs:
  which: { type: string, default: ./privileged.flow.yaml }
nodes:
${probe("pick", "give", { arg: "./privileged.flow.yaml" })}${
        probe("reader", "give", {
          arg: "./privileged.flow.yaml",
          permissions: "{ read: [./secret.txt] }",
        })
      }  - id: relay
    type: transform
    needs: [pick]
    with: { value: "\${{ nodes.pick.output }}" }
  - id: picked
    type: flow
    needs: [relay]
    continueOnError: true
    with: { flow: "\${{ nodes.relay.output }}" }
  - id: byReader
    type: flow
    needs: [reader]
    continueOnError: true
    with: { flow: "\${{ nodes.reader.output }}" }
  - id: byInput
    type: flow
    continueOnError: true
    with: { flow: "\${{ inputs.which }}" }
`,
    );
    const result = await sandbox.run("run", "plan.flow.yaml", "--json");
    assert.ok(result.stdout.trim() !== "", result.stderr);
    const record = JSON.parse(result.stdout) as RunJson;
    const text = JSON.stringify(record.nodes.picked);
    assert.equal(record.nodes.picked.status, "failed", text);
    assert.doesNotMatch(text, /the secret/);
    assert.match(
      record.nodes.picked.error ?? "",
      /^Cannot start sub-flow privileged \(\S+privileged\.flow\.yaml\) for node picked \(flow\) of flow plan, whose with: reads the output of sandboxed node pick \(\.\/nodes\/probe\.js\) of flow plan: node r \(\.\/nodes\/probe\.js\) declares read: \[\S+secret\.txt\]; a sub-flow started by a sandboxed node runs within that node's own permissions \(none\), at every level$/,
    );
    // A node that may read the file may have it read; a path from the run's inputs runs as written.
    assert.deepEqual(record.nodes.byReader.output, { got: "the secret" });
    assert.deepEqual(record.nodes.byInput.output, { got: "the secret" });
  });
});

Deno.test("a node throwing an error of 20 MiB fails with it cut to 16 KiB, and its run is recorded (it was left running: the record was over the store's value limit)", async () => {
  await withSandbox(async (sandbox) => {
    await project(sandbox.dir, "nodes:\n  trusted: [./nodes/trusted.js]\n");
    await Deno.writeTextFile(join(sandbox.dir, "nodes", "trusted.js"), PROBE);
    await Deno.writeTextFile(
      join(sandbox.dir, "t.flow.yaml"),
      "id: t\nnodes:\n" +
        probe("huge", "throwHuge").replace(
          "continueOnError: true\n",
          "continueOnError: true\n    retry: { attempts: 2 }\n",
        ) +
        "  - { id: inProcess, type: ./nodes/trusted.js, continueOnError: true, with: { attempt: throwHuge } }\n",
    );
    const result = await sandbox.run("run", "t.flow.yaml", "--json");
    assert.equal(result.code, 0, result.stderr);
    const record = JSON.parse(result.stdout) as RunJson;
    for (const id of ["huge", "inProcess"]) {
      const error = record.nodes[id].error ?? "";
      assert.match(
        error,
        /^e+ … \(cut: 20,971,520 bytes, over the 16 KiB an error message may hold\)$/,
        id,
      );
      assert.ok(error.length <= 16 * 1024, `${id}: ${error.length}`);
    }
    const runs = JSON.parse((await sandbox.run("runs", "ls", "--json")).stdout);
    assert.equal(runs.length, 1);
    assert.equal(runs[0].status, "succeeded", JSON.stringify(runs[0]));
  });
});
