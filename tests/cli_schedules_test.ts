/**
 * `flowstate schedules ls` with a flow file under `flows:` that cannot be
 * used: every other schedule is listed, then one `error:` line a broken file
 * (which file, why), and exit 2. Through the CLI.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { withCliProject } from "./_cli_sandbox.ts";
import { withDaemonProject, within } from "./fixtures/daemon_process.ts";

const flow = (id: string, type = "log") =>
  `id: ${id}\nschedule: "0 3 * * *"\nnodes:\n  - { id: say, type: ${type}, with: { message: hi } }\n`;

Deno.test("schedules ls: a broken flow file hides nothing else; an error line names it, exit 2", async () => {
  await withCliProject(
    "stores:\n  default: { plugin: memory }\nflows: [./flows]\njobs:\n  retention: { enabled: false }\n",
    async (run, dir) => {
      await Deno.mkdir(join(dir, "flows"));
      await Deno.writeTextFile(join(dir, "flows", "good.flow.yaml"), flow("good"));
      await Deno.writeTextFile(join(dir, "flows", "tick.flow.yaml"), flow("tick", "state.nope"));

      const table = await run("schedules", "ls");
      assert.equal(table.code, 2, table.stderr);
      assert.match(table.stdout, /^ID\s+SCHEDULE/);
      assert.match(table.stdout, /^job:gc\s/m);
      assert.match(table.stdout, /^flow:good\s+0 3 \* \* \*/m);
      assert.doesNotMatch(table.stdout, /tick/);
      const errors = table.stderr.trim().split("\n");
      assert.equal(errors.length, 1, table.stderr);
      assert.match(
        errors[0],
        /^error: Cannot schedule flow tick\.flow\.yaml: \S*tick\.flow\.yaml:4:\d+: .*unknown node type "state\.nope"/,
      );

      const json = await run("schedules", "ls", "--json");
      assert.equal(json.code, 2, json.stderr);
      const rows = JSON.parse(json.stdout) as {
        id: string;
        cron: string | null;
        file?: string;
        error?: string;
      }[];
      assert.deepEqual(rows.map((r) => r.id), ["job:gc", "flow:good", "file:flows/tick.flow.yaml"]);
      const broken = rows[2];
      assert.equal(broken.cron, null);
      assert.equal(broken.file, "flows/tick.flow.yaml");
      assert.match(broken.error!, /unknown node type "state\.nope"/);
      assert.match(json.stderr, /^error: Cannot schedule flow tick\.flow\.yaml: /);

      // Fixed: exit 0, nothing on stderr.
      await Deno.writeTextFile(join(dir, "flows", "tick.flow.yaml"), flow("tick"));
      const fixed = await run("schedules", "ls");
      assert.equal(fixed.code, 0, fixed.stderr);
      assert.match(fixed.stdout, /^flow:tick\s/m);
      assert.equal(fixed.stderr, "");
    },
  );
});

Deno.test("schedules ls, daemon: a flow-looking file of a flows: folder not named *.flow.yaml is warned about, not silently skipped", async () => {
  await withCliProject(
    "stores:\n  default: { plugin: memory }\nflows: [./flows]\njobs:\n  retention: { enabled: false }\n  gc: { enabled: false }\n",
    async (run, dir) => {
      await Deno.mkdir(join(dir, "flows"));
      await Deno.writeTextFile(join(dir, "flows", "good.flow.yaml"), flow("good"));
      await Deno.writeTextFile(join(dir, "flows", "hello.yaml"), flow("hello"));
      await Deno.writeTextFile(join(dir, "flows", "tick.flow.yml"), flow("tick"));
      // YAML that is not a flow is nobody's business.
      await Deno.writeTextFile(join(dir, "flows", "data.yaml"), "rows:\n  - 1\n");

      const table = await run("schedules", "ls");
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /^flow:good\s/m);
      const warnings = table.stderr.trim().split("\n");
      assert.deepEqual(warnings.length, 2, table.stderr);
      assert.match(
        warnings[0],
        /^warning: \S*flows\/hello\.yaml looks like a flow but is not read as one: only \*\.flow\.yaml files of a flows: directory are; rename it to hello\.flow\.yaml$/,
      );
      assert.match(
        warnings[1],
        /tick\.flow\.yml looks like a flow .* rename it to tick\.flow\.yaml$/,
      );
    },
  );
});

Deno.test("daemon: says at start which flow-looking files of a flows: folder it does not read", async () => {
  await withDaemonProject(
    "flowstate-lookalike-",
    {
      "flowstate.yaml":
        "stores:\n  default: { plugin: memory }\nflows: [./flows]\njobs:\n  retention: { enabled: false }\n  gc: { enabled: false }\n",
      "flows/good.flow.yaml": flow("good"),
      "flows/hello.yaml": flow("hello"),
    },
    [],
    async ({ child, err, out }) => {
      const line = await within(err.next(/looks like a flow/), "the warning");
      assert.match(
        line,
        /^warning: \S*flows\/hello\.yaml looks like a flow .* rename it to hello\.flow\.yaml$/,
      );
      await within(out.next(/^Scheduler started/), "the start");
      child.kill("SIGTERM");
      assert.equal((await child.status).code, 0); // a stop with nothing running
      await Promise.all([out.done, err.done]);
      assert.equal(
        err.lines.filter((l) => l.includes("looks like a flow")).length,
        1,
        err.lines.join("\n"),
      );
    },
  );
});
