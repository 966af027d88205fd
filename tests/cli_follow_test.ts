/**
 * Following a run from the terminal (subprocesses): `runs show <id> --follow`
 * of a run a `flowstate worker` process runs — its events print before the
 * run ends (a gated flow the test releases step by step, no timing), the
 * exit code of its status, `--json` lines, a queued run, an ended, archived
 * or unknown one, SIGTERM (stops following, not the run), `--timeout`, an
 * attempt lost with its worker and followed into the next one, and
 * `enqueue --wait` / `--follow` (with `--key`). On SQLite, and on PostgreSQL
 * when FLOWSTATE_TEST_POSTGRES_URL is set.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, cliOk, type ProjectCli, runCli } from "./_cli_sandbox.ts";
import { gatedFlow } from "./_gated_flow.ts";
import { Watched } from "./_watched.ts";
import { waitUntil } from "./_deadline.ts";

const PG_URL = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL") || undefined;

interface Project {
  dir: string;
  run: ProjectCli;
  /** `flowstate <args>` as a child process whose output is watched. */
  spawn(...args: string[]): Watched;
  /** The gate files of the gated flow, and the inputs that name them. */
  gates(name: string): { first: string; second: string; inputs: string[] };
}

const BACKENDS: { name: string; stores: () => string; ignore: boolean }[] = [
  { name: "sqlite", stores: () => "", ignore: false },
  {
    name: "postgres",
    stores: () =>
      `stores:\n  main: { plugin: postgres, url: "${PG_URL}", table: follow_${
        crypto.randomUUID().replaceAll("-", "").slice(0, 12)
      } }\n`,
    ignore: PG_URL === undefined,
  },
];

async function withProject(stores: string, fn: (p: Project) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-follow-" });
  try {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.mkdir(join(dir, "gates"));
    await Deno.writeTextFile(join(dir, "flows", "gated.flow.yaml"), gatedFlow(dir, 1));
    await Deno.writeTextFile(
      join(dir, "flows", "boom.flow.yaml"),
      "id: boom\nnodes:\n  - { id: f, type: fail, with: { message: boom } }\n",
    );
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), `${stores}flows: [./flows]\n`);
    const home = join(dir, "home");
    await fn({
      dir,
      run: (...args) => runCli(dir, args, { home }),
      spawn: (...args) => new Watched(cliCommand(dir, args, { home })),
      gates: (name) => {
        const first = join(dir, "gates", `${name}-1`);
        const second = join(dir, "gates", `${name}-2`);
        return { first, second, inputs: ["-i", `first=${first}`, "-i", `second=${second}`] };
      },
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const open = (path: string) => Deno.writeTextFile(path, "");

/** A worker process, its runs' ends on stdout (`--json`); stopped and awaited on dispose. */
function worker(p: Project, ...args: string[]): Watched {
  return p.spawn("worker", "--json", "--poll", "50ms", ...args);
}

for (const backend of BACKENDS) {
  Deno.test({
    name:
      `cli follow (${backend.name}): events print as they are recorded, then the outcome; exit 0`,
    ignore: backend.ignore,
    async fn() {
      await withProject(backend.stores(), async (p) => {
        const g = p.gates("a");
        const id = (await cliOk(p.run, "enqueue", "gated", ...g.inputs)).trim();
        await using follower = p.spawn("runs", "show", id, "--follow");
        // Queued, no worker yet: it says it waits, and for what.
        await follower.until(/is queued, waiting for a worker to claim it/, "stderr");
        await using w = worker(p);
        // The gate's log line is recorded while the run is still running (the gate holds it).
        await follower.until(/\+\S+ +first: log: waiting for /);
        assert.doesNotMatch(follower.stdout, /middle: log: between/);
        await open(g.first);
        await follower.until(/middle: log: between/);
        assert.doesNotMatch(follower.stdout, /last: log: done/);
        await open(g.second);
        assert.equal(await follower.code(), 0, follower.stderr);
        assert.match(follower.stdout, /last: log: done/);
        assert.match(follower.stdout, new RegExp(`Run ${id} \\(gated\\) succeeded in `));
        w.kill("SIGTERM");
        assert.equal(await w.code(), 0);
      });
    },
  });

  Deno.test({
    name: `cli follow (${backend.name}): --json prints one JSON object a line, the run last`,
    ignore: backend.ignore,
    async fn() {
      await withProject(backend.stores(), async (p) => {
        const g = p.gates("j");
        await using w = worker(p);
        await using follower = p.spawn("enqueue", "gated", ...g.inputs, "--follow", "--json");
        await follower.until(/"message":"waiting for [^"]*j-1"/);
        await open(g.first);
        await open(g.second);
        assert.equal(await follower.code(), 0, follower.stderr);
        const lines = follower.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
        const { runId, existing } = lines[0];
        assert.equal(existing, false);
        const last = lines.at(-1);
        assert.deepEqual(Object.keys(last), ["run"]);
        assert.equal(last.run.id, runId);
        assert.equal(last.run.status, "succeeded");
        const events = lines.filter((l) => "event" in l);
        // Every event once, in order: indexes 0, 1, 2, …
        assert.deepEqual(events.map((l) => l.index), events.map((_, i) => i));
        for (const l of events) assert.deepEqual(Object.keys(l).sort(), ["event", "index"]);
        assert.equal(events[0].event.type, "run.start");
        assert.equal(events.at(-1).event.type, "run.end");
        const logs = events.filter((l) => l.event.type === "node.log").map((l) => l.event);
        assert.deepEqual(logs.map((e) => [e.node, e.level]).filter(([n]) => n === "middle"), [[
          "middle",
          "info",
        ]]);
        // The same run followed again once ended: the same events, at once, the same last line.
        const again = await p.run("runs", "show", runId, "--follow", "--json");
        assert.equal(again.code, 0, again.stderr);
        const againLines = again.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
        assert.deepEqual(againLines.filter((l) => "event" in l), events);
        assert.deepEqual(againLines.at(-1), last);
        w.kill("SIGTERM");
        await w.code();
      });
    },
  });

  Deno.test({
    name:
      `cli follow (${backend.name}): runs cancel of a run a worker process holds in a gate that ignores its signal ends it cancelled; the worker goes on`,
    ignore: backend.ignore,
    async fn() {
      await withProject(backend.stores(), async (p) => {
        const g = p.gates("x");
        await using w = worker(p);
        await using follower = p.spawn("enqueue", "gated", ...g.inputs, "--follow", "--json");
        // The gate holds the run (its gates are never opened; it never looks at ctx.signal).
        await follower.until(/"message":"waiting for [^"]*x-1"/);
        const { runId } = JSON.parse(follower.stdout.split("\n")[0]);
        const cancel = await cliOk(p.run, "runs", "cancel", runId);
        // A worker starved on a loaded machine may not have written a heartbeat for two
        // intervals (10 s): the request then says so, and still that a live worker stops it.
        assert.match(
          cancel,
          /^Cancel requested for run \w+ \(gated\)(: it stops within a second|, but the worker running it has not answered since .*: if it is alive, the run stops within a second; .*)$/m,
        );
        // (documented: about a second, plus runs.abortGrace at most; code() has a hang guard)
        assert.equal(await follower.code(), 1, follower.stderr);
        const last = JSON.parse(follower.stdout.trimEnd().split("\n").at(-1)!);
        assert.equal(last.run.status, "cancelled");
        // The worker goes on: the next run succeeds.
        const n = p.gates("y");
        await open(n.first);
        await open(n.second);
        const next = await p.run("enqueue", "gated", ...n.inputs, "--wait");
        assert.equal(next.code, 0, next.stderr);
        assert.match(next.stdout, /\(gated\) succeeded in /);
        w.kill("SIGTERM");
        assert.equal(await w.code(), 0);
      });
    },
  });
}

Deno.test("cli follow: exit codes of failed and cancelled runs; enqueue --wait prints only the outcome", async () => {
  await withProject("", async (p) => {
    // Cancelled while followed (queued: no worker yet, so the cancel ends it at once).
    const g = p.gates("c");
    const cancelled = (await cliOk(p.run, "enqueue", "gated", ...g.inputs)).trim();
    await using follower = p.spawn("runs", "show", cancelled, "--follow");
    await follower.until(/is queued, waiting for a worker/, "stderr");
    await cliOk(p.run, "runs", "cancel", cancelled);
    assert.equal(await follower.code(), 1, follower.stderr);
    assert.match(follower.stdout, new RegExp(`Run ${cancelled} \\(gated\\) cancelled`));

    await using w = worker(p);
    const failed = await p.run("enqueue", "boom", "--wait");
    assert.equal(failed.code, 1, failed.stderr);
    const [id, ...rest] = failed.stdout.trimEnd().split("\n");
    assert.match(id, /^[0-9a-z]{20}$/);
    assert.equal(rest.length, 2, failed.stdout);
    assert.match(rest[0], new RegExp(`^Run ${id} \\(boom\\) failed in \\S+$`));
    assert.equal(rest[1], 'error:    node "f": boom');
    // Already ended: printed at once, with the same exit code.
    const ended = await p.run("runs", "show", id, "--follow");
    assert.equal(ended.code, 1, ended.stderr);
    assert.match(ended.stdout, /^status: {3}failed$/m);
    assert.match(ended.stdout, new RegExp(`Run ${id} \\(boom\\) failed in `));
    w.kill("SIGTERM");
    await w.code();
  });
});

Deno.test("cli follow: an archived run is shown with its exit code; an unknown one exits 1", async () => {
  await withProject("", async (p) => {
    await using w = worker(p);
    const failed = (await cliOk(p.run, "enqueue", "boom")).trim();
    const r = await p.run("runs", "show", failed, "--follow", "--json");
    assert.equal(r.code, 1);
    w.kill("SIGTERM");
    await w.code();
    await cliOk(p.run, "jobs", "run", "archive", "--option", "olderThan=0", "--quiet");
    assert.equal(
      (await p.run("runs", "show", failed, "--json")).stdout.includes('"archive"'),
      true,
    );
    const archived = await p.run("runs", "show", failed, "--follow");
    assert.equal(archived.code, 1, archived.stderr);
    assert.match(archived.stdout, /^archived: /m);
    assert.match(archived.stdout, new RegExp(`Run ${failed} \\(boom\\) failed`));
    const json = await p.run("runs", "show", failed, "--follow", "--json");
    assert.equal(json.code, 1);
    const last = JSON.parse(json.stdout.trimEnd().split("\n").at(-1)!);
    assert.equal(last.run.status, "failed");
    assert.equal(typeof last.archive, "string");

    const unknown = await p.run("runs", "show", "aaaaaaaaaaaaaaaaaaaa", "--follow");
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /error: Run aaaaaaaaaaaaaaaaaaaa not found in store "default"/);
    const bad = await p.run("runs", "show", "nope", "--follow", "--json");
    assert.equal(bad.code, 1);
    assert.equal(bad.stdout, "null\n");
    assert.match(bad.stderr, /run ids are 20 lowercase letters and digits/);
    const usage = await p.run("runs", "show", failed, "--timeout", "1s");
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--timeout bounds --follow/);
    const both = await p.run("enqueue", "boom", "--wait", "--follow");
    assert.equal(both.code, 2);
    assert.match(both.stderr, /Give --wait or --follow, not both/);
  });
});

Deno.test("cli follow: SIGTERM stops following, not the run; --timeout stops waiting with exit 124", async () => {
  await withProject("", async (p) => {
    const g = p.gates("s");
    // No worker yet: the run stays queued, and --timeout ends the wait.
    const id = (await cliOk(p.run, "enqueue", "gated", ...g.inputs)).trim();
    const waited = await p.run("runs", "show", id, "--follow", "--timeout", "100ms");
    assert.equal(waited.code, 124, waited.stderr);
    assert.match(
      waited.stderr,
      new RegExp(
        `Run ${id} is still queued after 100ms \\(--timeout\\): stopped waiting; the run goes on\\. ` +
          `Follow it again with: flowstate runs show ${id} --follow`,
      ),
    );
    // The follower first, the worker once it follows: its gate's log line then prints live
    // (`first: log: …`). A worker started first may reach the gate before a slow follower's first
    // read, which prints that line in the run's timeline instead (`first:` on a line of its own).
    await using follower = p.spawn("runs", "show", id, "--follow");
    await follower.until(/is queued, waiting for a worker to claim it/, "stderr");
    await using w = worker(p);
    await follower.until(/first: log: waiting for /);
    follower.kill("SIGTERM");
    assert.equal(await follower.code(), 143, follower.stderr);
    assert.match(
      follower.stderr,
      new RegExp(`Run ${id} is still running: it goes on\\. Follow it again with: `),
    );
    // The run went on: released, it succeeds.
    const shown = JSON.parse(await cliOk(p.run, "runs", "show", id, "--json"));
    assert.equal(shown.run.status, "running");
    await open(g.first);
    await open(g.second);
    const end = await p.run("runs", "show", id, "--follow");
    assert.equal(end.code, 0, end.stderr);
    w.kill("SIGTERM");
    await w.code();
  });
});

Deno.test("cli follow: enqueue --wait --key follows the existing run", async () => {
  await withProject("", async (p) => {
    const g = p.gates("k");
    const id = (await cliOk(p.run, "enqueue", "gated", ...g.inputs, "--key", "k")).trim();
    await using w = worker(p);
    await using waiter = p.spawn("enqueue", "gated", ...g.inputs, "--key", "k", "--wait");
    await waiter.until(new RegExp(`^${id}\n`));
    await waiter.until(/was already queued or running/, "stderr");
    await w.until(/"type":"claim"/);
    await open(g.first);
    await open(g.second);
    assert.equal(await waiter.code(), 0, waiter.stderr);
    // Only the outcome: no timeline.
    assert.deepEqual(waiter.stdout.trimEnd().split("\n").slice(0, 2), [
      id,
      `Run ${id} (gated) succeeded in ${waiter.stdout.split(" in ")[1].split("\n")[0]}`,
    ]);
    assert.doesNotMatch(waiter.stdout, /log: /);
    w.kill("SIGTERM");
    await w.code();
  });
});

/**
 * Stop `stalled` (SIGSTOP) until its claim on run `id` lapsed (its last
 * heartbeat is more than its lease ago), then resume it: a worker starved
 * past its lease on a loaded machine, made certain.
 */
async function stallPastLease(p: Project, stalled: Watched, id: string): Promise<void> {
  stalled.kill("SIGSTOP");
  try {
    const { heartbeatAt, queue } = JSON.parse(await cliOk(p.run, "runs", "show", id, "--json")).run;
    const lapsesAt = (heartbeatAt ?? queue.claim.at) + queue.claim.leaseMs;
    await waitUntil("the stalled worker's lease to lapse", () => Date.now() > lapsesAt);
  } finally {
    stalled.kill("SIGCONT");
  }
}

/**
 * The lease of the worker killed under a run: short, so that another worker takes the run
 * back soon after the kill, yet a few heartbeats (one every quarter of it) long. At 1 s, a
 * live worker starved on a loaded machine (load 8 and more on 2 cores) lost its claim now
 * and then, took the run back and claimed it again, sometimes three times: the run then
 * ended failed (lost too often, `MAX_LOST_ATTEMPTS`).
 */
const DYING_LEASE = "3s";

/**
 * Run `id` (held in its first gate by worker `dying`, lease {@linkcode DYING_LEASE}) is taken
 * back and run to its end by worker `taker` (its lease the default 30 s: not lost here) once
 * `dying` is killed; `follower` (`runs show --follow`) says each lost attempt and follows the
 * run to its end. Every attempt before the last was `dying`'s, and lost: `dying` itself may
 * have lost its claim while starved before it was killed, taken the run back and claimed it
 * again (which `stallPastLease` makes certain). Resolves how many attempts were lost.
 */
async function takenBackAndFollowed(
  p: Project,
  id: string,
  follower: Watched,
  g: ReturnType<Project["gates"]>,
  beforeKill: (dying: Watched) => Promise<void> = async () => {},
): Promise<number> {
  {
    await using dying = worker(p, "--lease", DYING_LEASE, "--worker-id", "dying");
    await follower.until(/first: log: waiting for /);
    await beforeKill(dying);
    dying.kill("SIGKILL"); // its lease lapses; another worker takes the run back
    await dying.code();
  }
  // Its lease is long: a starved taker must not lose its own claim (a third attempt).
  await using taker = worker(p, "--worker-id", "taker");
  await taker.until(/"type":"claim"/);
  const { attempt } = JSON.parse(taker.stdout.split("\n").find((l) => l.includes('"claim"'))!);
  // Said before the gates open: a follower whose next poll finds the run already ended (taken
  // back, claimed and run within one poll interval) says only its outcome.
  await follower.until(
    new RegExp(
      `^attempt ${attempt - 1} was lost on worker dying .*: following its next attempt$`,
      "m",
    ),
    "stderr",
  );
  await open(g.first);
  await open(g.second);
  assert.equal(await follower.code(), 0, follower.stderr);
  assert.match(follower.stdout, new RegExp(`Run ${id} \\(gated\\) succeeded`));
  const run = JSON.parse(await cliOk(p.run, "runs", "show", id, "--json")).run;
  const attempts: { attempt: number; worker: string; outcome: string }[] = run.queue.attempts;
  const lost = attempts.length - 1;
  assert.ok(lost >= 1, JSON.stringify(attempts));
  assert.deepEqual(attempts.map((a) => [a.worker, a.outcome]), [
    ...Array.from({ length: lost }, () => ["dying", "lost"]),
    ["taker", "succeeded"],
  ]);
  // Each lost attempt said, in order, each followed into the next.
  const said = [
    ...follower.stderr.matchAll(
      /^attempt (\d+) was lost on worker dying .*; the run is queued again: following its next attempt$/gm,
    ),
  ].map((m) => Number(m[1]));
  assert.deepEqual(said, attempts.slice(0, lost).map((a) => a.attempt), follower.stderr);
  taker.kill("SIGTERM");
  assert.equal(await taker.code(), 0);
  return lost;
}

Deno.test("cli follow: an attempt lost with its worker is followed into the next attempt", async () => {
  await withProject("", async (p) => {
    const g = p.gates("l");
    const id = (await cliOk(p.run, "enqueue", "gated", ...g.inputs)).trim();
    await using follower = p.spawn("runs", "show", id, "--follow");
    await takenBackAndFollowed(p, id, follower, g);
  });
});

Deno.test("cli follow: a worker starved past its lease loses its attempt too; each lost attempt is said and followed into the next", async () => {
  await withProject("", async (p) => {
    const g = p.gates("t");
    const id = (await cliOk(p.run, "enqueue", "gated", ...g.inputs)).trim();
    await using follower = p.spawn("runs", "show", id, "--follow");
    const lost = await takenBackAndFollowed(p, id, follower, g, async (dying) => {
      // Starved past its lease: resumed, it stops its attempt (lost), takes the run back and
      // claims it again (attempt 2), which its kill loses in turn.
      await stallPastLease(p, dying, id);
      await dying.until(/"type":"claim"[^\n]*"attempt":2/);
    });
    assert.equal(lost, 2);
  });
});
