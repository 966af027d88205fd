import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ConfigError } from "../errors.ts";
import { daemonCommand } from "./daemon.ts";
import { UsageError } from "./input.ts";
import { type JobListing, jobsList, jobsRun, parseOptionPairs } from "./jobs.ts";
import { waitUntil } from "../../tests/_deadline.ts";

const JOB_TS = pathToFileURL(join(import.meta.dirname!, "../jobs/job.ts")).href;

/** A job module: options { count: number, label?: string }; fails when count < 0. */
const COUNT_JOB = `
import { defineJob } from "${JOB_TS}";
export default defineJob({
  name: "count",
  description: "counts to a number",
  defaultSchedule: "0 4 * * *",
  defaults: { count: 1 },
  optionsSchema: {
    "~standard": {
      version: 1,
      vendor: "test",
      validate: (v) => typeof v.count === "number"
        ? { value: v }
        : { issues: [{ message: "expected a number", path: ["count"] }] },
    },
  },
  run(ctx, o) {
    if (o.count < 0) throw new Error("cannot count below zero");
    ctx.log("counting");
    return { count: o.count, label: o.label ?? null, dryRun: ctx.dryRun };
  },
});
`;

interface Output {
  stdout: string[];
  stderr: string[];
}

async function capture<T>(fn: (out: Output) => Promise<T>): Promise<{ result: T } & Output> {
  const out: Output = { stdout: [], stderr: [] };
  const { log, error } = console;
  console.log = (...args: unknown[]) => out.stdout.push(args.join(" "));
  console.error = (...args: unknown[]) => out.stderr.push(args.join(" "));
  try {
    return { result: await fn(out), ...out };
  } finally {
    console.log = log;
    console.error = error;
  }
}

async function withProject(
  jobsYaml: string,
  fn: (config: string, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-jobs-cli-" });
  try {
    await Deno.writeTextFile(join(dir, "count.ts"), COUNT_JOB);
    const config = join(dir, "flowstate.yaml");
    await Deno.writeTextFile(
      config,
      `stores:\n  default: { plugin: sqlite, path: state.db }\njobs:\n${jobsYaml}`,
    );
    await fn(config, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("parseOptionPairs() reads JSON values and falls back to strings", () => {
  assert.deepEqual(
    parseOptionPairs(["n=3", "flag=true", "maxAge=30d", 'list=["a"]', 'obj={"x":1}', "e="]),
    { n: 3, flag: true, maxAge: "30d", list: ["a"], obj: { x: 1 }, e: "" },
  );
  assert.deepEqual(parseOptionPairs(["url=a=b"]), { url: "a=b" });
  assert.throws(() => parseOptionPairs(["oops"]), UsageError);
  assert.throws(() => parseOptionPairs(["=3"]), /the name before "=" is empty/);
  assert.throws(() => parseOptionPairs(["a=1", "a=2"]), /option "a" is given twice/);
});

Deno.test("jobsRun() runs a configured job with config options under command-line ones", async () => {
  await withProject(
    "  counter: { module: ./count.ts, options: { count: 2, label: from-config } }\n",
    async (config) => {
      const { result, stdout, stderr } = await capture(() =>
        jobsRun("counter", { option: ["label=from-cli"] }, { config })
      );
      assert.equal(result, 0);
      assert.match(stdout.join("\n"), /^job: {6}counter\nrun: {6}\w{20}\nstatus: {3}succeeded\n/);
      assert.match(
        stdout.join("\n"),
        /result:\n {2}count: 2\n {2}label: "from-cli"\n {2}dryRun: false/,
      );
      assert.deepEqual(stderr, ["[counter] counting"]);

      const json = await capture(() =>
        jobsRun("counter", { option: ["count=5"], json: true, dryRun: true, quiet: true }, {
          config,
        })
      );
      assert.equal(json.result, 0);
      assert.deepEqual(json.stderr, []);
      const record = JSON.parse(json.stdout.join("\n"));
      assert.equal(record.flowId, "job:counter");
      assert.deepEqual(record.outputs, { count: 5, label: "from-config", dryRun: true });
      assert.deepEqual(record.inputs, { count: 5, label: "from-config" });
    },
  );
});

Deno.test("jobsRun() exits 1 when the job fails, and refuses unknown names and bad options", async () => {
  await withProject("  counter: { module: ./count.ts }\n", async (config) => {
    const failed = await capture(() => jobsRun("counter", { option: ["count=-1"] }, { config }));
    assert.equal(failed.result, 1);
    assert.match(
      failed.stdout.join("\n"),
      /status: {3}failed\nduration: .*\nerror: {4}cannot count below zero/,
    );

    await assert.rejects(
      () => capture(() => jobsRun("countr", {}, { config })),
      (err) => {
        assert.ok(err instanceof UsageError);
        assert.match(
          err.message,
          /^Unknown job "countr" \(did you mean "counter"\?\): the jobs are /,
        );
        return true;
      },
    );
    await assert.rejects(
      () => capture(() => jobsRun("counter", { option: ["count=many"] }, { config })),
      (err) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.match(err.message, /Cannot run job "counter"/);
        assert.match(err.message, /count/);
        return true;
      },
    );
  });
});

Deno.test("jobsList() shows schedules, time zones, last and next runs", async () => {
  await withProject(
    [
      "  counter: { module: ./count.ts, schedule: '*/5 * * * *', timezone: Europe/Paris }",
      "  manual: { module: ./count.ts, enabled: false }",
      "  retention: { enabled: false }",
      "",
    ].join("\n"),
    async (config) => {
      await capture(() => jobsRun("counter", { quiet: true }, { config }));
      const before = Date.now();
      const { result, stdout } = await capture(() => jobsList({ json: true }, { config }));
      const after = Date.now();
      const jobs = JSON.parse(stdout.join("\n")) as JobListing[];
      const byName = new Map(jobs.map((j) => [j.name, j]));
      const counter = byName.get("counter")!;
      assert.equal(counter.builtin, false);
      assert.equal(counter.module, "./count.ts");
      assert.equal(counter.description, "counts to a number");
      assert.equal(counter.scheduled, true);
      assert.equal(counter.schedule, "*/5 * * * *");
      assert.equal(counter.timezone, "Europe/Paris");
      assert.equal(counter.lastRun?.status, "succeeded");
      // The next 5-minute tick after the moment jobsList() ran (read between before and after:
      // reading the clock only after the call fails when a tick passes meanwhile).
      assert.equal(counter.nextRun! % (5 * 60_000), 0);
      assert.ok(counter.nextRun! > before && counter.nextRun! <= after + 5 * 60_000);
      const manual = byName.get("manual")!;
      assert.deepEqual(
        [manual.enabled, manual.scheduled, manual.schedule, manual.nextRun, manual.lastRun],
        [false, false, "0 4 * * *", null, null],
      );
      // Built-ins are listed: gc is scheduled by default, retention is disabled here.
      assert.ok(byName.has("backup"));
      const gc = byName.get("gc")!;
      if (gc.error === null) {
        assert.equal(gc.scheduled, true);
        assert.equal(gc.schedule, "30 3 * * *");
        assert.equal(gc.timezone, "UTC");
      }
      assert.equal(byName.get("retention")!.scheduled, false);
      assert.equal(result, jobs.some((j) => j.error !== null) ? 1 : 0);

      const table = await capture(() => jobsList({}, { config }));
      const header = table.stdout[0];
      assert.match(header, /^NAME +SCHEDULE +TIMEZONE +ENABLED +LAST RUN +NEXT RUN +DESCRIPTION$/);
      const row = table.stdout.find((l) => l.startsWith("counter "))!;
      assert.match(row, /^counter +\*\/5 \* \* \* \* +Europe\/Paris +yes +succeeded \d{4}-/);
      assert.match(
        table.stdout.find((l) => l.startsWith("manual "))!,
        /\(0 4 \* \* \*\) +- +no +- +- +counts/,
      );
    },
  );
});

Deno.test("daemonCommand() starts the scheduler, and stops cleanly when asked", async () => {
  await withProject(
    "  counter: { module: ./count.ts, schedule: '0 4 1 1 *' }\n  retention: { enabled: false }\n  gc: { enabled: false }\n",
    async (config) => {
      const stop = new AbortController();
      const { result, stdout } = await capture(async (out) => {
        const running = daemonCommand({ runnerId: "test-runner" }, { config }, {
          signal: stop.signal,
        });
        // Stop once it has started: it prints the schedules when it starts.
        const started = Promise.race([
          running,
          (async () => {
            await waitUntil("the daemon to print its schedules", () => out.stdout.length >= 2, {
              every: 5,
              details: () => JSON.stringify(out),
            });
          })(),
        ]);
        await started;
        stop.abort();
        return await running;
      });
      assert.equal(result, 0);
      assert.equal(stdout[0], "Scheduler started (runner test-runner) with 1 schedule:");
      assert.match(
        stdout[1],
        /^ {2}job:counter {2}0 4 1 1 \* \(UTC\) {2}next \d{4}-01-01T04:00:00\.000Z$/,
      );
      assert.deepEqual(stdout.slice(2), ["Received stop request: stopping", "Stopped"]);
    },
  );
});

Deno.test("daemonCommand() refuses an invalid config or grace period (exit 2 errors)", async () => {
  await withProject(
    "  counter: { module: ./count.ts, options: { count: x } }\n",
    async (config) => {
      await assert.rejects(() => capture(() => daemonCommand({}, { config })), ConfigError);
      await assert.rejects(
        () => capture(() => daemonCommand({ grace: "soon" }, { config })),
        (err) => err instanceof UsageError && /--grace/.test(err.message),
      );
    },
  );
});
