/**
 * The built-in `exec` node as a flow runs it: the program is started from a
 * sandboxed Worker (`exec_worker.ts`, taken from the run's `SandboxPool` as a
 * custom node's is) whose only permission is the node's declared
 * `permissions: { run: [...] }`. Deno checks the program the Worker starts
 * against that list: a program the node did not declare is refused by Deno,
 * not by a string comparison here. The runner checks `command` first only to
 * word the refusal (with the exact `permissions:` line to add): a literal
 * one when the flow is checked (`flowstate validate`), a templated one when
 * the run evaluates it, before anything starts.
 *
 * The program gets a clean environment: `PATH`, `HOME`, `LANG`, `LC_ALL` and
 * `TZ` of the runner's (when set), then `with.env`. A relative `cwd` is
 * relative to the flow file's folder, which is also the default.
 *
 * @module
 */
import { isAbsolute, resolve } from "../_path.ts";
import type { NodeType } from "./node.ts";
import { builtinNodes, execOptionsSchema } from "./nodes.ts";
import {
  EXEC_KILL_GRACE,
  type ExecOptions,
  type ExecRequest,
  KILL_PROGRAM,
  programEnv,
} from "./_exec.ts";
import {
  type ResolvedPermissions,
  sandboxedNodeType,
  type SandboxPool,
  WORKER_STOP_GRACE,
} from "./sandbox.ts";

/**
 * The process groups of `exec` programs being stopped whose Worker has not
 * said they are dealt with: killed when the process exits meanwhile (a second
 * Ctrl-C, a run's abort grace shorter than the program's time to stop).
 */
const stoppedGroups = new Set<number>();
let exitHook = false;

/** `kill -s KILL -- -<group>`, with `kill` found on `path` (the runner's). */
function killCommand(group: number, path: string): Deno.Command {
  return new Deno.Command(KILL_PROGRAM, {
    args: ["-s", "KILL", "--", `-${group}`],
    clearEnv: true,
    env: { PATH: path },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  });
}

/** Kill what is left of the stopped groups as the process exits. */
function hookExit(path: string): void {
  if (exitHook) return;
  exitHook = true;
  globalThis.addEventListener("unload", () => {
    for (const group of stoppedGroups) {
      try {
        killCommand(group, path).outputSync();
      } catch {
        // kill could not run: nothing more to do as the process exits
      }
    }
  });
}

/** The module the `exec` node's Worker runs. */
export const EXEC_WORKER_URL: string = new URL("./exec_worker.ts", import.meta.url).href;

/**
 * The `exec` node type of one node of a flow: its program starts from a
 * Worker from `pool` with `permissions` (only `run` granted), the Worker
 * shared by the run's `exec` nodes of the same permissions until the run
 * ends (`releaseSandbox`). `baseDir` (the flow file's folder) is where a
 * relative `cwd` starts, and the default `cwd`.
 */
export function execNodeType(
  permissions: ResolvedPermissions,
  pool: SandboxPool,
  baseDir?: string,
): NodeType<unknown> {
  // With kill on the runner's --allow-run, the Worker may run it too, to stop the program's whole
  // process group (Flowstate's code in the Worker runs it for nothing else; the command is
  // checked against the node's own list before it crosses).
  const killGroup = Array.isArray(permissions.run) &&
    Deno.permissions.querySync({ name: "run", command: KILL_PROGRAM }).state === "granted";
  const run = Array.isArray(permissions.run) ? permissions.run : [];
  const workerPermissions = killGroup && !run.includes(KILL_PROGRAM)
    ? { ...permissions, run: [...run, KILL_PROGRAM] }
    : permissions;
  // The Worker outlives a stop by the program's SIGTERM-to-SIGKILL grace.
  const sandboxed = sandboxedNodeType(EXEC_WORKER_URL, "exec", workerPermissions, pool, baseDir, {
    stopGraceMs: EXEC_KILL_GRACE + WORKER_STOP_GRACE,
  });
  return {
    // Its release (a symbol) comes along: the executor gives the Worker back through it.
    ...sandboxed,
    description: builtinNodes.get("exec")!.description,
    optionsSchema: execOptionsSchema(permissions.run) as NodeType<unknown>["optionsSchema"],
    async run(ctx, input) {
      const options = input as ExecOptions;
      const cwd = options.cwd === undefined
        ? baseDir
        : baseDir === undefined || isAbsolute(options.cwd)
        ? options.cwd
        : resolve(baseDir, options.cwd);
      if (cwd !== undefined && options.cwd !== undefined) {
        // Looked at here, where it can be told apart from a program not found (the runner may
        // not read it: then the program's start says what is wrong).
        const info = await Deno.stat(cwd).catch((err: Error) => err);
        const problem = info instanceof Error
          ? info.name === "NotFound" ? "does not exist" : undefined
          : info.isDirectory
          ? undefined
          : "is not a folder";
        if (problem !== undefined) {
          throw new Error(`${JSON.stringify(options.command)}: its cwd ${cwd} ${problem}`);
        }
      }
      // The runner's variables a program gets (PATH, HOME…), before its with.env.
      const inherited = programEnv(
        {},
        (variable) =>
          Deno.permissions.querySync({ name: "env", variable }).state === "granted"
            ? Deno.env.get(variable)
            : undefined,
      );
      const token = killGroup ? `flowstate-exec-group:${crypto.randomUUID()}` : undefined;
      const request: ExecRequest = {
        ...options,
        ...(cwd === undefined ? {} : { cwd }),
        killGroup,
        killPath: inherited.PATH,
        ...(token === undefined ? {} : { groupToken: token }),
        fullEnv: { ...inherited, ...options.env },
      };
      if (token === undefined) return await sandboxed.run(ctx, request);
      // The program's group, while its Worker has not said it is dealt with.
      hookExit(inherited.PATH);
      let group: number | undefined;
      const stopped = () => {
        if (group !== undefined) stoppedGroups.add(group);
      };
      const log: typeof ctx.log = (message, level) => {
        if (!message.startsWith(`${token} `)) return ctx.log(message, level);
        const said = message.slice(token.length + 1);
        if (group !== undefined) stoppedGroups.delete(group);
        group = /^[1-9]\d*$/.test(said) && Number(said) > 1 ? Number(said) : undefined;
        if (ctx.signal.aborted) stopped();
      };
      ctx.signal.addEventListener("abort", stopped, { once: true });
      try {
        // The node's context with its log lines filtered (its own members, as they are).
        const filtered = new Proxy(ctx, {
          get(target, key) {
            if (key === "log") return log;
            const value = Reflect.get(target, key, target);
            return typeof value === "function" ? value.bind(target) : value;
          },
        });
        return await sandboxed.run(filtered, request);
      } finally {
        ctx.signal.removeEventListener("abort", stopped);
        if (group !== undefined) {
          // Its Worker is gone (terminated) before it dealt with the group: killed here.
          stoppedGroups.delete(group);
          await killCommand(group, inherited.PATH).output().catch(() => {});
        }
      }
    },
  };
}
