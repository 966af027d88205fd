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
      const request: ExecRequest = {
        ...options,
        ...(cwd === undefined ? {} : { cwd }),
        killGroup,
        killPath: inherited.PATH,
        fullEnv: { ...inherited, ...options.env },
      };
      return await sandboxed.run(ctx, request);
    },
  };
}
