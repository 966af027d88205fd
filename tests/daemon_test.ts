/**
 * Several daemons on one SQLite file: every scheduled tick runs exactly once.
 *
 * Three OS processes run `flowstate daemon` (tests/fixtures/daemon_runner.ts)
 * on one shared SQLite store, with a flow scheduled every second
 * (`* * * * * *`). The flow increments a counter keyed by its tick time,
 * writes its runner's id under that tick, and then stays busy for 1.2 s, so
 * the runner of one tick skips the next (overlap: skip) and another must take
 * it. After about five seconds the daemons get SIGTERM; then no tick may have
 * a count above 1, a tick between the first and last that nobody ran must
 * have been skipped by every runner (all busy, or woken late: on a loaded
 * machine a run lasts 2–3 s), no runner may have run two consecutive ticks,
 * and more than one runner must have taken part.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore } from "../src/plugin.ts";
import { spawnDaemon, streamLines } from "./fixtures/daemon_process.ts";

const RUNNERS = ["runner-a", "runner-b", "runner-c"];
const RUN_FOR_MS = 5_000;

const FLOW = `
id: tick
schedule: "* * * * * *"
env: [RUNNER_ID]
inputs:
  scheduledAt: { type: string }
nodes:
  - id: count
    type: state.increment
    with: { scope: global, key: ["ticks", "\${{ inputs.scheduledAt }}"] }
  - id: runner
    type: state.set
    with:
      scope: global
      key: ["runners", "\${{ inputs.scheduledAt }}", "\${{ env.RUNNER_ID }}"]
      value: true
  # Longer than the period: the runner that took a tick is busy at the next one
  # (overlap: skip), so another runner must take it.
  - id: busy
    type: delay
    needs: [count, runner]
    with: { for: 1200ms }
`;

const CONFIG = `
stores:
  default: { plugin: sqlite, path: state.db }
flows: [./tick.flow.yaml]
jobs:
  retention: { enabled: false }
  gc: { enabled: false }
`;

/** A daemon's lines about a tick (`<tick time> flow:tick …`), with the tick's time. */
function tickLines(lines: string[]): { at: number; line: string }[] {
  return lines.map((line) => ({ at: Date.parse(line.split(" ")[0]), line }))
    .filter((l) => / flow:tick /.test(l.line) && !Number.isNaN(l.at));
}

/**
 * The ticks a daemon's output says it did not run: those it skipped (`skipped:
 * …`, one line each), and those it passed over after waking late (it says
 * so of the first one, then goes on with the latest due tick: every tick
 * before its next line passed too).
 */
function skippedTicks(lines: string[]): Set<number> {
  const timed = tickLines(lines);
  const skipped = new Set<number>();
  for (const [i, { at, line }] of timed.entries()) {
    if (!/ flow:tick skipped: /.test(line)) continue;
    skipped.add(at);
    if (!/woke late/.test(line)) continue;
    const next = timed.slice(i + 1).find((l) => l.at > at)?.at ?? Infinity;
    for (let t = at + 1000; t < next && t < at + 60_000; t += 1000) skipped.add(t);
  }
  return skipped;
}

/** A daemon's output lines, with `started` resolved at its first line. */
function collect(stream: ReadableStream<Uint8Array>) {
  const { lines, next, done } = streamLines(stream);
  const started = next(/^Scheduler started/).then(() => {});
  started.catch(() => {}); // Only awaited for stdout.
  return { lines, started, done };
}

Deno.test({
  name: "daemon: three processes on one SQLite file run every tick exactly once",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "flowstate-daemon-" });
    try {
      await Deno.writeTextFile(join(dir, "flowstate.yaml"), CONFIG);
      await Deno.writeTextFile(join(dir, "tick.flow.yaml"), FLOW);
      const daemons = RUNNERS.map((id) => {
        const child = spawnDaemon(dir, id, { env: { RUNNER_ID: id } });
        const stdout = collect(child.stdout);
        const stderr = collect(child.stderr);
        return { id, child, stdout, stderr };
      });
      try {
        await Promise.all(daemons.map((d) => d.stdout.started));
        await new Promise((resolve) => setTimeout(resolve, RUN_FOR_MS));
      } finally {
        for (const d of daemons) {
          try {
            d.child.kill("SIGTERM");
          } catch {
            // Already gone.
          }
        }
      }
      const statuses = await Promise.all(daemons.map((d) => d.child.status));
      await Promise.all(daemons.flatMap((d) => [d.stdout.done, d.stderr.done]));
      for (const [i, d] of daemons.entries()) {
        const output = `stdout:\n${d.stdout.lines.join("\n")}\nstderr:\n${
          d.stderr.lines.join("\n")
        }`;
        assert.equal(statuses[i].code, 0, `${d.id} exit code\n${output}`);
        assert.equal(d.stdout.lines.at(-1), "Stopped", `${d.id} stopped cleanly\n${output}`);
        assert.deepEqual(d.stderr.lines.filter((l) => l.startsWith("error")), [], output);
      }

      await using store = await openStore(
        { plugin: "sqlite", path: join(dir, "state.db") },
        { baseDir: dir },
      );
      const counts = new Map<number, number>();
      for await (const entry of store.list<number>({ prefix: ["global", "ticks"] })) {
        counts.set(Date.parse(entry.key[2]), entry.value);
      }
      const runners = new Map<number, string[]>();
      for await (const entry of store.list({ prefix: ["global", "runners"] })) {
        const tick = Date.parse(entry.key[2]);
        runners.set(tick, [...(runners.get(tick) ?? []), entry.key[3]]);
      }
      const ticks = [...counts.keys()].sort((a, b) => a - b);
      const twice = [...counts].filter(([, n]) => n !== 1);
      assert.deepEqual(twice, [], "no tick ran more than once");
      for (const tick of ticks) assert.equal(runners.get(tick)?.length, 1);
      // No tick dropped: every second from the first tick a runner spoke of to the last ran, or
      // every runner said why it did not run it. A run lasts 1.2 s and more (2–3 s on a loaded
      // machine): then all three can be busy at a tick (overlap: skip) and nobody runs it, as
      // documented; a runner that woke late goes on with the latest due tick.
      const ran = new Set(ticks);
      const passed = daemons.map((d) => skippedTicks(d.stdout.lines));
      const spoken = daemons.flatMap((d) => tickLines(d.stdout.lines).map((l) => l.at));
      const dropped = [];
      for (let t = Math.min(...spoken); t <= Math.max(...spoken); t += 1000) {
        if (!ran.has(t) && !passed.every((p) => p.has(t))) dropped.push(new Date(t).toISOString());
      }
      assert.deepEqual(
        dropped,
        [],
        `ticks nobody ran and not every runner skipped:\n${
          daemons.map((d) => `${d.id}:\n${d.stdout.lines.join("\n")}`).join("\n")
        }`,
      );
      const order = ticks.map((t) => runners.get(t)![0]);
      for (let i = 1; i < order.length; i++) {
        assert.notEqual(
          order[i],
          order[i - 1],
          `${order[i]} was busy and could not run two ticks in a row`,
        );
      }
      const participants = new Set(order);
      assert.ok(participants.size > 1, `more than one runner ran ticks: ${[...participants]}`);
      // Each daemon printed one line per tick it ran; together they are the ticks, once each.
      const printed = daemons.flatMap((d) =>
        d.stdout.lines.filter((l) => / flow:tick succeeded /.test(l)).map((l) =>
          Date.parse(l.split(" ")[0])
        )
      ).sort((a, b) => a - b);
      assert.deepEqual(printed, ticks);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
