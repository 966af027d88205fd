// A custom node's `permissions:` entry that Deno cannot take (a host with a space, a port over
// 65535, a URL, an unknown sys name) is a FlowValidationError that names the entry, before
// anything runs; it used to escape as Deno's bare URIError/TypeError.
import assert from "node:assert/strict";
import { join } from "node:path";
import { FlowValidationError, openRuntime } from "../mod.ts";

const NODE = `
export default {
  kind: "flowstate.node",
  optionsSchema: { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } },
  run: () => "ran",
};
`;

const cases: [Record<string, string[]>, string, RegExp][] = [
  [{ net: ["bad host"] }, "net[0]", /"bad host" is not a valid net permission: .*invalid/],
  [{ net: ["127.0.0.1:80", "example.com:99999"] }, "net[1]", /invalid port/],
  [{ net: ["https://example.com"] }, "net[0]", /takes a host name or IP address/],
  // Deno accepts an unknown sys name in a query, and refuses it when the Worker starts.
  [{ sys: ["hostname", "nope"] }, "", /^Deno cannot start node n with these permissions: .*"nope"/],
];

for (const [permissions, where, message] of cases) {
  Deno.test(`a node's permissions ${JSON.stringify(permissions)} are refused at permissions${where ? "." + where : ""}`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "flowstate-node-permissions-" });
    try {
      const node = join(dir, "node.js");
      await Deno.writeTextFile(node, NODE);
      await using rt = await openRuntime({
        config: { stores: { main: { plugin: "memory" } } },
        cwd: dir,
        // Not the module's folder: a node module inside the home is refused.
        home: join(dir, "home"),
      });
      const error = await rt.runFlow({
        id: "perms",
        nodes: [{ id: "n", type: node, permissions }],
      } as never).then(() => null, (err) => err);
      assert.ok(error instanceof FlowValidationError, String(error));
      assert.equal(error.problems.length, 1);
      const [problem] = error.problems;
      const entry = where === "" ? "" : `.${where.replace(/\[(\d+)\]/, ".$1")}`;
      assert.equal(problem.path.join("."), `nodes.0.permissions${entry}`);
      assert.match(problem.message, message);
      const { runs } = await (await rt.records()).listRuns({ flowId: "perms", limit: 5 });
      assert.equal(runs.length, 0, "nothing was recorded");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
