/**
 * `flowstate daemon` reads `flowstate.yaml` again when it changes, as it does
 * its flow files: job schedules and settings apply without a restart, an edit
 * that cannot be used is one located error and changes nothing until fixed,
 * a setting that takes a restart is said, a schedule whose cron did not change
 * keeps its running tick; off a terminal, SIGHUP reads the files again.
 * Through the CLI.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type DaemonProject, withDaemonProject, within } from "./fixtures/daemon_process.ts";
import { exitOf, hangSignal } from "./_deadline.ts";

/** Bound of every wait here: a loaded machine is slow, never a failure before then. */
const WAIT_MS = 90_000;

const config = (jobs: string, extra = "") =>
  `stores:\n  default: { plugin: memory }\n${extra}jobs:\n  retention: { enabled: false }\n${jobs}`;

/** A project with `flowstate.yaml` written, a daemon started in it, and its output as lines. */
function withDaemon(
  yaml: string,
  args: string[],
  body: (d: DaemonProject & { edit: (yaml: string) => Promise<void> }) => Promise<void>,
  files: Record<string, string> = {},
): Promise<void> {
  return withDaemonProject(
    "flowstate-daemon-config-",
    { ...files, "flowstate.yaml": yaml },
    args,
    (d) => body({ ...d, edit: (text) => Deno.writeTextFile(join(d.dir, "flowstate.yaml"), text) }),
  );
}

/** The first line of `lines` after index `from` that matches `pattern`, as it comes. */
function after(
  stream: DaemonProject["err"],
  from: number,
  pattern: RegExp,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const look = () => {
      const at = stream.lines.findIndex((l, i) => i > from && pattern.test(l));
      if (at >= 0) resolve(at);
      else setTimeout(look, 50);
    };
    stream.done.then(() =>
      reject(new Error(`ended before ${pattern}:\n${stream.lines.join("\n")}`))
    );
    look();
  });
}

Deno.test({
  name:
    "daemon: an edited flowstate.yaml applies job schedules without a restart; an invalid edit is one located error and changes nothing until fixed; a restart-only setting is said",
  sanitizeResources: false,
  async fn() {
    await withDaemon(
      config('  gc: { schedule: "0 0 1 1 *" }\n'),
      [],
      async ({ child, out, err, edit }) => {
        await within(out.next(/^Scheduler started .* with 1 schedule:$/), "the start", WAIT_MS);

        // A schedule changed: it ticks on its new cron, now.
        await edit(config('  gc: { schedule: "* * * * * *" }\n'));
        await within(
          err.next(
            /^\[job:gc\] schedule changed from 0 0 1 1 \* \(UTC\) to \* \* \* \* \* \* \(UTC\): next /,
          ),
          "the change said",
          WAIT_MS,
        );
        await within(
          out.next(/^Config flowstate\.yaml changed: applied jobs$/),
          "applied",
          WAIT_MS,
        );
        const ran = await within(after(out, -1, / job:gc succeeded /), "a gc tick", WAIT_MS);

        // Invalid YAML: said once, where, and the schedule goes on.
        await edit(config('  gc: { schedule: "* * * * * *"\n'));
        const yamlError = await within(
          after(
            err,
            -1,
            /^error: Cannot apply the edit of flowstate\.yaml: flowstate\.yaml:\d+:\d+: invalid YAML: .*Nothing of it applies, and the schedules go on as they were: fix the file and save it to apply it$/,
          ),
          "the YAML error",
          WAIT_MS,
        );
        const ranAfterYamlError = await within(
          after(out, out.lines.length - 1, / job:gc succeeded /),
          "a gc tick after the YAML error",
          WAIT_MS,
        );
        assert.ok(ranAfterYamlError > ran);

        // A field the schema refuses: located, with what is expected.
        await edit(config('  gc: { schedule: "* * * * * *", overlap: sometimes }\n'));
        await within(
          after(
            err,
            yamlError,
            /^error: Cannot apply the edit of flowstate\.yaml: flowstate\.yaml:5:\d+: jobs\.gc\.overlap: .*fix the file and save it to apply it$/,
          ),
          "the schema error",
          WAIT_MS,
        );
        await within(
          after(out, out.lines.length - 1, / job:gc succeeded /),
          "a gc tick after the schema error",
          WAIT_MS,
        );

        // Fixed, with a job removed and a setting that takes a restart.
        await edit(config("  gc: { enabled: false }\n", "serve: { port: 8123 }\n"));
        await within(
          err.next(/^\[job:gc\] schedule removed \(the config no longer schedules this job\)/),
          "the removal said",
          WAIT_MS,
        );
        await within(
          err.next(
            /^warning: flowstate\.yaml: serve changed: restart the daemon to apply it \(it goes on with the values it started with\)$/,
          ),
          "the restart-only setting said",
          WAIT_MS,
        );
        child.kill("SIGTERM");
        assert.equal(
          (await exitOf(child, () => err.lines.join("\n"))).code,
          0,
          err.lines.join("\n"),
        );
        await err.done;
        const errors = err.lines.filter((l) => l.startsWith("error:"));
        assert.equal(errors.length, 2, `each bad edit said once:\n${errors.join("\n")}`);
      },
    );
  },
});

/**
 * A job that appends `start <tag>` to gate.log, then waits for a file named
 * `open` beside it (or its cancel), then appends `end`.
 */
const GATE_JOB = `
const schema = { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } };
export default {
  name: "gate",
  optionsSchema: schema,
  async run(ctx, options) {
    const log = new URL("gate.log", import.meta.url);
    await Deno.writeTextFile(log, "start " + options.tag + "\\n", { append: true });
    while (!ctx.signal.aborted) {
      try {
        await Deno.stat(new URL("open", import.meta.url));
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    await Deno.writeTextFile(log, "end\\n", { append: true });
    return {};
  },
};
`;

Deno.test({
  name:
    "daemon: a job whose cron an edit of flowstate.yaml leaves alone keeps its running tick (no second run beside it); its next runs take the new options",
  sanitizeResources: false,
  async fn() {
    const gate = (tag: string) =>
      config(
        `  gc: { enabled: false }\n  gate: { module: ./gate.js, schedule: "* * * * * *", options: { tag: ${tag} } }\n`,
      );
    await withDaemon(gate("one"), ["--json"], async ({ dir, child, out, err, edit }) => {
      const log = () => Deno.readTextFile(join(dir, "gate.log")).catch(() => "");
      const starts = async () => (await log()).split("\n").filter((l) => l.startsWith("start"));
      await within(
        after(out, -1, /"type":"tick\.start","scheduleId":"job:gate"/),
        "a tick",
        WAIT_MS,
      );

      await edit(gate("two"));
      const changed = await within(
        after(
          out,
          -1,
          /"type":"log","scheduleId":"job:gate","message":"job settings changed in the config: its next runs use them"/,
        ),
        "the change said",
        WAIT_MS,
      );
      // A tick after the edit finds the first run still running here: skipped, not run beside it.
      await within(
        after(out, changed, /"type":"tick\.skip","scheduleId":"job:gate".*"reason":"overlap"/),
        "a tick skipped after the edit",
        WAIT_MS,
      );
      assert.deepEqual(await starts(), ["start one"], "one run so far");

      await Deno.writeTextFile(join(dir, "open"), "");
      await within(
        after(out, changed, /"type":"tick\.end","scheduleId":"job:gate".*"status":"succeeded"/),
        "the first run's end",
        WAIT_MS,
      );
      await within(
        new Promise<void>((resolve) => {
          const look = async () => {
            if ((await starts()).includes("start two")) resolve();
            else setTimeout(look, 50);
          };
          look();
        }),
        "a run with the new options",
        WAIT_MS,
      );
      child.kill("SIGTERM");
      assert.equal((await exitOf(child, () => err.lines.join("\n"))).code, 0, err.lines.join("\n"));
      await out.done;
      // Never two runs at once: each start is followed by its end before the next start.
      const lines = (await log()).split("\n").filter((l) => l !== "");
      for (let i = 1; i < lines.length; i++) {
        assert.ok(
          !(lines[i].startsWith("start") && lines[i - 1].startsWith("start")),
          `two runs at once: ${lines.join(", ")}`,
        );
      }
    }, { "gate.js": GATE_JOB });
  },
});

Deno.test({
  name:
    "daemon off a terminal: SIGHUP reads flowstate.yaml again (an error said again) and keeps running; SIGTERM then stops it with exit 0",
  sanitizeResources: false,
  async fn() {
    await withDaemon(
      config('  gc: { schedule: "0 0 1 1 *" }\n'),
      [],
      async ({ child, out, err, edit }) => {
        await within(out.next(/^Scheduler started /), "the start", WAIT_MS);
        child.kill("SIGHUP");
        await within(
          out.next(/^Received SIGHUP: reading the config and flow files again$/),
          "the signal said",
          WAIT_MS,
        );
        await within(
          out.next(/^Config flowstate\.yaml read again: nothing changed$/),
          "the reread said",
          WAIT_MS,
        );
        await edit(config("  gc: { schedule: nope }\n"));
        const first = await within(
          after(err, -1, /^error: Cannot apply the edit of flowstate\.yaml: flowstate\.yaml:5:/),
          "the error",
          WAIT_MS,
        );
        // Said once by itself; asked again, said again.
        child.kill("SIGHUP");
        await within(
          after(err, first, /^error: Cannot apply the edit of flowstate\.yaml: flowstate\.yaml:5:/),
          "the error said again on SIGHUP",
          WAIT_MS,
        );
        child.kill("SIGTERM");
        const status = await exitOf(child);
        await out.done;
        assert.equal(status.code, 0, err.lines.join("\n"));
        assert.ok(out.lines.includes("Received SIGTERM: stopping"), out.lines.join("\n"));
        assert.equal(out.lines.at(-1), "Stopped");
      },
    );
  },
});

Deno.test({
  name:
    "daemon: a flow file added that cannot be used is one located error (not one per look), and runs once fixed",
  sanitizeResources: false,
  async fn() {
    const flow = (id: string, type: string) =>
      `id: ${id}\nschedule: "* * * * * *"\nnodes:\n  - { id: say, type: ${type}, with: { message: hi } }\n`;
    await withDaemon(
      config("  gc: { enabled: false }\n", "flows: [./flows]\n"),
      [],
      async ({ dir, child, err }) => {
        await within(err.next(/^\[flow:good\] say: hi$/), "a run of the good flow", WAIT_MS);
        await Deno.writeTextFile(join(dir, "flows", "bad.flow.yaml"), flow("bad", "lgo"));
        const said = await within(
          after(
            err,
            -1,
            /^error: .*bad\.flow\.yaml:4:\d+: nodes\[0\]\.type: unknown node type "lgo"/,
          ),
          "the error",
          WAIT_MS,
        );
        // The files are looked at again before each tick of the good flow: three of them.
        let from = said;
        for (let i = 0; i < 3; i++) {
          from = await within(after(err, from, /^\[flow:good\] say: hi$/), "a good run", WAIT_MS);
        }
        await Deno.writeTextFile(join(dir, "flows", "bad.flow.yaml"), flow("bad", "log"));
        await within(after(err, said, /^\[flow:bad\] say: hi$/), "a run once fixed", WAIT_MS);
        child.kill("SIGTERM");
        assert.equal(
          (await exitOf(child, () => err.lines.join("\n"))).code,
          0,
          err.lines.join("\n"),
        );
        await err.done;
        const errors = err.lines.filter((l) => l.startsWith("error:"));
        assert.equal(errors.length, 1, errors.join("\n"));
      },
      { "flows/good.flow.yaml": flow("good", "log") },
    );
  },
});

Deno.test({
  name:
    "daemon: flows: added to flowstate.yaml runs that folder's schedules at once (finding flows by id is said to take a restart); removed, they stop",
  sanitizeResources: false,
  async fn() {
    const flow = 'id: tk\nschedule: "* * * * * *"\nnodes:\n' +
      "  - { id: say, type: log, with: { message: hi } }\n";
    await withDaemon(
      config("  gc: { enabled: false }\n"),
      [],
      async ({ child, out, err, edit }) => {
        await within(out.next(/^Scheduler started .* with 0 schedules/), "the start", WAIT_MS);
        await edit(config("  gc: { enabled: false }\n", "flows: [./flows]\n"));
        await within(
          err.next(/^\[flow:tk\] schedule added: \* \* \* \* \* \* \(UTC\), next /),
          "the schedule added",
          WAIT_MS,
        );
        await within(err.next(/^\[flow:tk\] say: hi$/), "a run", WAIT_MS);
        await within(
          err.next(
            /^warning: flowstate\.yaml: flows \(for finding a flow by id: queued runs, sub-flows\) changed: restart the daemon to apply it/,
          ),
          "what takes a restart said",
          WAIT_MS,
        );
        await edit(config("  gc: { enabled: false }\n"));
        await within(
          err.next(/^\[flow:tk\] schedule removed \(.*no longer under flows:\): no more ticks$/),
          "the schedule removed",
          WAIT_MS,
        );
        child.kill("SIGTERM");
        assert.equal(
          (await exitOf(child, () => err.lines.join("\n"))).code,
          0,
          err.lines.join("\n"),
        );
        await err.done;
        assert.deepEqual(err.lines.filter((l) => l.startsWith("error")), []);
      },
      { "flows/tk.flow.yaml": flow },
    );
  },
});

Deno.test({
  name:
    "daemon --serve: the API's jobs and schedules are the config as the daemon applied it after an edit",
  sanitizeResources: false,
  async fn() {
    await withDaemon(
      config('  gc: { schedule: "0 0 1 1 *" }\n', "serve: { port: 0 }\n"),
      ["--serve"],
      async ({ child, out, err, edit }) => {
        const serving = await within(
          after(err, -1, /^Serving http:\/\/127\.0\.0\.1:\d+\/$/),
          "serving",
          WAIT_MS,
        );
        const base = err.lines[serving].slice("Serving ".length);
        const api = async (path: string) => {
          const response = await fetch(new URL(path, base), { signal: hangSignal() });
          assert.equal(response.status, 200, path);
          return await response.json();
        };
        const gcOf = async () => ({
          job: (await api("api/jobs") as { name: string; schedule: string | null }[])
            .find((j) => j.name === "gc")?.schedule,
          schedule: (await api("api/schedules") as { id: string; cron: string }[])
            .find((s) => s.id === "job:gc")?.cron,
        });
        assert.deepEqual(await gcOf(), { job: "0 0 1 1 *", schedule: "0 0 1 1 *" });
        await edit(config('  gc: { schedule: "0 0 2 1 *" }\n', "serve: { port: 0 }\n"));
        await within(
          out.next(/^Config flowstate\.yaml changed: applied jobs$/),
          "applied",
          WAIT_MS,
        );
        assert.deepEqual(await gcOf(), { job: "0 0 2 1 *", schedule: "0 0 2 1 *" });
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
  name:
    "daemon: a restart-only setting changed then changed back warns once, and says no restart is needed; a fixed config is said to be usable again",
  sanitizeResources: false,
  async fn() {
    const started = config("  gc: { enabled: false }\n", "serve: { port: 8123 }\n");
    await withDaemon(started, [], async ({ child, out, err, edit }) => {
      await within(out.next(/^Scheduler started /), "the start", WAIT_MS);
      await edit(config("  gc: { enabled: false }\n", "serve: { port: 8124 }\n"));
      await within(
        err.next(/^warning: flowstate\.yaml: serve changed: restart the daemon to apply it/),
        "the restart-only setting said",
        WAIT_MS,
      );
      // Back to what the daemon runs with: no warning, and said so.
      await edit(started);
      await within(
        out.next(
          /^Config flowstate\.yaml: serve back to the values the daemon runs with: no restart needed for it any more$/,
        ),
        "no restart needed",
        WAIT_MS,
      );

      // Broken, then fixed back to the config in use: the fix is said.
      await edit(config("  gc: { enabled: false\n", "serve: { port: 8123 }\n"));
      await within(
        err.next(/^error: Cannot apply the edit of flowstate\.yaml: /),
        "the error",
        WAIT_MS,
      );
      await edit(started);
      await within(
        out.next(
          /^Config flowstate\.yaml can be used again: nothing changed from the config in use$/,
        ),
        "the fix said",
        WAIT_MS,
      );
      // Broken again, then fixed with a change: what applied is said.
      await edit(config("  gc: { enabled: false\n", "serve: { port: 8123 }\n"));
      await within(
        after(err, err.lines.findIndex((l) => l.startsWith("error:")), /^error: Cannot apply/),
        "the second error",
        WAIT_MS,
      );
      await edit(config('  gc: { schedule: "0 0 1 1 *" }\n', "serve: { port: 8123 }\n"));
      await within(
        out.next(/^Config flowstate\.yaml can be used again: applied jobs$/),
        "the fix with a change said",
        WAIT_MS,
      );
      child.kill("SIGTERM");
      assert.equal((await exitOf(child, () => err.lines.join("\n"))).code, 0, err.lines.join("\n"));
      await err.done;
      const warnings = err.lines.filter((l) => l.startsWith("warning:"));
      assert.equal(warnings.length, 1, warnings.join("\n"));
    });
  },
});
