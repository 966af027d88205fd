/**
 * A sandboxed node cannot harm its runner or get more than its flow declares
 * through the Worker machinery itself: forged messages, its own imports, the
 * memory watchdog, permission prompts, the working directory, log volume.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, withSandbox } from "./_cli_sandbox.ts";
import { streamLines } from "./fixtures/daemon_process.ts";

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
    const status = await child.status;
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
      /^the node's Worker sent a message Flowstate does not understand: not a string/,
    );
  });
});
