/**
 * A daemon on PostgreSQL whose server is lost for a few seconds and then
 * back (a failover, a restart, a network cut) keeps running its schedule:
 * ticks during the cut fail, the ones after it run again, and a stop ends it
 * within its grace period. In-process (`daemonCommand`), through a TCP proxy
 * the test cuts; needs FLOWSTATE_TEST_POSTGRES_URL.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { daemonCommand } from "../src/cli/daemon.ts";
import {
  cuttableProxy,
  dropTestSchema,
  pgTest,
  SCHEMA,
  settlesWithin,
} from "../plugins/postgres/_test_utils.ts";

/** The test's own bound on each wait (generous: only "it does not hang"). */
const DEADLINE_MS = 90_000;

/** Flows scheduled every second: their ticks' leases are taken at once (several transactions). */
const FLOWS = 6;

const FLOW = (i: number) => `
id: tick${i}
schedule: "* * * * * *"
inputs:
  scheduledAt: { type: string }
nodes:
  - id: count
    type: state.increment
    with: { scope: global, key: ["ticks", "${i}", "\${{ inputs.scheduledAt }}"] }
`;

interface TickEnd {
  type: "tick.end";
  scheduleId: string;
  tick: string | number;
  status: string;
}

pgTest(
  "daemon on PostgreSQL: after the server was lost for a few seconds, the schedule runs again and the daemon stops",
  async (url) => {
    const proxy = cuttableProxy(url);
    const dir = await Deno.makeTempDir({ prefix: "flowstate-pg-outage-" });
    const lines: string[] = [];
    const { log, error } = console;
    console.log = (...args: unknown[]) => void lines.push(args.join(" "));
    console.error = (...args: unknown[]) => void lines.push(args.join(" "));
    const stop = new AbortController();
    let running: Promise<number> | undefined;
    try {
      await Deno.writeTextFile(
        join(dir, "flowstate.yaml"),
        `stores:\n  default: { plugin: postgres, url: "${proxy.url}", schema: ${SCHEMA}, ` +
          `table: daemon_outage, connectTimeout: 1 }\n` +
          `flows: [./flows]\njobs:\n  retention: { enabled: false }\n  gc: { enabled: false }\n`,
      );
      await Deno.mkdir(join(dir, "flows"));
      for (let i = 0; i < FLOWS; i++) {
        await Deno.writeTextFile(join(dir, "flows", `tick${i}.flow.yaml`), FLOW(i));
      }
      running = daemonCommand(
        { runnerId: "outage", json: true, queue: false, grace: "5s" },
        { config: join(dir, "flowstate.yaml") },
        { signal: stop.signal },
      );
      /** Resolves once every flow had a tick at or after `from` (ms) run to success. */
      const succeededFrom = async (from: number) => {
        for (;;) {
          const done = new Set(
            lines.flatMap((line) => {
              try {
                const event = JSON.parse(line);
                return event?.type === "tick.end" ? [event as TickEnd] : [];
              } catch {
                return [];
              }
            }).filter((e) => e.status === "succeeded" && new Date(e.tick).getTime() >= from)
              .map((e) => e.scheduleId),
          );
          if (done.size === FLOWS) return;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      };
      await settlesWithin(succeededFrom(0), DEADLINE_MS, "a tick before the cut");
      await proxy.cut();
      await new Promise((resolve) => setTimeout(resolve, 4_000));
      proxy.restore();
      await settlesWithin(
        succeededFrom(Date.now()),
        DEADLINE_MS,
        "a tick after the server was back",
      );
      stop.abort();
      assert.equal(await settlesWithin(running, DEADLINE_MS, "the daemon's stop"), 0);
    } finally {
      stop.abort();
      console.log = log;
      console.error = error;
      // Bounded too: a daemon that does not stop fails the test rather than hanging it.
      if (running !== undefined) {
        await settlesWithin(running, DEADLINE_MS, "the daemon's stop").catch(() => {});
      }
      await proxy.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

dropTestSchema();
