/**
 * A temporary working directory in which to run the `flowstate` CLI as a
 * subprocess (`deno run cli.ts`), with FLOWSTATE_HOME inside it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { exitOf, hangGuard, outputOf } from "./_deadline.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const CLI = join(ROOT, "cli.ts");
const DENO_JSON = join(ROOT, "deno.json");
const PERMISSIONS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-net",
  "--allow-run",
  "--allow-sys",
];

/** What a CLI run printed and its exit code. */
export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** The sandbox: its directory, the home inside it, and a way to run the CLI there. */
export interface Sandbox {
  dir: string;
  home: string;
  run(...args: string[]): Promise<Result>;
  /** Run with extra environment variables. */
  runWith(env: Record<string, string>, ...args: string[]): Promise<Result>;
}

/**
 * The `flowstate` CLI (`deno run cli.ts`) as a command in `dir`, with
 * FLOWSTATE_HOME at `home` (default `<dir>/home`), stdin closed and
 * stdout/stderr piped (stdout `"null"` on request).
 */
export function cliCommand(
  dir: string,
  args: string[],
  options: { home?: string; env?: Record<string, string>; stdout?: "piped" | "null" } = {},
): Deno.Command {
  const [program, ...argv] = cliArgv(args);
  return new Deno.Command(program, {
    args: argv,
    cwd: dir,
    env: {
      FLOWSTATE_HOME: options.home ?? join(dir, "home"),
      NO_COLOR: "1",
      RUST_BACKTRACE: "0",
      ...options.env,
    },
    stdin: "null",
    stdout: options.stdout ?? "piped",
    stderr: "piped",
  });
}

/** The program and arguments that run `flowstate <args>` from this repository. */
export function cliArgv(args: string[]): string[] {
  return [
    Deno.execPath(),
    "run",
    "--quiet",
    "--unstable-worker-options",
    "--config",
    DENO_JSON,
    ...PERMISSIONS,
    CLI,
    ...args,
  ];
}

/** Run the CLI in `dir` (see {@linkcode cliCommand}) and decode what it printed. */
export async function runCli(
  dir: string,
  args: string[],
  options: { home?: string; env?: Record<string, string> } = {},
): Promise<Result> {
  // A CLI that never exits fails the test with what it printed instead of hanging it.
  const { code, stdout, stderr } = await outputOf(cliCommand(dir, args, options));
  return { code, stdout, stderr };
}

/** A finished CLI process's exit code and what it printed, decoded. */
export function resultOf(output: Deno.CommandOutput): Result {
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Run `fn` in a fresh sandbox, removed afterwards. */
export async function withSandbox(fn: (sandbox: Sandbox) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-cli-" });
  const home = join(dir, "home");
  const runWith = (env: Record<string, string>, ...args: string[]): Promise<Result> =>
    runCli(dir, args, { home, env });
  try {
    await fn({ dir, home, run: (...args) => runWith({}, ...args), runWith });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Run `flowstate …` in a project; resolves its result. */
export type ProjectCli = (...args: string[]) => Promise<Result>;

/**
 * A temporary project whose `flowstate.yaml` is `config`: `fn` gets a runner of
 * `flowstate …` in it (with `env` added) and its directory, removed afterwards.
 */
export async function withCliProject(
  config: string,
  fn: (run: ProjectCli, dir: string) => Promise<void>,
  options: { prefix?: string; env?: Record<string, string> } = {},
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: options.prefix ?? "flowstate-cli-" });
  await Deno.writeTextFile(join(dir, "flowstate.yaml"), config);
  const run: ProjectCli = (...args) =>
    runCli(dir, args, options.env === undefined ? {} : { env: options.env });
  try {
    await fn(run, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `flowstate …` that must exit 0: resolves its stdout (the assertion shows stderr otherwise). */
export async function cliOk(run: ProjectCli, ...args: string[]): Promise<string> {
  const r = await run(...args);
  if (r.code !== 0) {
    throw new Error(`flowstate ${args.join(" ")} exited ${r.code}:\n${r.stderr}`);
  }
  return r.stdout;
}

/**
 * `jobs run archive` of every finished run (`olderThan=0`), then `jobs run
 * retention` with `maxAge=0`: checks that they archived `archived` runs and
 * deleted `versionsDeleted` flow versions.
 */
export async function archiveThenPrune(
  run: ProjectCli,
  expected: { archived: number; versionsDeleted: number },
): Promise<void> {
  const archive = JSON.parse(
    await cliOk(run, "jobs", "run", "archive", "--option", "olderThan=0", "--json", "--quiet"),
  );
  assert.equal(archive.outputs.archived, expected.archived, JSON.stringify(archive.outputs));
  const retention = JSON.parse(
    await cliOk(run, "jobs", "run", "retention", "--option", "maxAge=0", "--json", "--quiet"),
  );
  assert.equal(
    retention.outputs.versionsDeleted,
    expected.versionsDeleted,
    JSON.stringify(retention.outputs),
  );
}

/** A store's entries as `state ls --json` shows them: `[{ key, value }]`. */
export async function cliDump(
  run: ProjectCli,
  store: string,
): Promise<{ key: string[]; value: unknown }[]> {
  const entries = JSON.parse(await cliOk(run, "state", "ls", "--store", store, "--json")) as {
    key: string[];
    value: unknown;
  }[];
  return entries.map(({ key, value }) => ({ key, value }));
}

/**
 * Run `flowstate worker --json` in `dir` (FLOWSTATE_HOME `home`, default
 * `<dir>/home`) until it ended one run (an `end` line), then SIGTERM it;
 * asserts it ran one and exited 0.
 */
export async function workOneRun(dir: string, home?: string): Promise<void> {
  const child = cliCommand(dir, ["worker", "--json", "--poll", "50ms"], { home }).spawn();
  let ended = false;
  let rest = "";
  using _hang = hangGuard(child, () => `no end line seen; then: ${rest}`);
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  while (!ended) {
    const { value, done } = await reader.read();
    if (done) break;
    rest += value;
    const lines = rest.split("\n");
    rest = lines.pop()!;
    ended = lines.some((line) => JSON.parse(line).type === "end");
  }
  child.kill("SIGTERM");
  while (!(await reader.read()).done) { /* drain */ }
  await child.stderr.cancel();
  assert.equal((await exitOf(child)).code, 0);
  assert.ok(ended, "the worker ran the run");
}
