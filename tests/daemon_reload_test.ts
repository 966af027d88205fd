/**
 * `flowstate daemon` reads a scheduled flow's file again when it changes: an
 * edit reaches the next run, a schedule removed stops its ticks, one added
 * (or a new flow file with one) starts ticking, and each change is said on
 * stderr. Through the CLI.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli, withCliProject } from "./_cli_sandbox.ts";
import { type DaemonProject, withDaemonProject, within } from "./fixtures/daemon_process.ts";
import { exitOf, hangSignal } from "./_deadline.ts";

const flow = (id: string, message: string, schedule: string | null) =>
  `id: ${id}\n${schedule === null ? "" : `schedule: "${schedule}"\n`}nodes:\n` +
  `  - { id: say, type: log, with: { message: "${message}" } }\n`;

/**
 * A project whose `flows/` holds `files` (name → text), a daemon started in it,
 * and `body` given its directory and output as lines; the daemon is stopped
 * with SIGTERM after `body` (it must exit 0).
 */
function withFlowDaemon(
  prefix: string,
  files: Record<string, string>,
  body: (d: DaemonProject) => Promise<void>,
): Promise<void> {
  const flows = Object.entries(files).map(([name, text]) => [`flows/${name}`, text]);
  return withDaemonProject(
    prefix,
    {
      "flowstate.yaml":
        "flows: [./flows]\njobs:\n  retention: { enabled: false }\n  gc: { enabled: false }\n",
      ...Object.fromEntries(flows),
    },
    [],
    async (d) => {
      await body(d);
      d.child.kill("SIGTERM");
      assert.equal(
        (await exitOf(d.child, () => d.err.lines.join("\n"))).code,
        0,
        d.err.lines.join("\n"),
      );
    },
  );
}

Deno.test({
  name:
    "daemon: an edited flow file reaches the next run; a schedule removed stops ticking, one added starts, each said",
  sanitizeResources: false,
  async fn() {
    await withFlowDaemon("flowstate-daemon-reload-", {
      "tk.flow.yaml": flow("tk", "version one", "* * * * * *"),
    }, async ({ dir, err }) => {
      const file = join(dir, "flows", "tk.flow.yaml");
      await within(err.next(/^\[flow:tk\] say: version one$/), "a run of the first version");

      // Its content changes: the next run is the new one's.
      await Deno.writeTextFile(file, flow("tk", "version two", "* * * * * *"));
      await within(
        err.next(/^\[flow:tk\] flow file changed: its next runs use it as it is now$/),
        "the change said",
      );
      await within(err.next(/^\[flow:tk\] say: version two$/), "a run of the second version");

      // Its schedule changes.
      await Deno.writeTextFile(file, flow("tk", "version two", "*/2 * * * * *"));
      await within(
        err.next(
          /^\[flow:tk\] schedule changed from \* \* \* \* \* \* \(UTC\) to \*\/2 \* \* \* \* \* \(UTC\): next /,
        ),
        "the schedule change said",
      );

      // Its schedule is removed, and another file with one is added.
      await Deno.writeTextFile(file, flow("tk", "version three", null));
      const removed = await within(
        err.next(/^\[flow:tk\] schedule removed/),
        "the removal said",
      );
      const removedAt = err.lines.indexOf(removed);
      const ls = await runCli(dir, ["schedules", "ls"]);
      assert.equal(ls.code, 0, ls.stderr);
      assert.doesNotMatch(ls.stdout, /flow:tk/);
      await Deno.writeTextFile(
        join(dir, "flows", "other.flow.yaml"),
        flow("other", "hi", "* * * * * *"),
      );
      await within(
        err.next(/^\[flow:other\] schedule added: \* \* \* \* \* \* \(UTC\), next /),
        "the addition said",
      );
      // Two runs of the new one: a run of tk in flight at the removal has ended by then.
      await within(err.next(/^\[flow:other\] say: hi$/), "a run of the added flow");
      const first = err.lines.findLastIndex((l) => l === "[flow:other] say: hi");
      await within(
        new Promise<void>((resolve, reject) => {
          const check = () => {
            if (err.lines.slice(first + 1).includes("[flow:other] say: hi")) resolve();
            else setTimeout(check, 50);
          };
          err.done.then(() => reject(new Error("the daemon ended")));
          check();
        }),
        "a second run of the added flow",
      );
      const after = err.lines.slice(removedAt + 1).filter((l) => l.startsWith("[flow:tk] say:"));
      assert.ok(after.length <= 1, `tk ran after its schedule was removed: ${after}`);
      assert.deepEqual(err.lines.filter((l) => l.startsWith("error")), []);
    });
  },
});

Deno.test({
  name:
    "daemon: a scheduled flow file an edit broke is a failed run at each tick (runs ls, metrics), not only a log line",
  sanitizeResources: false,
  async fn() {
    await withFlowDaemon("flowstate-daemon-broken-", {
      "tk.flow.yaml": flow("tk", "fine", "* * * * * *"),
    }, async ({ dir, err }) => {
      const file = join(dir, "flows", "tk.flow.yaml");
      await within(err.next(/^\[flow:tk\] say: fine$/), "a run of the good file");
      await Deno.writeTextFile(
        file,
        flow("tk", "fine", "* * * * * *").replace("type: log", "type: lgo"),
      );
      const failed = async () => {
        const ls = await runCli(dir, [
          "runs",
          "ls",
          "--flow",
          "tk",
          "--status",
          "failed",
          "--json",
        ]);
        assert.equal(ls.code, 0, ls.stderr);
        return JSON.parse(ls.stdout) as { flowVersion: string; error: { message: string } }[];
      };
      await within(
        (async () => {
          while ((await failed()).length === 0) await new Promise((r) => setTimeout(r, 200));
        })(),
        "a failed run recorded for a tick of the broken file",
      );
      const [run] = await failed();
      assert.match(run.error.message, /tk\.flow\.yaml:4:\d+: .*unknown node type "lgo"/);
      assert.equal(run.flowVersion, "unloadable");
      const metrics = await runCli(dir, ["metrics", "tk", "--json"]);
      assert.equal(metrics.code, 0, metrics.stderr);
      const all = (JSON.parse(metrics.stdout) as { version: string; failed: number }[])
        .find((m) => m.version === "*");
      assert.ok(all !== undefined && all.failed >= 1, metrics.stdout);
      const shown = await runCli(dir, ["runs", "show", (run as unknown as { id: string }).id]);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, /unknown node type "lgo"/);
      // Fixed: it runs again.
      const said = err.lines.length;
      await Deno.writeTextFile(file, flow("tk", "fixed", "* * * * * *"));
      await within(err.next(/^\[flow:tk\] say: fixed$/), "a run of the fixed file");
      assert.ok(err.lines.length > said);
    });
  },
});

Deno.test({
  name:
    "daemon: a second flow file with a running schedule's id is a problem of that file, said once with both places; the first runs on, the rest applies, the fix is said",
  sanitizeResources: false,
  async fn() {
    await withFlowDaemon("flowstate-daemon-dup-", {
      "a.flow.yaml": flow("tk", "a", "* * * * * *"),
    }, async ({ dir, err }) => {
      await within(err.next(/^\[flow:tk\] say: a$/), "a run");
      const b = join(dir, "flows", "b.flow.yaml");
      await Deno.writeTextFile(b, flow("tk", "b", "* * * * * *"));
      const line = await within(
        err.next(/^error: flow file \S*b\.flow\.yaml cannot be used/),
        "the problem said",
      );
      const said = err.lines.indexOf(line);
      // Where each file declares the id, how to fix it, and which file goes on.
      assert.match(
        line,
        /Cannot schedule flow "tk": its id is declared at \S*a\.flow\.yaml:1:5 and at \S*b\.flow\.yaml:1:5; flow ids must be unique .*: give each of these flows its own id; until then only \S*a\.flow\.yaml, which had the schedule first, keeps it/,
      );
      // Another file's change still applies meanwhile (the flows' schedules are not frozen).
      await Deno.writeTextFile(
        join(dir, "flows", "c.flow.yaml"),
        flow("other", "c", "* * * * * *"),
      );
      await within(err.next(/^\[flow:other\] say: c$/), "a run of a file added meanwhile");
      // Three more runs of tk (every second): more looks at the files (every 2 s and before each
      // tick), and the problem is not said again; b's flow never runs under tk.
      await within(
        (async () => {
          const later = () =>
            err.lines.slice(said + 1).filter((l) => l === "[flow:tk] say: a").length;
          while (later() < 3) await new Promise((r) => setTimeout(r, 100));
        })(),
        "three later runs",
      );
      assert.equal(err.lines.filter((l) => l.includes("b.flow.yaml cannot be used")).length, 1);
      assert.ok(!err.lines.includes("[flow:tk] say: b"), err.lines.join("\n"));
      assert.ok(!err.lines.some((l) => l.includes("Cannot read the flows' schedules again")));
      // Fixed: b gets its own id, and runs.
      await Deno.writeTextFile(b, flow("tk2", "b", "* * * * * *"));
      await within(
        err.next(/^\[flow:tk2\] flow file \S*b\.flow\.yaml can be used again$/),
        "the fix said",
      );
      await within(err.next(/^\[flow:tk2\] say: b$/), "a run of the fixed file");
    });
  },
});

Deno.test({
  name:
    "daemon --serve: GET /api/schedules shows the running file's schedule and the second file with its id as a row of its own with the error (200)",
  sanitizeResources: false,
  async fn() {
    await withDaemonProject(
      "flowstate-daemon-serve-dup-",
      {
        "flowstate.yaml": "stores:\n  default: { plugin: memory }\nserve: { port: 0 }\n" +
          "flows: [./flows]\njobs:\n  retention: { enabled: false }\n  gc: { enabled: false }\n",
        "flows/a.flow.yaml": flow("tk", "a", "0 0 1 1 *"),
      },
      ["--serve"],
      async ({ dir, child, err }) => {
        const serving = await within(err.next(/^Serving http:\/\/127\.0\.0\.1:\d+\/$/), "serving");
        await Deno.writeTextFile(join(dir, "flows", "b.flow.yaml"), flow("tk", "b", "0 0 1 1 *"));
        await within(err.next(/^error: flow file \S*b\.flow\.yaml cannot be used/), "the problem");
        const response = await fetch(new URL("api/schedules", serving.slice("Serving ".length)), {
          signal: hangSignal(),
        });
        assert.equal(response.status, 200);
        const rows = (await response.json()) as {
          id: string;
          cron: string | null;
          file?: string;
          error?: string;
        }[];
        assert.deepEqual(rows.map((r) => [r.id, r.cron, r.error === undefined]), [
          ["flow:tk", "0 0 1 1 *", true],
          ["file:flows/b.flow.yaml", null, false],
        ]);
        assert.match(
          rows[1].error!,
          /^Cannot schedule flow "tk": its id is declared at \S*a\.flow\.yaml:1:5 and at \S*b\.flow\.yaml:1:5; .*until then only \S*a\.flow\.yaml, which had the schedule first, keeps it$/,
        );
        child.kill("SIGTERM");
        assert.equal(
          (await exitOf(child, () => err.lines.join("\n"))).code,
          0,
          err.lines.join("\n"),
        );
      },
    );
  },
});

Deno.test({
  name: "daemon: two flow files whose schedules declare one id at start: exit 2, both places said",
  sanitizeResources: false,
  async fn() {
    await withCliProject(
      "flows: [./flows]\njobs:\n  retention: { enabled: false }\n  gc: { enabled: false }\n",
      async (run, dir) => {
        await Deno.mkdir(join(dir, "flows"));
        await Deno.writeTextFile(join(dir, "flows", "a.flow.yaml"), flow("tk", "a", "0 3 * * *"));
        await Deno.writeTextFile(
          join(dir, "flows", "b.flow.yaml"),
          `# the same id\n${flow("tk", "b", "0 4 * * *")}`,
        );
        const started = await run("daemon");
        assert.equal(started.code, 2, started.stderr);
        assert.match(
          started.stderr,
          /^error: Cannot schedule flow "tk": its id is declared at \S*a\.flow\.yaml:1:5 and at \S*b\.flow\.yaml:2:5; flow ids must be unique .*: give each of these flows its own id$/m,
        );
      },
    );
  },
});

Deno.test({
  name:
    "daemon --serve: a flow file that breaks keeps its schedule in GET /api/schedules with the error (200), a new broken one is a row of its own, a fix is said; an env: variable unset here is a warning at start and when added",
  sanitizeResources: false,
  async fn() {
    const unset = "FLOWSTATE_TEST_SURELY_UNSET_VARIABLE";
    const envFlow = (id: string) =>
      `id: ${id}\nschedule: "0 0 1 1 *"\nenv: [${unset}]\nnodes:\n` +
      `  - { id: say, type: log, with: { message: "\${{ env.${unset} }}" } }\n`;
    await withDaemonProject(
      "flowstate-daemon-serve-broken-",
      {
        "flowstate.yaml": "stores:\n  default: { plugin: memory }\nserve: { port: 0 }\n" +
          "flows: [./flows]\njobs:\n  retention: { enabled: false }\n" +
          '  gc: { schedule: "0 0 1 1 *" }\n',
        "flows/tk.flow.yaml": flow("tk", "fine", "0 0 1 1 *"),
        "flows/envy.flow.yaml": envFlow("envy"),
      },
      ["--serve"],
      async ({ dir, child, err }) => {
        const serving = await within(err.next(/^Serving http:\/\/127\.0\.0\.1:\d+\/$/), "serving");
        const base = serving.slice("Serving ".length);
        // Said once at the start: every tick of it would fail.
        const warnStart = new RegExp(
          `^warning: \\[flow:envy\\] \\S*envy\\.flow\\.yaml:3:\\d+: env ${unset} is listed in env: but not set: .*every tick of this schedule fails until it is set\\)$`,
        );
        await within(err.next(warnStart), "the env warning at start");
        type Row = { id: string; cron: string | null; file?: string; error?: string };
        const schedules = async () => {
          const response = await fetch(new URL("api/schedules", base), { signal: hangSignal() });
          assert.equal(response.status, 200);
          return await response.json() as Row[];
        };
        assert.deepEqual((await schedules()).filter((r) => r.error !== undefined), []);

        // tk breaks: the daemon keeps its schedule, and the API shows it with why.
        await Deno.writeTextFile(
          join(dir, "flows", "tk.flow.yaml"),
          flow("tk", "fine", "0 0 1 1 *").replace("type: log", "type: lgo"),
        );
        await within(
          err.next(/^error: flow file \S*tk\.flow\.yaml changed but cannot be used \(its schedule/),
          "the break said",
        );
        const broken = (await schedules()).find((r) => r.id === "flow:tk");
        assert.equal(broken?.cron, "0 0 1 1 *");
        assert.equal(broken?.file, "flows/tk.flow.yaml");
        assert.match(broken?.error ?? "", /unknown node type "lgo"/);
        assert.ok((await schedules()).some((r) => r.id === "job:gc" && r.error === undefined));

        // A new file with an error: said as new, and a row of its own.
        await Deno.writeTextFile(join(dir, "flows", "nw.flow.yaml"), "id: nw\nnodes: [\n");
        await within(
          err.next(
            /^error: flow file \S*nw\.flow\.yaml cannot be used \(it schedules and triggers nothing until it can\): /,
          ),
          "the new broken file said",
        );
        const row = (await schedules()).find((r) => r.id === "file:flows/nw.flow.yaml");
        assert.equal(row?.cron, null);
        assert.ok(row?.error, JSON.stringify(row));

        // Fixed: said once, and no error any more.
        await Deno.writeTextFile(
          join(dir, "flows", "tk.flow.yaml"),
          flow("tk", "fine", "0 0 1 1 *"),
        );
        await within(
          err.next(/^\[flow:tk\] flow file \S*tk\.flow\.yaml can be used again$/),
          "the fix said",
        );
        assert.equal((await schedules()).find((r) => r.id === "flow:tk")?.error, undefined);

        // A schedule added whose env: variable is unset: warned when added.
        await Deno.writeTextFile(join(dir, "flows", "envtwo.flow.yaml"), envFlow("envtwo"));
        await within(
          err.next(
            new RegExp(
              `^warning: \\[flow:envtwo\\] \\S*envtwo\\.flow\\.yaml:3:\\d+: env ${unset} `,
            ),
          ),
          "the env warning when added",
        );
        child.kill("SIGTERM");
        assert.equal(
          (await exitOf(child, () => err.lines.join("\n"))).code,
          0,
          err.lines.join("\n"),
        );
        await err.done;
        assert.equal(err.lines.filter((l) => warnStart.test(l)).length, 1, err.lines.join("\n"));
        assert.equal(
          err.lines.filter((l) => /can be used again/.test(l)).length,
          1,
          err.lines.join("\n"),
        );
      },
    );
  },
});
