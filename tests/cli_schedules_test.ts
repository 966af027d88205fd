/**
 * `flowstate schedules ls` (and `GET /api/schedules` of `flowstate serve`)
 * with a flow file under `flows:` that cannot be used, a job whose module
 * cannot be loaded, or two flow files with one id: every other schedule is
 * listed, then one `error:` line a problem (what, where, how to fix), and
 * exit 2. Through the CLI and the HTTP API.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, withCliProject } from "./_cli_sandbox.ts";
import { streamLines, withDaemonProject, within } from "./fixtures/daemon_process.ts";
import { exitOf, hangSignal } from "./_deadline.ts";

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
      assert.equal((await exitOf(child)).code, 0); // a stop with nothing running
      await Promise.all([out.done, err.done]);
      assert.equal(
        err.lines.filter((l) => l.includes("looks like a flow")).length,
        1,
        err.lines.join("\n"),
      );
    },
  );
});

/** A project whose job `report` cannot be loaded and whose two flow files declare one id. */
const BROKEN_PROJECT = "stores:\n  default: { plugin: memory }\nflows: [./flows]\njobs:\n" +
  "  retention: { enabled: false }\n" +
  '  report: { module: ./jobs/missing.ts, schedule: "0 5 * * *" }\n';

async function writeBrokenFlows(dir: string): Promise<void> {
  await Deno.mkdir(join(dir, "flows"));
  await Deno.writeTextFile(join(dir, "flows", "good.flow.yaml"), flow("good"));
  await Deno.writeTextFile(join(dir, "flows", "a.flow.yaml"), flow("dup"));
  await Deno.writeTextFile(join(dir, "flows", "b.flow.yaml"), `# a copy\n${flow("dup")}`);
}

interface Row {
  id: string;
  kind: string;
  cron: string | null;
  nextRun: number | null;
  file?: string;
  error?: string;
}

/** The rows a project written by {@linkcode writeBrokenFlows} lists, checked. */
function checkBrokenRows(rows: Row[]): void {
  assert.deepEqual(rows.map((r) => r.id), [
    "job:gc",
    "job:report",
    "flow:good",
    "file:flows/a.flow.yaml",
    "file:flows/b.flow.yaml",
  ]);
  assert.equal(rows[0].error, undefined);
  assert.equal(rows[2].error, undefined);
  const job = rows[1];
  assert.equal(job.kind, "job");
  assert.equal(job.cron, null);
  assert.equal(job.nextRun, null);
  // What, where in flowstate.yaml, and how to fix it.
  assert.match(
    job.error!,
    /^Cannot schedule job "report": flowstate\.yaml:6:13: jobs\.report\.module: Cannot load job "\.\/jobs\/missing\.ts": .*fix it in the config, or set enabled: false under jobs\.report/,
  );
  for (
    const [row, file] of [[rows[3], "flows/a.flow.yaml"], [rows[4], "flows/b.flow.yaml"]] as const
  ) {
    assert.equal(row.kind, "flow");
    assert.equal(row.cron, null);
    assert.equal(row.file, file);
    assert.match(
      row.error!,
      /^Cannot schedule flow "dup": its id is declared at \S*flows\/a\.flow\.yaml:1:5 and at \S*flows\/b\.flow\.yaml:2:5; flow ids must be unique .*: give each of these flows its own id$/,
    );
  }
}

Deno.test("schedules ls: a job whose module cannot be loaded and two flow files with one id are rows saying what, where and how to fix; the rest listed, exit 2", async () => {
  await withCliProject(BROKEN_PROJECT, async (run, dir) => {
    await writeBrokenFlows(dir);

    const json = await run("schedules", "ls", "--json");
    assert.equal(json.code, 2, json.stderr);
    checkBrokenRows(JSON.parse(json.stdout));

    const table = await run("schedules", "ls");
    assert.equal(table.code, 2, table.stderr);
    assert.match(table.stdout, /^job:gc\s/m);
    assert.match(table.stdout, /^flow:good\s+0 3 \* \* \*/m);
    assert.doesNotMatch(table.stdout, /report|dup/);
    // One line each: the job, then the shared id (said once for its two files).
    const errors = table.stderr.trim().split("\n");
    assert.equal(errors.length, 2, table.stderr);
    assert.match(errors[0], /^error: Cannot schedule job "report": flowstate\.yaml:6:13: /);
    assert.match(errors[1], /^error: Cannot schedule flow "dup": its id is declared at /);

    // Fixed: exit 0, every schedule listed.
    await Deno.writeTextFile(join(dir, "flows", "b.flow.yaml"), flow("copy"));
    await Deno.mkdir(join(dir, "jobs"));
    await Deno.writeTextFile(
      join(dir, "jobs", "missing.ts"),
      'export default { kind: "flowstate.job", name: "report", description: "r", ' +
        'optionsSchema: { "~standard": { version: 1, vendor: "t", validate: (v) => ({ value: v }) } }, ' +
        "run: () => ({}) };\n",
    );
    const fixed = await run("schedules", "ls", "--json");
    assert.equal(fixed.code, 0, fixed.stderr);
    assert.deepEqual(
      (JSON.parse(fixed.stdout) as Row[]).map((r) => r.id),
      ["job:report", "job:gc", "flow:dup", "flow:copy", "flow:good"], // config order, file order
    );
  });
});

Deno.test("GET /api/schedules (flowstate serve): a job that cannot be loaded and two flow files with one id are rows with their error (200), the rest listed", async () => {
  await withCliProject(BROKEN_PROJECT, async (_run, dir) => {
    await writeBrokenFlows(dir);
    const child = cliCommand(dir, ["serve", "--port", "0", "--no-worker"]).spawn();
    const err = streamLines(child.stderr);
    try {
      const serving = await within(err.next(/^Serving http:\/\/127\.0\.0\.1:\d+\/$/), "serving");
      const res = await fetch(`${serving.slice("Serving ".length)}api/schedules`, {
        signal: hangSignal(),
      });
      assert.equal(res.status, 200);
      checkBrokenRows(await res.json());
    } finally {
      child.kill("SIGTERM");
      await exitOf(child);
      await child.stdout.cancel();
      await err.done;
    }
  });
});
