/**
 * Turn a parsed flow into a runnable one: resolve node types (built-in or
 * module), compile templates, check static options, resolve durations. Every
 * problem is reported before anything runs or is written.
 *
 * @module
 */
import { dirname, fromFileUrl, isAbsolute, resolve } from "../_path.ts";
import { importDefault, importFailure, mappingHint, moduleUrl } from "../loader.ts";
import { didYouMean } from "../_suggest.ts";
import { deniedReading, readDenied } from "../_fs.ts";
import { formatDurationExactly, parseDuration } from "../duration.ts";
import type { PreparedFlow, PreparedNode } from "./executor.ts";
import { isNodeType, type NodeType } from "./node.ts";
import { builtinNodes, execOptionsSchema, httpOptionsSchema } from "./nodes.ts";
import { FlowValidationError, type Problem as FlowProblem } from "../errors.ts";
import type { ParsedFlow } from "./parse.ts";
import { compileTemplate, compileValue } from "./template/mod.ts";
import type { NodeSpec } from "./types.ts";
import {
  issueProblems,
  type OptionProblem,
  optionProblems,
  referenceProblems,
  staticOptions,
} from "./node_options.ts";
import { netProblem } from "./_http.ts";
import {
  invalidPermission,
  LinkEscapeError,
  missingRunnerPermission,
  NO_WORKER_OPTIONS,
  PERMISSION_NAMES,
  type PermissionName,
  ProtectedModuleError,
  type ResolvedPermissions,
  resolvePermissions,
  sandboxedNodeType,
  SandboxPool,
  type SandboxWorker,
  workerOptionsEnabled,
} from "./sandbox.ts";

/**
 * Set (to `true`) on a parsed flow read from the flow disk cache: its
 * built-in nodes' options passed {@linkcode prepareFlow}'s checks before it
 * was cached (internal).
 */
export const OPTIONS_CHECKED: unique symbol = Symbol.for("flowstate.flowOptionsChecked");

/** Options for {@linkcode prepareFlow}. */
export interface PrepareOptions {
  /** Directory module types and sub-flows resolve against (default: the flow file's, or cwd). */
  baseDir?: string;
  /**
   * The program's node types by name (`nodeTypes` of `openRuntime`), in
   * addition to the built-ins: they run in-process (`runs: "trusted"`), and a
   * `permissions:` on one is a problem.
   */
  nodeTypes?: ReadonlyMap<string, NodeType<never>>;
  /**
   * The configured store names: a built-in `state.*` node whose static
   * `store` is not one of them is a problem. Without them, not checked.
   */
  stores?: readonly string[];
  /**
   * Module node types that run in-process with the runner's permissions
   * (paths as written in the config, resolved against `trustedBaseDir`, or
   * specifiers). Every other module node runs in a Worker with only the
   * permissions its flow declares.
   */
  trusted?: readonly string[];
  /** Directory `trusted` paths resolve against (default: cwd). */
  trustedBaseDir?: string;
  /**
   * Where sandboxed nodes take their Workers from, both to check the module
   * here and to run it (default: a pool of this flow's own, which keeps no
   * idle Worker).
   */
  pool?: SandboxPool;
  /**
   * Gives up the check of custom nodes in Workers: while waiting for a turn
   * (see `SandboxPool.checkTurn`), or during it (its Workers are stopped and
   * the turn given back). The prepare then rejects with the signal's reason.
   */
  signal?: AbortSignal;
  /**
   * Ids of nodes a test mocks (`RunFlowOptions.mocks`): they will not run,
   * so what only running them needs is not checked (Deno's worker options,
   * the runner's permissions, an `exec` program on PATH), and a sandboxed
   * one's module is not loaded in a Worker (its options are then checked by
   * no schema: only inside its sandbox could its schema run). What the flow
   * file itself gets wrong still is a problem.
   */
  mocked?: ReadonlySet<string>;
}

const DEFAULT_RETRY_DELAY = 1000;

/** Resolve, compile and check a parsed flow. Throws {@linkcode FlowValidationError}. */
export async function prepareFlow(
  parsed: ParsedFlow,
  options: PrepareOptions = {},
): Promise<PreparedFlow> {
  const def = parsed.definition;
  const baseDir = options.baseDir ?? (parsed.file ? dirname(resolve(parsed.file)) : Deno.cwd());
  const problems: FlowProblem[] = [];
  const problem = (path: (string | number)[], message: string, side?: "key") => {
    const at = parsed.locate(path, side);
    problems.push({ message, path, line: at?.line, column: at?.column });
  };
  const index = new Map(def.nodes.map((n, i) => [n.id, i]));
  const trustedBase = options.trustedBaseDir ?? Deno.cwd();
  const trusted = new Set(
    (options.trusted ?? []).map((t) => moduleUrl(t, trustedBase)).filter((u) => u !== undefined),
  );
  // One Worker per module and permission set checks the nodes, then goes back to the pool.
  const pool = options.pool ?? new SandboxPool();
  const sandboxes = new Map<string, { type: NodeType<unknown>; worker: SandboxWorker }>();
  /** The pool's turn to check in Workers, taken before the first one (a burst waits its turn). */
  let turn: Disposable | undefined;
  // Cancelled while it holds the turn: its Workers stop, so the check ends and gives the turn back.
  const stopChecks = () => {
    for (const sandbox of sandboxes.values()) {
      sandbox.worker.terminate(new Error("the flow's check was cancelled"));
    }
  };
  options.signal?.addEventListener("abort", stopChecks, { once: true });
  try {
    return await prepareNodes();
  } finally {
    options.signal?.removeEventListener("abort", stopChecks);
    for (const sandbox of sandboxes.values()) pool.release(sandbox.worker);
    turn?.[Symbol.dispose]();
  }

  /**
   * `check` of `worker`, which stops the Worker when it takes longer than
   * the pool's `checkTimeoutMs` (a module whose import never settles).
   */
  async function inTime<T>(worker: SandboxWorker, check: () => Promise<T>): Promise<T> {
    const limit = pool.checkTimeoutMs;
    const timer = setTimeout(() => {
      worker.terminate(
        new Error(
          `it did not load and check its options within ${
            formatDurationExactly(limit)
          } (nodes.checkTimeout; a top-level await that never settles?); its Worker was stopped`,
        ),
      );
    }, limit);
    try {
      return await check();
    } finally {
      clearTimeout(timer);
    }
  }

  async function prepareNodes(): Promise<PreparedFlow> {
    const nodes: PreparedNode[] = [];
    for (let i = 0; i < def.nodes.length; i++) {
      const spec = def.nodes[i];
      const program = options.nodeTypes?.get(spec.type) as NodeType<unknown> | undefined;
      const builtin = program === undefined
        ? builtinNodes.get(spec.type) as NodeType<unknown> | undefined
        : undefined;
      let type: NodeType<unknown> | undefined = program ?? builtin;
      // A built-in (or the program's) name comes first, even when the project's import map has it.
      const url = type === undefined ? moduleUrl(spec.type, baseDir) : undefined;
      const sandboxed = url !== undefined && !trusted.has(url);
      const http = builtin !== undefined && spec.type === "http";
      const exec = builtin !== undefined && spec.type === "exec";
      if (spec.permissions !== undefined && builtin !== undefined && !http && !exec) {
        problem(
          ["nodes", i, "permissions"],
          `built-in node type "${spec.type}" runs in-process; permissions: applies to custom node modules, http and exec nodes only`,
        );
      } else if (spec.permissions !== undefined && program !== undefined) {
        problem(
          ["nodes", i, "permissions"],
          `node type "${spec.type}" is defined by the program running this flow (openRuntime's nodeTypes) and runs in-process with all of its permissions, so permissions: would restrict nothing; remove it, or make the node a module (type: ./nodes/thing.ts) to run it sandboxed within permissions:`,
        );
      }
      const permissions = resolvePermissions(spec.permissions, baseDir);
      const mocked = options.mocked?.has(spec.id) === true;
      if (http) {
        const usable = httpPermissionProblems(
          spec,
          permissions,
          (path, message) => problem(["nodes", i, ...path], message),
          mocked,
        );
        if (usable) {
          type = mocked
            ? mockedNodeType(type!, httpOptionsSchema(permissions.net))
            // Loaded for a flow with an http node only, as the exec node's module is.
            : (await import("./http_node.ts")).httpNodeType(permissions, pool, baseDir);
        }
      }
      if (exec) {
        const usable = execPermissionProblems(
          spec,
          permissions,
          (path, message) => problem(["nodes", i, ...path], message),
          mocked,
        );
        if (usable) {
          type = mocked
            ? mockedNodeType(type!, execOptionsSchema(permissions.run))
            // Loaded for a flow with an exec node only: other runs never load it.
            : (await import("./exec_node.ts")).execNodeType(permissions, pool, baseDir);
        }
      }
      if (sandboxed && mocked) {
        // Not run: no Worker, and nothing of the runner's is needed. The flow's own mistakes are.
        const invalid = invalidPermission(permissions);
        if (invalid !== undefined) {
          problem(["nodes", i, "permissions", invalid.name, invalid.index], invalid.message);
        } else if (url.startsWith("file:") && !await exists(url)) {
          problem(["nodes", i, "type"], await moduleNotFound(spec.type, url, baseDir));
        } else {
          type = mockedNodeType({ description: `${spec.type} (mocked)` }, ANY_OPTIONS);
        }
      } else if (sandboxed) {
        const invalid = invalidPermission(permissions);
        const missing = invalid === undefined ? missingRunnerPermission(permissions) : undefined;
        if (!workerOptionsEnabled()) problem(["nodes", i, "type"], NO_WORKER_OPTIONS);
        else if (invalid !== undefined) {
          problem(["nodes", i, "permissions", invalid.name, invalid.index], invalid.message);
        } else if (missing !== undefined) {
          problem(
            ["nodes", i, "permissions"],
            runnerLacks(spec.id, missing),
          );
        } else if (url.startsWith("file:") && !await exists(url)) {
          // Checked here: a Worker failing to load its module also prints to stderr.
          problem(["nodes", i, "type"], await moduleNotFound(spec.type, url, baseDir));
        } else if (url.startsWith("file:") && await readDenied(new URL(url))) {
          // Deno's own error would say only "Import '…' failed".
          problem(["nodes", i, "type"], moduleDenied(spec.type, url));
        } else {
          const key = `${url}\n${JSON.stringify(permissions)}`;
          let sandbox = sandboxes.get(key);
          if (!sandbox) {
            turn ??= await pool.checkTurn(options.signal);
            try {
              sandbox = {
                type: sandboxedNodeType(url, spec.type, permissions, pool, baseDir),
                worker: pool.acquire(url, permissions, baseDir),
              };
              sandboxes.set(key, sandbox);
            } catch (err) {
              // Deno refuses the permissions themselves (what a query of each entry did not catch).
              if (err instanceof LinkEscapeError) {
                problem(["nodes", i, "permissions", err.permission, err.index], err.message);
              } else if (err instanceof ProtectedModuleError) {
                problem(
                  ["nodes", i, "type"],
                  `cannot load node module ${spec.type}: ${err.message}`,
                );
              } else {
                problem(
                  ["nodes", i, "permissions"],
                  `Deno cannot start node ${spec.id} with these permissions: ${
                    (err as Error).message
                  }`,
                );
              }
            }
          }
          if (sandbox !== undefined) {
            const worker = sandbox.worker;
            try {
              // Cancelled before this Worker was in `sandboxes`: `stopChecks` could not stop it.
              options.signal?.throwIfAborted();
              if (await inTime(worker, () => worker.isNodeType())) type = sandbox.type;
              else {
                problem(
                  ["nodes", i, "type"],
                  `module ${spec.type} does not export a node type: its default export must be defineNode({ optionsSchema, run })`,
                );
              }
              const compiledWith = compileValue(spec.with ?? {});
              if (type) {
                // As for the other nodes: with templates, the keys are checked now.
                const values = compiledWith.isStatic
                  ? compiledWith.evaluate({ inputs: {}, nodes: {}, env: {} })
                  : spec.with ?? {};
                // A custom schema given a template where it expects a value may throw: then the
                // run checks the evaluated options.
                // A schema that throws on the literal options is the module's bug, not a load
                // failure: said as such, at the node's `with`.
                let threw: Error | undefined;
                const issues = await inTime(
                  worker,
                  () =>
                    // Unless the Worker stopped (its time was up, or the check was cancelled).
                    worker.validate(values).catch((err) => {
                      if (worker.dead) throw err;
                      if (compiledWith.isStatic) threw = err;
                      return null;
                    }),
                );
                if (threw !== undefined) {
                  problem(
                    ["nodes", i, "with"],
                    `${spec.type}'s optionsSchema threw while checking the options: ${threw.message} (a schema must report a bad option as an issue, not throw)`,
                  );
                }
                for (const p of issueProblems(issues ?? [], values, spec.type)) {
                  problem(["nodes", i, ...p.path], p.message, p.at);
                }
              }
            } catch (err) {
              if (options.signal?.aborted) throw options.signal.reason;
              problem(
                ["nodes", i, "type"],
                `cannot load node module ${spec.type}: ${sandboxedImportFailure(err)}`,
              );
            }
          }
        }
      } else if (url !== undefined && url.startsWith("file:") && !await exists(url)) {
        problem(["nodes", i, "type"], await moduleNotFound(spec.type, url, baseDir));
      } else if (url !== undefined && url.startsWith("file:") && await readDenied(new URL(url))) {
        problem(["nodes", i, "type"], moduleDenied(spec.type, url));
      } else if (url !== undefined) {
        try {
          const exported = await importDefault(url);
          if (isNodeType(exported)) type = exported as NodeType<unknown>;
          else {
            problem(
              ["nodes", i, "type"],
              `module ${spec.type} does not export a node type: its default export must be defineNode({ optionsSchema, run })`,
            );
          }
        } catch (err) {
          problem(
            ["nodes", i, "type"],
            `cannot load node module ${spec.type}: ${importFailure(err)}`,
          );
        }
      } else if (!type) {
        const own = [...(options.nodeTypes?.keys() ?? [])];
        const suggestion = didYouMean(spec.type, [...builtinNodes.keys(), ...own]);
        problem(
          ["nodes", i, "type"],
          `unknown node type "${spec.type}"${suggestion}; use a built-in (${
            [...builtinNodes.keys()].join(", ")
          })${
            own.length === 0 ? "" : `, a node type of this program (${own.join(", ")})`
          }, a module path like ./nodes/thing.ts${
            suggestion === "" ? `, or a package name (${mappingHint(spec.type, baseDir)})` : ""
          }`,
        );
      }
      const compiled = compileValue(spec.with ?? {});
      if (type && !sandboxed) {
        // With templates, what is known before the run: the keys (and a built-in's static values).
        const values = compiled.isStatic
          ? compiled.evaluate({ inputs: {}, nodes: {}, env: {} })
          : spec.with ?? {};
        let checked: OptionProblem[] = [];
        // A built-in's templated options need its zod schema; a flow from the disk cache passed
        // this very check when it was cached (the cache's key covers the schemas' code), so a
        // cached run does not load zod for it.
        const checkedBefore = builtin !== undefined && !compiled.isStatic &&
          (parsed as { [OPTIONS_CHECKED]?: true })[OPTIONS_CHECKED] === true;
        try {
          if (!checkedBefore) {
            checked = await optionProblems(type, spec.type, values, {
              staticValues: builtin !== undefined,
            });
          }
        } catch (err) {
          // A custom schema given a template where it expects a value may throw: then the run
          // checks the evaluated options.
          if (compiled.isStatic || builtin !== undefined) throw err;
        }
        const found = [
          ...checked,
          ...await referenceProblems(type, staticOptions(values as Record<string, unknown>), {
            baseDir,
            ...(options.stores === undefined ? {} : { stores: options.stores }),
          }),
        ];
        for (const p of found) problem(["nodes", i, ...p.path], p.message, p.at);
      }
      let timeout: number | undefined;
      let retry = {
        attempts: 1,
        delay: DEFAULT_RETRY_DELAY,
        backoff: "constant" as "constant" | "exponential",
        maxDelay: Infinity,
      };
      try {
        if (spec.timeout !== undefined) timeout = parseDuration(spec.timeout, "timeout");
      } catch (err) {
        problem(["nodes", i, "timeout"], (err as Error).message);
      }
      if (spec.retry) {
        try {
          retry = {
            attempts: spec.retry.attempts,
            delay: spec.retry.delay === undefined
              ? DEFAULT_RETRY_DELAY
              : parseDuration(spec.retry.delay, "retry.delay"),
            backoff: spec.retry.backoff ?? "constant",
            maxDelay: spec.retry.maxDelay === undefined
              ? Infinity
              : parseDuration(spec.retry.maxDelay, "retry.maxDelay"),
          };
        } catch (err) {
          problem(["nodes", i, "retry"], (err as Error).message);
        }
      }
      const waitSignal = builtin !== undefined && spec.type === "wait"
        ? (spec.with as Record<string, unknown> | undefined)?.signal
        : undefined;
      if (typeof waitSignal === "string" && waitSignal.includes("${{")) {
        problem(
          ["nodes", i, "with", "signal"],
          `wait: signal must be a literal name (like approve), not a template: runs show and the inspector say what the node waits for; put what varies in the signal's data or in message:`,
        );
      }
      if (builtin !== undefined && spec.type === "wait" && spec.forEach !== undefined) {
        problem(
          ["nodes", i, "forEach"],
          `a wait node cannot have forEach: one signal satisfies one waiting node, and its items could not be told apart; remove forEach, or give each item its own wait node (or one wait node whose signal's data holds every item's answer)`,
        );
      }
      const forEach = spec.forEach === undefined ? undefined : prepareForEach(spec.forEach);
      // What the items read steers what the node reads (for the checks of what reaches it).
      if (forEach !== undefined) {
        for (const kind of ["nodes", "inputs", "env"] as const) {
          for (const name of forEach.items.refs[kind]) compiled.refs[kind].add(name);
        }
      }
      nodes.push({
        spec,
        type: type as NodeType<unknown>,
        with: compiled,
        ...(forEach === undefined ? {} : { forEach }),
        if: spec.if === undefined ? undefined : compileTemplate(spec.if),
        needs: (spec.needs ?? []).map((n) => index.get(n)!),
        dependents: [],
        retry,
        timeout,
        // The program's node types run in-process with its permissions, as trusted modules do.
        runs: program !== undefined
          ? "trusted"
          : url === undefined
          ? "builtin"
          : sandboxed
          ? "worker"
          : "trusted",
        ...(sandboxed || http || exec ? { permissions } : {}),
      });
    }
    nodes.forEach((n, i) => n.needs.forEach((d) => nodes[d].dependents.push(i)));
    let timeout: number | undefined;
    try {
      if (def.timeout !== undefined) timeout = parseDuration(def.timeout, "timeout");
    } catch (err) {
      problem(["timeout"], (err as Error).message);
    }
    if (problems.length > 0) throw new FlowValidationError(problems, parsed.file);
    return {
      definition: def,
      file: parsed.file,
      ...(parsed.source === undefined ? {} : { source: parsed.source }),
      locate: parsed.locate,
      baseDir,
      nodes,
      outputs: def.outputs === undefined ? undefined : compileValue(def.outputs),
      timeout,
    };
  }
}

/** A net permission entry: a host (`*.` for its subdomains) or IP address, optionally with a port. */
const NET_ENTRY =
  /^(?:(?:\*\.)?[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * The problems of an `http` node's `permissions:` (reported through
 * `problem`, at a path under the node): a permission other than `net`,
 * none to reach any host (unless its `url` is literal, whose check names the
 * host to add), a net entry Deno refuses, or one the runner lacks; and
 * whether it can run (Deno's worker options are on, and its net entries are
 * valid).
 */
function httpPermissionProblems(
  spec: PreparedNode["spec"],
  permissions: ResolvedPermissions,
  problem: (path: (string | number)[], message: string) => void,
  mocked: boolean,
): boolean {
  if (!onlyPermission("http", "net", "the hosts it may call", permissions, problem, mocked)) {
    return false;
  }
  const url = (spec.with as Record<string, unknown> | undefined)?.url;
  // A templated url whose scheme and host are written out (`https://api.example.com/${{ … }}`):
  // its host is known now. (A literal url's is checked with its options.)
  const host = typeof url === "string" ? literalOrigin(url) : undefined;
  const hostProblem = host === undefined ? undefined : netProblem(permissions.net, host);
  if (hostProblem !== undefined) problem(["with", "url"], `http: ${hostProblem}`);
  if (
    permissions.net === false && host === undefined &&
    (typeof url !== "string" || url.includes("${{"))
  ) {
    problem(
      spec.permissions === undefined ? ["type"] : ["permissions"],
      'an http node may call only the hosts listed under its permissions: net:, and it lists none; add the hosts its url may name, like permissions: { net: ["api.example.com:443"] }',
    );
  }
  // Deno's own check of an entry is skipped where the runner may reach every host (--allow-net).
  const shaped = Array.isArray(permissions.net)
    ? permissions.net.findIndex((entry) => !NET_ENTRY.test(entry))
    : -1;
  if (shaped >= 0) {
    problem(
      ["permissions", "net", shaped],
      `${
        JSON.stringify((permissions.net as string[])[shaped])
      } is not a net permission: expected a host name or IP address, optionally with :port (like "api.example.com:443" or "*.example.com")`,
    );
    return false;
  }
  const net = { ...resolvePermissions(undefined, "."), net: permissions.net };
  const invalid = invalidPermission(net);
  if (invalid !== undefined) {
    problem(["permissions", invalid.name, invalid.index], invalid.message);
    return false;
  }
  const missing = mocked ? undefined : missingRunnerPermission(net);
  if (missing !== undefined) {
    problem(
      ["permissions"],
      runnerLacks(spec.id, missing),
    );
  }
  return true;
}

/**
 * What an `http` or `exec` node's Worker needs first: Deno's worker options
 * (else a problem, and `false`), and no permission but `allowed` (a problem
 * for each other one declared).
 */
function onlyPermission(
  kind: "http" | "exec",
  allowed: PermissionName,
  what: string,
  permissions: ResolvedPermissions,
  problem: (path: (string | number)[], message: string) => void,
  mocked: boolean,
): boolean {
  // A mocked node starts no Worker.
  if (!mocked && !workerOptionsEnabled()) {
    // A built-in cannot be a trusted module: the flag is the only way.
    problem(
      ["type"],
      `${kind} nodes run in Workers with their declared permissions, which needs Deno's --unstable-worker-options flag: add it to the deno run/test command (or "unstable": ["worker-options"] to the project's deno.json)`,
    );
    return false;
  }
  for (const name of PERMISSION_NAMES) {
    if (name === allowed || permissions[name] === false) continue;
    problem(
      ["permissions", name],
      `an ${kind} node takes only ${allowed}: under permissions: (${what}); remove ${name}:`,
    );
  }
  return true;
}

/**
 * The problems of an `exec` node's `permissions:` (reported through
 * `problem`, paths relative to the node): it takes only `run:`, a list of
 * the programs it may start, which the runner must have as well. Whether it
 * can run at all.
 */
function execPermissionProblems(
  spec: PreparedNode["spec"],
  permissions: ResolvedPermissions,
  problem: (path: (string | number)[], message: string) => void,
  mocked: boolean,
): boolean {
  if (!onlyPermission("exec", "run", "the programs it may start", permissions, problem, mocked)) {
    return false;
  }
  const command = (spec.with as Record<string, unknown> | undefined)?.command;
  const example = typeof command === "string" && command !== "" && !command.includes("${{")
    ? command
    : "pg_dump";
  if (permissions.run === true) {
    problem(
      ["permissions", "run"],
      `an exec node starts only the programs it lists, not any program; list them, like permissions: { run: [${
        JSON.stringify(example)
      }] }`,
    );
    return false;
  }
  if (permissions.run === false || permissions.run.length === 0) {
    problem(
      spec.permissions === undefined ? ["type"] : ["permissions"],
      `an exec node may start only the programs listed under its permissions: run:, and it lists none; add the programs its command may name, like permissions: { run: [${
        JSON.stringify(example)
      }] }`,
    );
    return false;
  }
  const blank = permissions.run.findIndex((entry) => entry.trim() === "" || /\0/.test(entry));
  if (blank >= 0) {
    problem(["permissions", "run", blank], "expected a program's name or path, like pg_dump");
    return false;
  }
  const run = { ...resolvePermissions(undefined, "."), run: permissions.run };
  const invalid = invalidPermission(run);
  if (invalid !== undefined) {
    problem(["permissions", invalid.name, invalid.index], invalid.message);
    return false;
  }
  // Deno grants --allow-run=<name> only for a name it finds on PATH: one it cannot find is
  // reported as such, not as a flag the runner lacks.
  // A mocked node starts no program: the runner's machine need not have it, nor the flag.
  if (mocked) return true;
  const lost = permissions.run.findIndex((entry) => !entry.includes("/") && !onPath(entry));
  if (lost >= 0) {
    problem(
      ["permissions", "run", lost],
      `program ${JSON.stringify(permissions.run[lost])} is not found on the runner's PATH (${
        Deno.env.get("PATH") ?? ""
      }); install it, or name it by its path (in command: and here)`,
    );
    return false;
  }
  const missing = missingRunnerPermission(run);
  if (missing !== undefined) problem(["permissions"], runnerLacks(spec.id, missing));
  return true;
}

/** Whether an executable file `name` is in a folder of this process's PATH (when it may tell). */
function onPath(name: string): boolean {
  let path: string | undefined;
  try {
    path = Deno.env.get("PATH");
  } catch {
    return true; // it may not read PATH: Deno's refusal will tell
  }
  for (const dir of (path ?? "").split(":")) {
    if (dir === "") continue;
    try {
      const info = Deno.statSync(resolve(dir, name));
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return true;
    } catch (err) {
      if ((err as Error).name !== "NotFound") return true; // it may not look: Deno will tell
    }
  }
  return false;
}

/**
 * The origin of a templated `url` whose scheme and host come before its
 * first template (`https://api.example.com/users/${{ inputs.id }}`), or
 * `undefined` (no template, or one in the host).
 */
function literalOrigin(url: string): URL | undefined {
  const at = url.indexOf("${{");
  if (at < 0) return undefined;
  const head = url.slice(0, at).match(/^https?:\/\/[^/?#]*[/?#]/i)?.[0];
  if (head === undefined) return undefined;
  try {
    return new URL(head);
  } catch {
    return undefined; // the run's check of the whole url says what is wrong with it
  }
}

/**
 * Why a sandboxed node's module did not load. Deno's advice for a read it
 * refused ("run again with the --allow-read flag") does not apply: the
 * runner has the flag, and it is the node's Worker that may not read there.
 */
function sandboxedImportFailure(err: unknown): string {
  return importFailure(err).replace(
    /(Requires read access to "(?:[^"\\]|\\.)*"), run again with the --allow-read flag/,
    "$1: a node module imports only from the project, its flow's folder, its own folder and " +
      "the node's permissions: read: paths (never from Flowstate's home, a store or the config)",
  );
}

/**
 * A node module file that does not exist: where it was looked for, that the
 * path is relative to the flow file's folder, and the closest existing file.
 */
async function moduleNotFound(type: string, url: string, baseDir: string): Promise<string> {
  const written = type.startsWith("file:") ? undefined : type;
  const { nearbyFile } = await import("../_nearby.ts");
  const meant = written === undefined || isAbsolute(written)
    ? undefined
    : await nearbyFile(written, baseDir);
  return `cannot load node module ${type}: Module not found "${url}"${
    written === undefined || isAbsolute(written)
      ? ""
      : `; module paths are relative to the flow file's folder ${baseDir}`
  }${meant === undefined ? "" : ` (did you mean ${meant}?)`}`;
}

/** A node module file the file system will not let this process read. */
function moduleDenied(type: string, url: string): string {
  return `cannot load node module ${type}: ${deniedReading(fromFileUrl(url))}`;
}

async function exists(url: string): Promise<boolean> {
  try {
    return (await Deno.stat(new URL(url))).isFile;
  } catch {
    return false;
  }
}

/** A node's `forEach:` compiled: its list (a template or a literal list) and its concurrency. */
function prepareForEach(
  forEach: NonNullable<NodeSpec["forEach"]>,
): NonNullable<PreparedNode["forEach"]> {
  const object = typeof forEach === "object" && !Array.isArray(forEach);
  return {
    items: compileValue(object ? forEach.items : forEach),
    concurrency: object ? forEach.concurrency ?? 1 : 1,
  };
}

/** Options of a mocked sandboxed node: its schema runs only in its sandbox, which is not started. */
const ANY_OPTIONS: NodeType<unknown>["optionsSchema"] = {
  "~standard": { version: 1, vendor: "flowstate", validate: (value) => ({ value }) },
};

/**
 * The type of a mocked node: `schema` checks its options as the real type's
 * would; its `run` is never called (the executor calls the mock instead).
 */
function mockedNodeType(
  type: Pick<NodeType<unknown>, "description">,
  schema: unknown,
): NodeType<unknown> {
  return {
    kind: "flowstate.node",
    ...(type.description === undefined ? {} : { description: type.description }),
    optionsSchema: schema as NodeType<unknown>["optionsSchema"],
    run() {
      throw new Error("a mocked node does not run: its mock stands in for it");
    },
  };
}

/** The problem of node `id` asking for permissions the runner lacks (`missing`, as flags). */
function runnerLacks(id: string, missing: string): string {
  return `node ${id} asks for permissions this runner lacks; add \`${missing}\` to the flags flowstate runs with, or narrow the node's \`permissions:\``;
}
