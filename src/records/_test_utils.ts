/**
 * Helpers shared by the tests of `Records` (`records_*_test.ts`): a fake
 * clock, a store that counts what it reads, run and flow builders, and one
 * test per backend (memory and sqlite) with a fresh store each.
 *
 * @module
 */
import { join } from "node:path";
import type { FlowDefinition } from "../flow/types.ts";
import { openStore } from "../plugin.ts";
import type { Key, ListOptions, Store } from "../store/types.ts";
import { Records } from "./records.ts";
import { newRunId } from "./run_id.ts";
import type { RunRecord, RunStatus } from "./types.ts";

/** The fake clock's start: 2026-01-01T00:00:00Z. */
export const T0 = Date.UTC(2026, 0, 1);

/** A clock that moves only when a test sets `t`. */
export class FakeClock {
  t = T0;
  now(): number {
    return this.t;
  }
}

/** What a {@linkcode counting} store has read and committed. */
export interface Counts {
  listed: number;
  read: number;
  commits: number;
  ranges: ListOptions[];
}

/**
 * Wrap a store so tests can see how much it reads: entries yielded by
 * `list`, keys read by `get`/`getMany`, and atomic commits.
 */
export function counting(store: Store): { store: Store; counts: Counts } {
  const counts: Counts = { listed: 0, read: 0, commits: 0, ranges: [] };
  const proxy = new Proxy(store, {
    get(target, prop) {
      if (prop === "list") {
        return (options: ListOptions) => {
          counts.ranges.push(options);
          const inner = target.list(options);
          return (async function* () {
            for await (const e of inner) {
              counts.listed++;
              yield e;
            }
          })();
        };
      }
      if (prop === "get") {
        return (key: Key) => {
          counts.read++;
          return target.get(key);
        };
      }
      if (prop === "getMany") {
        return (keys: Key[]) => {
          counts.read += keys.length;
          return target.getMany(keys);
        };
      }
      if (prop === "atomic") {
        return () => {
          const op = target.atomic();
          const commit = op.commit.bind(op);
          op.commit = () => {
            counts.commits++;
            return commit();
          };
          return op;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { store: proxy, counts };
}

/** A one-node flow definition with this id. */
export function flow(id: string, extra: Partial<FlowDefinition> = {}): FlowDefinition {
  return { id, nodes: [{ id: "a", type: "log", with: { message: "hi" } }], ...extra };
}

/** A `running` run of `flowId` at `flowVersion`, started now. */
export function newRun(
  clock: FakeClock,
  flowId = "f",
  flowVersion = "v1",
): RunRecord {
  const startedAt = clock.now();
  return {
    id: newRunId(startedAt),
    flowId,
    flowVersion,
    status: "running",
    inputs: { n: 1 },
    outputs: null,
    startedAt,
    endedAt: null,
    durationMs: null,
    nodes: {},
    error: null,
  };
}

/** The run finished with `status` after `durationMs`. */
export function finished(run: RunRecord, status: RunStatus, durationMs: number): RunRecord {
  return {
    ...run,
    status,
    endedAt: run.startedAt + durationMs,
    durationMs,
    outputs: status === "succeeded" ? { ok: true } : null,
    error: status === "failed" ? { node: "a", message: "boom" } : null,
  };
}

/** The stores every `Records` test runs against. */
export type Backend = "memory" | "sqlite";
export const BACKENDS: Backend[] = ["memory", "sqlite"];

/** Register one test per backend, named with the backend. */
export function backendTest(name: string, fn: (backend: Backend) => Promise<void>): void {
  for (const backend of BACKENDS) Deno.test(`${name} [${backend}]`, () => fn(backend));
}

/** Open a store of this backend; closing it also removes its temporary directory. */
export async function openBackend(backend: Backend, clock: FakeClock): Promise<Store> {
  if (backend === "memory") return await openStore({ plugin: "memory" }, { clock });
  const dir = await Deno.makeTempDir({ prefix: "flowstate-records-" });
  const store = await openStore({ plugin: "sqlite", path: join(dir, "records.db") }, {
    clock,
    home: dir,
  });
  return new Proxy(store, {
    get(target, prop) {
      if (prop === "close") {
        return async () => {
          await target.close();
          await Deno.remove(dir, { recursive: true });
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** A fresh store of this backend, a fake clock, and `Records` on both. */
export async function setup(
  backend: Backend,
): Promise<{ store: Store; clock: FakeClock; records: Records }> {
  const clock = new FakeClock();
  const store = await openBackend(backend, clock);
  return { store, clock, records: new Records(store, { clock }) };
}

/** Every key in the store, in key order. */
export async function allKeys(store: Store): Promise<Key[]> {
  const keys: Key[] = [];
  for await (const e of store.list()) keys.push(e.key);
  return keys;
}

/** 60 runs: flows a/b/c, statuses cycling, one run per second from T0. */
export async function manyRuns(records: Records, clock: FakeClock): Promise<RunRecord[]> {
  const statuses: RunStatus[] = ["succeeded", "failed", "succeeded", "cancelled", "running"];
  const runs: RunRecord[] = [];
  for (let i = 0; i < 60; i++) {
    const run = newRun(clock, ["a", "b", "c"][i % 3], "v1");
    await records.startRun(run);
    const status = statuses[i % 5];
    const final = status === "running" ? run : finished(run, status, 100 + i);
    if (status !== "running") await records.finishRun(final);
    runs.push(final);
    clock.t += 1000;
  }
  return runs;
}
