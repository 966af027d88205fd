/**
 * The kill harness of tests/faults/: seeded kill plans, the store spec of each
 * backend, children watched line by line and killed with SIGKILL at a planned
 * point, a small pool to run kill points two at a time, and the checks that
 * every file a store left behind still parses.
 *
 * - `FAULTS_SEED`: the base seed (default: random; it is printed, so a failing
 *   run can be replayed). Kill point `i` uses seed `base + i`.
 * - `FAULTS_KILLS`: kill points per backend (default {@linkcode CI_KILLS};
 *   `deno task faults` runs 2,000 unless FAULTS_KILLS says otherwise).
 * - `FAULTS_CONCURRENCY`: kill points run at once (default 2).
 *
 * Postgres kill points need FLOWSTATE_TEST_POSTGRES_URL (otherwise they are
 * ignored); every table lives in this test file's own schema.
 *
 * @module
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { lines } from "../../plugins/jsonfile/testdata/helpers.ts";
import { rawDb } from "../../plugins/sqlite/_test_utils.ts";
import { NEEDS_SERVER, PG_URL, SCHEMA } from "../../plugins/postgres/_test_utils.ts";
import { exitOf, within } from "../_deadline.ts";

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("../../", import.meta.url));
const DENO_JSON = join(ROOT, "deno.json");
/** The CLI's entry point. */
export const CLI: string = join(ROOT, "cli.ts");
/** The child of acknowledged writes. */
export const CHILD: string = fileURLToPath(new URL("./_child.ts", import.meta.url));

/** Kill points per backend in an ordinary test run. */
export const CI_KILLS = 54;

function envInt(name: string, fallback: number): number {
  const raw = Deno.env.get(name);
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name}=${raw}: expected an integer`);
  return n;
}

/** The base seed of this run. */
export const SEED: number = envInt("FAULTS_SEED", Math.floor(Math.random() * 2 ** 31));
/** Kill points per backend (`deno task faults` sets FAULTS_DEFAULT_KILLS). */
export const KILLS: number = envInt("FAULTS_KILLS", envInt("FAULTS_DEFAULT_KILLS", CI_KILLS));
const DEBUG = Deno.env.get("FAULTS_DEBUG") !== undefined;
/** How many kill points run at once. */
export const CONCURRENCY: number = Math.max(1, envInt("FAULTS_CONCURRENCY", 2));
console.log(`faults: FAULTS_SEED=${SEED} FAULTS_KILLS=${KILLS} (replay with these)`);

/** The backends under test: every persistent one. */
export const BACKENDS = ["jsonfile", "sqlite", "postgres"] as const;
/** A persistent backend. */
export type Backend = typeof BACKENDS[number];

/** Register a test of one backend; a postgres test without a server is ignored, saying why. */
export function backendTest(backend: Backend, name: string, fn: () => Promise<void>): void {
  if (backend === "postgres" && PG_URL === undefined) {
    Deno.test({ name: `${name} (ignored: ${NEEDS_SERVER})`, ignore: true, fn: () => {} });
  } else {
    Deno.test(name, fn);
  }
}

/** The store spec of `backend` for one store named `label` (a file in `dir`, or a table). */
export function storeSpec(
  backend: Backend,
  dir: string,
  label: string,
  durability: "full" | "relaxed" = "full",
): Record<string, unknown> & { plugin: string } {
  switch (backend) {
    case "jsonfile":
      return { plugin: "jsonfile", path: join(dir, `${label}.json`), durability };
    case "sqlite":
      return { plugin: "sqlite", path: join(dir, `${label}.db`), durability };
    case "postgres":
      return { plugin: "postgres", url: PG_URL, schema: SCHEMA, table: label, max: 2 };
  }
}

/** Where a kill lands: after a delay from the start, or after a line the test picks. */
export interface KillPlan {
  /** Kill this many ms after the child started (a kill during startup, open or work). */
  afterMs?: number;
  /** Kill once the child printed this many marker lines (acknowledgements, say). */
  afterLines?: number;
  /** Extra ms to wait after that line before the kill. */
  thenMs: number;
  /** The durability of the file stores written. */
  durability: "full" | "relaxed";
}

/**
 * The kill plan of seed `seed`: a quarter of them by time (up to `max.ms`
 * after the start), the rest `thenMs` (up to `max.thenMs`) after line
 * `lines` (1 to `max.lines`).
 */
export function killPlan(
  seed: number,
  max: { lines: number; ms: number; thenMs: number },
): KillPlan {
  const arb = fc.noBias(fc.record({
    byTime: fc.nat(99),
    ms: fc.nat(max.ms),
    lines: fc.integer({ min: 1, max: Math.max(1, max.lines) }),
    thenMs: fc.oneof(fc.constant(0), fc.nat(max.thenMs)),
    durability: fc.constantFrom("full" as const, "relaxed" as const),
  }));
  const [p] = fc.sample(arb, { seed, numRuns: 1 });
  return p.byTime < 25
    ? { afterMs: p.ms, thenMs: 0, durability: p.durability }
    : { afterLines: p.lines, thenMs: p.thenMs, durability: p.durability };
}

/** What a watched child printed, and how it ended. */
export interface Watched {
  /** Its stdout lines. */
  stdout: string[];
  /** Its stderr lines. */
  stderr: string[];
  /** Whether it was killed (it may have ended on its own before its kill point). */
  killed: boolean;
  /** Its exit status. */
  status: Deno.CommandStatus;
}

/**
 * Run `deno run <args>` and kill it with SIGKILL at `plan`: `marker` says
 * which lines (of stdout or stderr) count towards `plan.afterLines`.
 */
export async function runAndKill(
  args: string[],
  plan: KillPlan,
  marker: (line: string, stream: "stdout" | "stderr") => boolean,
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<Watched> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--unstable-worker-options", "--config", DENO_JSON, "-A", ...args],
    cwd: options.cwd,
    env: { NO_COLOR: "1", RUST_BACKTRACE: "0", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let killed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const kill = () => {
    if (killed) return;
    killed = true;
    try {
      child.kill("SIGKILL");
    } catch { /* it ended already */ }
  };
  const later = (ms: number) => {
    if (ms === 0) kill();
    else timer ??= setTimeout(kill, ms);
  };
  if (plan.afterMs !== undefined) later(plan.afterMs);
  let seen = 0;
  if (plan.afterLines === 0 && plan.afterMs === undefined) later(plan.thenMs);
  const out: Watched = { stdout: [], stderr: [], killed: false, status: undefined as never };
  const read = async (stream: "stdout" | "stderr") => {
    for await (const line of lines(child[stream])) {
      out[stream].push(line);
      if (plan.afterLines !== undefined && marker(line, stream) && ++seen === plan.afterLines) {
        later(plan.thenMs);
      }
    }
  };
  const printed = () => `stdout:\n${out.stdout.join("\n")}\nstderr:\n${out.stderr.join("\n")}`;
  await within(Promise.all([read("stdout"), read("stderr")]), `child process ${child.pid} to end`, {
    details: printed,
    onHang: kill,
  });
  out.status = await exitOf(child, printed);
  clearTimeout(timer);
  out.killed = out.status.signal === "SIGKILL";
  return out;
}

/**
 * Run kill points `fn(0, w)`, `fn(1, w)` … {@linkcode CONCURRENCY} at a time
 * (`w` is the worker running one; a worker runs one at a time) until `tally`
 * counts `target` kills that landed (a child may end before its kill point),
 * or after `4 * target` tries; rejects with the first failure.
 */
export async function killPoints(
  target: number,
  tally: Tally,
  fn: (i: number, worker: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const more = () => tally.killed + running < target && next < 4 * target;
  let running = 0;
  const worker = async (w: number) => {
    while (more()) {
      running++;
      try {
        await fn(next++, w);
      } finally {
        running--;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, target) }, (_, w) => worker(w)));
}

/**
 * Every file of a file-backed store parses: a jsonfile document is JSON in
 * the store's format, a SQLite database passes `PRAGMA integrity_check`. A
 * store killed before it wrote its file has none, which is fine.
 */
export function assertFilesParse(spec: Record<string, unknown>, context: string): void {
  const path = spec.path as string | undefined;
  if (path === undefined || !existsSync(path)) return;
  if (spec.plugin === "jsonfile") {
    const text = Deno.readTextFileSync(path);
    let doc: { format?: unknown };
    try {
      doc = JSON.parse(text);
    } catch (err) {
      assert.fail(`${context}: ${path} does not parse (${err}); it starts ${text.slice(0, 80)}`);
    }
    assert.equal(doc.format, "flowstate.jsonfile", `${context}: ${path} is not a jsonfile store`);
  } else if (spec.plugin === "sqlite") {
    const db = rawDb(path);
    try {
      const check = db.prepare("PRAGMA integrity_check").all().map((r) => r.integrity_check);
      assert.deepEqual(check, ["ok"], `${context}: ${path} fails integrity_check`);
    } finally {
      db.close();
    }
  }
}

/** Run `fn` with a new temp directory, removed after it (kept when it fails, and named). */
export async function withFaultDir(label: string, fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: `flowstate-faults-${label}-` });
  try {
    await fn(dir);
  } catch (err) {
    console.error(`faults: kept ${dir} for inspection`);
    throw err;
  }
  await Deno.remove(dir, { recursive: true });
}

/** Counts of one kill test, printed at its end (they go into RELIABILITY.md). */
export class Tally {
  /** Kill points that landed (the child was killed). */
  killed = 0;
  /** Kill points whose child ended before the kill. */
  finished = 0;
  /** Kill points that landed after at least one acknowledgement / mid-work. */
  midway = 0;

  /** Count one kill point (and describe it, with FAULTS_DEBUG set). */
  add(watched: Watched, midway: boolean, context: string): void {
    if (DEBUG) {
      console.log(`${context}: killed ${watched.killed}, mid-work ${midway}`);
      console.log(`  stdout ${watched.stdout.join(" | ").slice(0, 300)}`);
      console.log(`  stderr ${watched.stderr.join(" | ").slice(0, 300)}`);
    }
    if (watched.killed) this.killed++;
    else this.finished++;
    if (watched.killed && midway) this.midway++;
  }

  /** One line for the log. */
  line(what: string): string {
    return `faults: ${what}: ${this.killed} kill points (${this.midway} mid-work), ` +
      `${this.finished} ran to the end; seed ${SEED}`;
  }
}
