/**
 * Sandboxed custom nodes: a node module runs in a Worker whose permissions
 * are exactly those its flow declares (`permissions:`). The host keeps the
 * node's state views, log and sub-flows; the Worker reaches them only by
 * messages, so a node reaches only its own flow and node scopes and the
 * global scope. Values cross as JSON.
 *
 * @module
 */
import { captureActor, runAsActor } from "../store/actor.ts";
import type { ChangeActor } from "../store/types.ts";
import { dirname, fromFileUrl, isAbsolute, isWithin, relative, resolve } from "../_path.ts";
import { importReadPaths, protectedBy } from "./_import_reads.ts";
import {
  linkEscape,
  type LinkProblem,
  MAX_LINK_CHECK_ENTRIES,
  type PathPermission,
} from "./_link_escapes.ts";
import { type FileStamp, FLOWSTATE_ROOT, nodeModuleFiles, unchanged } from "./_module_files.ts";
import { type DenoConfigFile, denoConfigsAround, readDenoConfig } from "../_jsonc.ts";
import type { NodeContext, NodeType } from "./node.ts";
import type { NodePermissions } from "./types.ts";
import type { StateView } from "../state/scopes.ts";
import {
  type ErrorShape,
  NOT_UNDERSTOOD,
  PASS_THROUGH,
  PING,
  quoteMessage,
  readWorkerMessage,
  type WorkerMessage,
} from "./_sandbox_messages.ts";
import type { LogLevel } from "../log.ts";
import { MAX_VALUE_BYTES } from "../store/values.ts";
import { OptionsError, type OptionsIssue } from "./_options_error.ts";

/** Deno's permission names a node may declare. */
export const PERMISSION_NAMES = [
  "read",
  "write",
  "net",
  "env",
  "run",
  "sys",
  "ffi",
  "import",
] as const;

/** One Deno permission name. */
export type PermissionName = typeof PERMISSION_NAMES[number];

/** Resolved permissions, as a Worker takes them (every name present). */
export type ResolvedPermissions = Record<PermissionName, boolean | string[]>;

/** The heap a node's Worker may use by default (MiB): `nodes.memoryLimit`. */
export const DEFAULT_WORKER_MEMORY_MIB = 512;

const MIB = 1024 * 1024;

/**
 * The longest message (characters) a node's Worker may send: a state value
 * (at most {@linkcode MAX_VALUE_BYTES} of JSON) with room for its key and
 * envelope. A longer one was not made by Flowstate's code in the Worker.
 */
const MAX_MESSAGE_CHARS = 2 * MAX_VALUE_BYTES + MIB;

/**
 * How long (ms) a flow's check of one custom node module may take by default
 * (loading the module in its Worker and checking its nodes' options):
 * `nodes.checkTimeout`.
 */
export const DEFAULT_CHECK_TIMEOUT_MS = 30_000;

/** How long a Worker whose node was aborted may take to stop before it is terminated (ms). */
export const WORKER_STOP_GRACE = 1000;

const PATH_NAMES = new Set<PermissionName>(["read", "write", "ffi"]);

/**
 * A node's declaration with paths resolved against `baseDir` (the flow file's
 * directory) and every name present: a name not declared is `false`.
 */
export function resolvePermissions(
  declared: NodePermissions | undefined,
  baseDir: string,
): ResolvedPermissions {
  const out = {} as ResolvedPermissions;
  for (const name of PERMISSION_NAMES) {
    const value = declared?.[name] ?? false;
    out[name] = Array.isArray(value) && PATH_NAMES.has(name)
      ? value.map((p) => isAbsolute(p) ? p : resolve(baseDir, p))
      : value;
  }
  return out;
}

/** What an entry of each list may be, for the message about an entry Deno refuses. */
const ENTRY_HINT: Partial<Record<PermissionName, string>> = {
  net: "a host name or IP address, optionally with :port",
  import: "a host name or IP address, optionally with :port",
  sys: "one of Deno's system info names, like hostname or osRelease",
};

/**
 * The first entry of a permission list in `perms` that Deno refuses as a
 * descriptor (a host with a space, a port over 65535, a URL instead of a
 * host, an unknown `sys` name), with Deno's reason: `undefined` when there is
 * none. Checked before anything asks Deno about them, which would throw.
 */
export function invalidPermission(
  perms: ResolvedPermissions,
): { name: PermissionName; index: number; message: string } | undefined {
  for (const name of PERMISSION_NAMES) {
    const value = perms[name];
    if (!Array.isArray(value)) continue;
    for (let index = 0; index < value.length; index++) {
      try {
        Deno.permissions.querySync(describe(name, value[index]));
      } catch (err) {
        const hint = ENTRY_HINT[name];
        return {
          name,
          index,
          message: `${JSON.stringify(value[index])} is not a valid ${name} permission: ${
            (err as Error).message
          }${hint === undefined ? "" : ` (${name} takes ${hint})`}`,
        };
      }
    }
  }
  return undefined;
}

/**
 * The permissions in `perms` that this process lacks, as the flags that would
 * grant them (`--allow-ffi --allow-read=/data,/tmp`), or `undefined` when it
 * has them all: a Worker can never get a permission its runner lacks.
 */
export function missingRunnerPermission(perms: ResolvedPermissions): string | undefined {
  const flags: string[] = [];
  for (const name of PERMISSION_NAMES) {
    const value = perms[name];
    if (value === false) continue;
    const items = value === true ? [undefined] : value;
    const lacking: string[] = [];
    for (const item of items) {
      if (Deno.permissions.querySync(describe(name, item)).state === "granted") continue;
      if (item === undefined) {
        lacking.length = 0;
        flags.push(`--allow-${name}`);
        break;
      }
      lacking.push(item);
    }
    if (lacking.length > 0) flags.push(`--allow-${name}=${lacking.join(",")}`);
  }
  return flags.length === 0 ? undefined : flags.join(" ");
}

function describe(name: PermissionName, item: string | undefined): Deno.PermissionDescriptor {
  if (item === undefined) return { name } as Deno.PermissionDescriptor;
  switch (name) {
    case "read":
    case "write":
    case "ffi":
      return { name, path: item };
    case "net":
    case "import":
      return { name, host: item };
    case "env":
      return { name, variable: item };
    case "run":
      return { name, command: item };
    case "sys":
      return { name, kind: item as Deno.SysPermissionDescriptor["kind"] };
  }
}

/**
 * Whether this process has Deno's worker-options feature (without it,
 * starting a Worker with permissions exits the whole process with code 70,
 * which no `catch` sees). Proofs that it is on: `--unstable-worker-options`
 * on the command line (`/proc/self/cmdline`, readable only with
 * `--allow-all`), or `"unstable": ["worker-options"]` in the deno.json Deno
 * applies (the one given by `--config`, else the nearest one around the main
 * module, or around the working directory for a remote one). It counts as off
 * only when the command line was read and nothing proves it on; when nothing
 * can be read it is assumed on, since refusing would break working setups.
 */
export function workerOptionsEnabled(): boolean {
  // The command line and the config do not change: read them once, not on every node run.
  return workerOptionsFlag ??= readWorkerOptionsFlag();
}

let workerOptionsFlag: boolean | undefined;

function readWorkerOptionsFlag(): boolean {
  const args = commandLine();
  if (args?.some((a) => a === "--unstable-worker-options" || a === "--unstable")) return true;
  if (denoConfigEnablesWorkerOptions(args)) return true;
  return args === undefined;
}

/** This process's arguments; `undefined` when they cannot be read. */
function commandLine(): string[] | undefined {
  const path = "/proc/self/cmdline";
  try {
    if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") return undefined;
    return Deno.readTextFileSync(path).split("\0");
  } catch {
    return undefined; // not Linux, or Deno refuses it without --allow-all (NotCapable)
  }
}

/** Whether the deno.json Deno applies to this process lists `worker-options` under `unstable`. */
function denoConfigEnablesWorkerOptions(args: string[] | undefined): boolean {
  let configs: DenoConfigFile[];
  const given = args === undefined ? undefined : configArgument(args);
  if (given === null) return false; // --no-config
  if (given !== undefined) {
    const config = readDenoConfig(resolve(given));
    configs = config === undefined ? [] : [config];
  } else {
    // Deno applies the deno.json around a file main module, and the working directory's for a
    // jsr:, npm: or remote one. A `links` entry makes `jsr:@flowstate/core/cli` a file: URL of the
    // linked checkout while the project's deno.json (the cwd's) is the one applied: both are
    // looked at, and either listing the feature is proof enough.
    const dirs: string[] = [];
    try {
      const main = Deno.mainModule;
      if (main.startsWith("file:")) dirs.push(dirname(fromFileUrl(main)));
    } catch {
      // no main module to look beside
    }
    try {
      dirs.push(Deno.cwd());
    } catch {
      // no readable working directory
    }
    configs = dirs.flatMap((dir) => denoConfigsAround(dir));
  }
  return configs.some(({ json }) =>
    Array.isArray(json.unstable) && json.unstable.includes("worker-options")
  );
}

/** The `--config`/`-c` file of `args` (before the script); `null` for `--no-config`. */
function configArgument(args: string[]): string | null | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--no-config") return null;
    if ((arg === "--config" || arg === "-c") && i + 1 < args.length) return args[i + 1];
    const inline = arg.match(/^(?:--config=|-c=?)(.+)$/);
    if (inline) return inline[1];
    // The script: what follows it are its own arguments (flowstate's -c is its config file).
    if (/^(file|jsr|npm|https?|data):/.test(arg) || /\.[cm]?[jt]sx?$/.test(arg)) break;
  }
  return undefined;
}

/** The error for a process started without `--unstable-worker-options`. */
export const NO_WORKER_OPTIONS =
  "custom nodes run in Workers with their declared permissions, which needs Deno's --unstable-worker-options flag: add it to the deno run/test command (or list the module under nodes: { trusted: [...] } in the config to run it in-process)";

interface Waiter {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/**
 * How often (ms) the host asks a running node's Worker for its heap. The
 * answer comes from Flowstate's code in the Worker, by a channel the node
 * cannot reach, so the node can neither silence nor fake it.
 */
export const HEAP_CHECK_MS = 50;

/**
 * How long (ms) a running node's Worker may leave a heap check unanswered
 * before it is stopped: it blocked its thread (a synchronous loop the node
 * never yields from) or broke the Worker's messaging.
 */
export const WORKER_SILENCE_MS = 10_000;

/** Where the Worker that starts a node's Worker runs from (see `sandbox_loader.ts`). */
const LOADER_URL = new URL("./sandbox_loader.ts", import.meta.url).href;
/** The inside of a node's Worker (see `sandbox_worker.ts`). */
const SERVE_URL = new URL("./sandbox_worker.ts", import.meta.url).href;

/**
 * How a node's Worker loads its module:
 * - `direct`: the runner starts it with the node's permissions and its entry
 *   imports the module by a literal specifier, so Deno checks the module
 *   graph against the runner: for a node that may read everything anyway,
 *   or a runtime that gives no `importReads`.
 * - `checked`: the runner starts it with read on the node's `read:` paths
 *   and the import reads; it loads the whole graph without running any of
 *   it, gives up the import reads, then imports the module (see
 *   `loadChecked` in `sandbox_worker.ts`). The usual way: ~40 ms a run.
 * - `nested`: started by a Worker that may read only the import reads (see
 *   `sandbox_loader.ts`), which checks the graph, remote modules included,
 *   against the runner's import permission. Deno 2.9 holds a Worker started
 *   by a Worker for 500 ms (its inspector's wait for a debugger), so only a
 *   module whose graph imports remote modules its node's `import:` does not
 *   list starts this way.
 */
type LoadMode = "direct" | "checked" | "nested";

/** Deno's refusal of a remote module in a module graph. */
const REMOTE_REFUSED = /^Requires import access to /;

/** A node Worker's entry module: `body` after the import of what serves the host. */
function entryModule(body: string): string {
  return "data:application/javascript," + encodeURIComponent(
    `import { serve, loadChecked } from ${JSON.stringify(SERVE_URL)};\n${body}\n`,
  );
}

/** One Worker running one node module with one set of permissions. */
export class SandboxWorker {
  /** The node's Worker (`nested`: the Worker that started it); terminating it stops both. */
  #worker: Worker | undefined;
  #port!: MessagePort;
  #waiters = new Map<number, Waiter>();
  #contexts = new Map<number, NodeContext<unknown>>();
  /** Who writes for each request: its state calls arrive by message, outside the node's actor. */
  #actors = new Map<number, ChangeActor | undefined>();
  #ready: Promise<void>;
  /** Settles `#ready` (a Worker stopped while its module loads is ready: dead). */
  #readied!: () => void;
  #next = 0;
  #dead: Error | undefined;
  /** The heap checks while a request is pending; when the oldest unanswered one was sent. */
  #heapChecks: ReturnType<typeof setInterval> | undefined;
  #unansweredSince: number | undefined;
  #importReads: readonly string[] | undefined;
  #mode!: LoadMode;
  /** The module the Worker runs. */
  readonly moduleUrl: string;
  /** The permissions it runs with. */
  readonly permissions: ResolvedPermissions;
  /** Set by the {@linkcode SandboxPool} that started it. */
  poolKey: string | undefined;
  /**
   * The folder its node's `permissions:` paths are relative to (the flow
   * file's), so a permission hint names a path as the flow must write it.
   */
  baseDir: string | undefined;
  /** The heap the Worker may use while a node runs (MiB). */
  readonly memoryLimitMiB: number;

  /**
   * Start a Worker importing `moduleUrl` with `permissions`. Its module graph
   * may read `importReads` (see {@linkcode importReadPaths}) besides what
   * `permissions` allows; with `importReads` `undefined`, everything this
   * process may read (as a Worker started by the runner itself would).
   */
  constructor(
    moduleUrl: string,
    permissions: ResolvedPermissions,
    memoryLimitMiB: number = DEFAULT_WORKER_MEMORY_MIB,
    importReads?: readonly string[],
  ) {
    this.moduleUrl = moduleUrl;
    this.permissions = permissions;
    this.memoryLimitMiB = memoryLimitMiB;
    this.#importReads = importReads;
    let ready!: () => void;
    this.#ready = new Promise<void>((r) => ready = r);
    this.#readied = ready;
    // Creating it may throw (Deno refusing the permissions): the caller reports that.
    this.#start(importReads === undefined || permissions.read === true ? "direct" : "checked");
  }

  #start(mode: LoadMode) {
    this.#mode = mode;
    const { moduleUrl, permissions } = this;
    const ready = this.#readied;
    const channel = new MessageChannel();
    const port = this.#port = channel.port1;
    const stop = (error: Error) => {
      this.#kill(error);
      ready();
    };
    const notUnderstood = (what: string) =>
      stop(new Error(`${NOT_UNDERSTOOD}: ${what}; it was stopped`));
    port.onmessage = (event) => {
      if (port !== this.#port) return; // a Worker replaced by the nested start
      // The Worker runs untrusted code: whatever it sends, nothing here may throw (a throw in
      // this handler is an uncaught error that ends the whole runner).
      try {
        const data = event.data;
        // Before it is parsed: a node that tampers with the Worker's JSON could make the
        // runner parse (and keep) hundreds of MiB per message, as fast as it can send them.
        if (typeof data === "string" && data.length > MAX_MESSAGE_CHARS) {
          return stop(
            new Error(
              `the node's Worker sent a message of ${
                Math.ceil(data.length / MIB)
              } MiB, more than any state call, output or log line can be (${
                MAX_MESSAGE_CHARS / MIB
              } MiB); it was stopped`,
            ),
          );
        }
        const msg = readWorkerMessage(data);
        if ("problem" in msg) notUnderstood(msg.problem);
        else this.#handle(msg, ready);
      } catch (err) {
        notUnderstood((err as Error)?.message);
      }
    };
    port.onmessageerror = () => notUnderstood("it could not be received");
    const readList = permissions.read === true || permissions.read === false
      ? []
      : permissions.read;
    const importReads = this.#importReads ?? [];
    // The module by a literal specifier: its graph is checked against the Worker's creator.
    const literalEntry = entryModule(`await serve(() => import(${JSON.stringify(moduleUrl)}));`);
    let worker: Worker;
    if (mode === "nested") {
      worker = new Worker(LOADER_URL, {
        type: "module",
        deno: {
          permissions: {
            ...permissions,
            read: [...importReads, ...readList],
            // What the node's graph imports from the network is checked as the runner's (as for
            // a Worker the runner starts); the node's own import: list is checked in its Worker.
            import: "inherit",
          },
        },
      } as WorkerOptions);
      worker.onmessage = (event) => {
        const msg = event.data as { op: string; message?: string; quote?: string };
        if (msg?.op === "crash") stop(new Error(String(msg.message)));
        else notUnderstood(String(msg?.quote));
      };
      worker.postMessage({ entry: literalEntry, permissions }, [channel.port2]);
    } else {
      const checked = mode === "checked";
      // What the node may not read once its graph is loaded: the import reads its read: does not
      // cover (a path revoked inside one the node may read would take that one with it).
      const revoke = checked
        ? importReads.filter((p) => !readList.some((r) => isWithin(p, r)))
        : [];
      const entry = checked
        ? entryModule(
          `await serve(() => loadChecked(${JSON.stringify(moduleUrl)}, ${
            JSON.stringify(revoke)
          }));`,
        )
        : literalEntry;
      worker = new Worker(entry, {
        type: "module",
        deno: {
          permissions: checked
            ? { ...permissions, read: [...importReads, ...readList] }
            : permissions,
        },
      } as WorkerOptions);
      // Stopped at its first: a node posting on its Worker's own channel (Flowstate never does).
      worker.onmessage = (event) => notUnderstood(quoteMessage(event.data));
      worker.onmessageerror = () => notUnderstood("it could not be received");
      worker.postMessage("port", [channel.port2]);
    }
    this.#worker = worker;
    worker.onerror = (event) => {
      event.preventDefault();
      if (worker === this.#worker) stop(new Error(event.message));
    };
  }

  #handle(msg: WorkerMessage, ready: () => void) {
    if (msg.op === "ready") ready();
    else if (msg.op === "loadError") {
      const { name, message } = msg.error;
      if (this.#mode === "checked" && REMOTE_REFUSED.test(message)) {
        // A remote module the node's import: does not list, met while the graph loaded (none of
        // it ran): the graph's imports are the runner's to allow, as for a Worker the runner
        // starts. Loaded again the slow way, by a Worker that may read only the import reads.
        this.#stopWorker();
        try {
          this.#start("nested");
        } catch (err) {
          this.#kill(err as Error);
          ready();
        }
        return;
      }
      // Deno's advice (run again with --allow-read) is about the runner, which has it.
      const refused = name === "NotCapable" || name === "PermissionDenied";
      this.#kill(
        Object.assign(
          new Error(
            refused
              ? `${
                message.replace(/, run again with the --allow-\S+ flag/, "")
              } (a node module's imports may read only the project, the flow's and the module's folders and the node's read: paths; never Flowstate's home, the stores, the config or dot-files)`
              : message,
          ),
          { name },
        ),
      );
      ready();
    } else if (msg.op === "done") this.#settle(msg);
    else if (msg.op === "log") {
      try {
        this.#contexts.get(msg.run)?.log(msg.message, msg.level as LogLevel);
      } catch {
        // Its attempt is over, or the level is unknown (the Worker's ctx.log refuses that, so
        // only a message the node posted itself): nothing to throw to, the line is dropped.
      }
    } else if (msg.op === "mask") {
      try {
        this.#contexts.get(msg.run)?.mask(msg.value);
      } catch {
        // Its attempt is over, or the value is too short (the Worker's ctx.mask refuses that,
        // so only a message the node posted itself): nothing to throw to, it is not masked.
      }
    } else if (msg.op === "crash") {
      // As Deno would have reported it to the Worker's onerror (which it also prints raw on
      // the runner's stderr: the node's message, its secrets unmasked, not a log line).
      this.#kill(new Error(msg.message));
      ready();
    } else if (msg.op === "stray") {
      this.#kill(new Error(`${NOT_UNDERSTOOD}: ${msg.quote}; it was stopped`));
      ready();
    } else if (msg.op === "heap") {
      this.#unansweredSince = undefined;
      if (msg.heapUsed <= this.memoryLimitMiB * MIB) return;
      this.#kill(
        new Error(
          `the node's Worker used ${
            Math.round(msg.heapUsed / MIB)
          } MiB of memory (heap and buffers), over its limit of ${this.memoryLimitMiB} MiB (nodes.memoryLimit in the config); it was stopped`,
        ),
      );
    } else if (msg.op === "call") {
      runAsActor(this.#actors.get(msg.run), () => this.#call(msg)).catch((err) =>
        this.#kill(new Error(`${NOT_UNDERSTOOD}: ${(err as Error)?.message}; it was stopped`))
      );
    }
  }

  /** Whether the Worker is gone. */
  get dead(): boolean {
    return this.#dead !== undefined;
  }

  /** Whether a request (a node run, a check) is still pending. */
  get busy(): boolean {
    return this.#waiters.size > 0;
  }

  async #request(op: string, body: Record<string, unknown>, ctx?: NodeContext<unknown>) {
    await this.#ready;
    if (this.#dead) throw this.#dead;
    const id = ++this.#next;
    if (ctx) {
      this.#contexts.set(id, ctx);
      this.#actors.set(id, captureActor());
    }
    return new Promise<unknown>((resolve, reject) => {
      this.#waiters.set(id, { resolve, reject });
      this.#watch();
      this.#port.postMessage(JSON.stringify({ op, id, ...body }));
    }).finally(() => {
      this.#contexts.delete(id);
      this.#actors.delete(id);
    });
  }

  /** Ask for the heap every {@linkcode HEAP_CHECK_MS} while a request is pending. */
  #watch() {
    if (this.#heapChecks !== undefined) return;
    this.#unansweredSince = undefined;
    this.#heapChecks = setInterval(() => {
      if (this.#dead || this.#waiters.size === 0) return this.#unwatch();
      const now = Date.now();
      if (this.#unansweredSince !== undefined && now - this.#unansweredSince > WORKER_SILENCE_MS) {
        return this.#kill(
          new Error(
            `the node's Worker answered no heap check for ${
              WORKER_SILENCE_MS / 1000
            } s: the node blocked its thread (a synchronous loop that never awaits) or broke the Worker's messaging; it was stopped`,
          ),
        );
      }
      this.#unansweredSince ??= now;
      this.#port.postMessage(PING);
    }, HEAP_CHECK_MS);
    Deno.unrefTimer(this.#heapChecks);
  }

  #unwatch() {
    clearInterval(this.#heapChecks);
    this.#heapChecks = undefined;
  }

  #settle(msg: { id: number; value?: unknown; error?: ErrorShape }) {
    const waiter = this.#waiters.get(msg.id);
    this.#waiters.delete(msg.id);
    if (!waiter) return;
    if (msg.error) waiter.reject(nodeError(msg.error, this.baseDir));
    else waiter.resolve(msg.value);
  }

  async #call(msg: WorkerMessage & { op: "call" }) {
    const ctx = this.#contexts.get(msg.run);
    const reply = (body: Record<string, unknown>) => {
      if (!this.#dead) {
        this.#port.postMessage(JSON.stringify({ op: "reply", id: msg.id, ...body }));
      }
    };
    try {
      if (!ctx) throw new Error("the node's attempt is over");
      // Arguments come as `{ v }`, or `{}` for undefined (see sandbox_worker.ts).
      const args = msg.args.map((a) => a.v);
      let value: unknown;
      if (msg.method === "runFlow") {
        value = await ctx.runFlow(args[0] as string, args[1] as Record<string, unknown>);
      } else {
        const scope = msg.scope === "node"
          ? ctx.node
          : msg.scope === "flow"
          ? ctx.flow
          : msg.scope === "global"
          ? ctx.global
          : undefined;
        if (!scope || !STATE_METHODS.has(msg.method)) {
          throw new Error(`unknown state call ${msg.scope}.${msg.method}`);
        }
        value = await (scope[msg.method as keyof StateView] as (...a: unknown[]) => unknown)(
          ...args,
        );
      }
      reply({ value: value === undefined ? null : value });
    } catch (err) {
      reply({ error: { name: (err as Error).name, message: (err as Error).message } });
    }
  }

  /** Whether the module's default export is a node type. */
  async isNodeType(): Promise<boolean> {
    return await this.#request("describe", {}) === true;
  }

  /** The module's optionsSchema issues for `value` (null when valid). */
  async validate(value: unknown): Promise<{ message: string; path?: unknown[] }[] | null> {
    return await this.#request("validate", { value }) as
      | { message: string; path?: unknown[] }[]
      | null;
  }

  /**
   * Run the node for one attempt of `ctx`; `type` (`./nodes/x.ts`) names it in errors. Aborted,
   * the node has `stopGraceMs` to stop before its Worker is terminated.
   */
  async run(
    ctx: NodeContext<unknown>,
    input: unknown,
    type: string,
    stopGraceMs: number = WORKER_STOP_GRACE,
  ): Promise<unknown> {
    const id = this.#next + 1;
    const onAbort = () => {
      if (this.#dead) return;
      this.#port.postMessage(
        JSON.stringify({ op: "abort", run: id, reason: String(ctx.signal.reason ?? "aborted") }),
      );
      const timer = setTimeout(() => {
        if (this.#waiters.has(id)) {
          this.terminate(
            new Error(
              `the node did not stop within ${stopGraceMs} ms of being aborted; its Worker was terminated`,
            ),
          );
        }
      }, stopGraceMs);
      Deno.unrefTimer(timer);
    };
    if (ctx.signal.aborted) throw ctx.signal.reason;
    ctx.signal.addEventListener("abort", onAbort, { once: true });
    try {
      return await this.#request("run", {
        type,
        input: input === undefined ? null : input,
        inputs: ctx.inputs,
        runId: ctx.runId,
        flowId: ctx.flowId,
        nodeId: ctx.nodeId,
        attempt: ctx.attempt,
        now: ctx.clock.now(),
        // The host's wall clock as it sends, so the Worker keeps the offset, not the delay.
        sentAt: Date.now(),
      }, ctx);
    } catch (err) {
      // Its options refused: the executor says where the offending field is in the flow.
      const issues = err instanceof Error ? refusedOptions.get(err) : undefined;
      throw issues === undefined ? err : new OptionsError(type, issues);
    } finally {
      ctx.signal.removeEventListener("abort", onAbort);
    }
  }

  /** Stop the Worker (both, `nested`) and close its port. */
  #stopWorker() {
    this.#worker?.terminate();
    this.#port.close();
  }

  #kill(error: Error) {
    this.#dead ??= error;
    this.#unwatch();
    this.#stopWorker();
    for (const waiter of this.#waiters.values()) waiter.reject(error);
    this.#waiters.clear();
    // A request waiting for the module to load fails now with `error` (see `#request`).
    this.#readied();
  }

  /** Stop the Worker; pending requests fail with `error`. */
  terminate(error: Error = new Error("the node's Worker was stopped")): void {
    if (!this.#dead) this.#kill(error);
  }
}

const STATE_METHODS = new Set([
  "get",
  "entry",
  "set",
  "delete",
  "increment",
  "keys",
  "entries",
  "query",
  "search",
]);

function nodeError(error: ErrorShape, baseDir?: string): Error {
  // A refused dynamic import() is a TypeError saying the same: of a remote module (import
  // access), or of a local file outside the node's read: paths (read access).
  const refused = error.name === "NotCapable" || error.name === "PermissionDenied" ||
    /^Requires (?:import|read) access to "[^"]*", run again with the --allow-(?:import|read) flag/
      .test(error.message);
  const message = refused
    ? `${
      error.message.replace(/, run again with the --allow-\S+ flag/, "")
    } (permission denied: the node may only do what its permissions: in the flow declare${
      permissionHint(error.message, baseDir)
    })`
    : error.message;
  const err = new Error(message);
  err.name = error.name;
  // Options the node's schema refused: `run` makes them an OptionsError (it knows the type).
  if (error.issues !== undefined) refusedOptions.set(err, error.issues);
  return err;
}

/** The issues of the errors that came from a Worker's options check (see `nodeError`). */
const refusedOptions = new WeakMap<Error, OptionsIssue[]>();

/**
 * What to add to the node's `permissions:` for Deno's `Requires net access to
 * "host:port"`: `; hint: add to the node in its flow file: permissions: { net: ["host:port"] }`.
 * Deno quotes a path as the node gave it, relative to the working directory,
 * while the flow's paths are relative to the flow file (`baseDir`): the hint
 * gives the same file relative to `baseDir` (absolute without one).
 */
function permissionHint(message: string, baseDir?: string): string {
  const m = message.match(/Requires (\w+) access(?: to "((?:[^"\\]|\\.)*)")?/);
  if (m === null || !(PERMISSION_NAMES as readonly string[]).includes(m[1])) return "";
  let entry = m[2];
  if (entry !== undefined && PATH_NAMES.has(m[1] as PermissionName) && !isAbsolute(entry)) {
    entry = flowRelativePath(entry, baseDir);
  }
  const value = entry === undefined ? "true" : `[${JSON.stringify(entry)}]`;
  return `; hint: add to the node in its flow file: permissions: { ${m[1]}: ${value} }`;
}

/** `path` (relative to the working directory) as a flow in `baseDir` names it. */
function flowRelativePath(path: string, baseDir: string | undefined): string {
  let absolute: string;
  try {
    absolute = resolve(Deno.cwd(), path);
  } catch {
    return path; // The working directory cannot be read: Deno's path as it is.
  }
  if (baseDir === undefined) return absolute;
  const rel = relative(baseDir, absolute);
  if (rel === "") return ".";
  return rel.startsWith("..") || isAbsolute(rel) ? rel : `./${rel}`;
}

/** What a {@linkcode SandboxPool} keeps a Worker under: module, permissions, and the module file's version. */
function poolKey(moduleUrl: string, permissions: ResolvedPermissions): string {
  let version = "";
  if (moduleUrl.startsWith("file:")) {
    try {
      const info = Deno.statSync(new URL(moduleUrl));
      version = `${info.mtime?.getTime() ?? ""}:${info.size}`;
    } catch {
      version = "missing";
    }
  }
  return `${moduleUrl}\n${JSON.stringify(permissions)}\n${version}`;
}

/**
 * The `file:` URL a node module loads from: `moduleUrl` itself, or where Deno
 * resolves a specifier to a local file (a `jsr:` package that the project's
 * `links` point at a folder, say); `undefined` for a module Deno fetches.
 */
function localModuleUrl(moduleUrl: string): string | undefined {
  if (moduleUrl.startsWith("file:")) return moduleUrl;
  try {
    const resolved = import.meta.resolve(moduleUrl);
    return resolved.startsWith("file:") ? resolved : undefined;
  } catch {
    return undefined; // Not resolvable here: the Worker's import says why.
  }
}

/** A node module in a place node modules may not read (the home, a store file, the config). */
export class ProtectedModuleError extends Error {
  override name = "ProtectedModuleError";
}

/**
 * A node's `read:`, `write:` or `ffi:` entry that holds a symbolic link
 * leading outside that list (see `_link_escapes.ts`); `name` and `index` say
 * which entry, as the flow writes it.
 */
export class LinkEscapeError extends Error {
  override name = "LinkEscapeError";
  /** The permission. */
  readonly permission: PathPermission;
  /** The entry's index in its list. */
  readonly index: number;
  /** Build the error for `problem`, naming paths relative to `baseDir` (the flow's folder). */
  constructor(problem: LinkProblem, entry: string, baseDir: string | undefined) {
    const shown = (path: string) => flowRelativePath(path, baseDir);
    const { name } = problem;
    super(
      problem.kind === "tooMany"
        ? `${name}: ${
          shown(entry)
        } holds more than ${MAX_LINK_CHECK_ENTRIES} entries, too many to check for symbolic links leading out of it (Deno follows them); declare the folders the node needs instead`
        : `${name}: ${shown(entry)} holds ${
          shown(problem.link)
        }, a symbolic link to ${problem.target}, outside the node's ${name}: paths (Deno follows links, so the node could ${
          name === "ffi" ? "load" : name
        } there); if it may, add ${
          // Beside the flow: as the flow would write it; elsewhere, absolute.
          shown(problem.target).startsWith("..")
            ? problem.target
            : shown(problem.target)} to its ${name}:, else remove the link`,
    );
    this.permission = name;
    this.index = problem.index;
  }
}

/** Options of a {@linkcode SandboxPool}. */
export interface SandboxPoolOptions {
  /** How long (ms) an idle Worker is kept; 0 (the default): only while held. */
  idleMs?: number;
  /** The heap (MiB) a node's Worker may use while a node runs. */
  memoryLimitMiB?: number;
  /** The project's folder, whose files node modules may import (default: the working directory). */
  projectDir?: string;
  /**
   * Flow checks that may hold Workers at once (default: two per CPU core, at
   * least 2): a burst of enqueues or runs of flows with custom nodes starts
   * at most this many check Workers together; the others wait their turn.
   */
  maxChecks?: number;
  /**
   * How long (ms) a flow's check of one custom node module may take: loading
   * the module in its Worker and checking its nodes' options (default
   * {@linkcode DEFAULT_CHECK_TIMEOUT_MS}). Past it the Worker is stopped, the
   * check's turn given back, and the flow fails to load.
   */
  checkTimeoutMs?: number;
  /**
   * Idle Workers kept at most, over all modules (default: two per CPU core,
   * at least 8); past it, the one idle longest is stopped.
   */
  maxIdle?: number;
  /**
   * Absolute paths no node module may read through its imports: Flowstate's
   * home, the store files, the config file. Default: the home Flowstate
   * would use here (`$FLOWSTATE_HOME`, or `.flowstate` in the working
   * directory). A function is called when the first Worker starts (the
   * runtime's home may come from an environment variable read only then).
   */
  protect?: readonly string[] | (() => readonly string[]);
}

/** An idle Worker of a pool, with its stop timer and its release's number. */
interface IdleEntry {
  worker: SandboxWorker;
  timer?: ReturnType<typeof setTimeout>;
  since?: number;
}

/** `value` if a whole number >= 1, `fallback` if undefined; else a RangeError naming `name`. */
function positiveWhole(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot create a sandbox pool: ${name} must be a whole number >= 1 (got ${value})`,
    );
  }
  return value;
}

function defaultProtected(cwd: string): string[] {
  let home: string | undefined;
  try {
    home = Deno.env.get("FLOWSTATE_HOME");
  } catch {
    // No env permission: the default home.
  }
  return [home ? resolve(cwd, home) : resolve(cwd, ".flowstate")];
}

/**
 * The Workers of sandboxed node modules, kept between uses so that checking a
 * flow and running it start one Worker per module, and so that runs in a
 * long-lived process (the daemon) reuse them.
 *
 * A Worker is handed to one run at a time (runs never share one), and it is
 * put back only when it is idle and alive. An idle Worker is kept for
 * `idleMs`, or, with `idleMs` 0, while a {@linkcode SandboxPool.hold} is open
 * (from checking a flow until its run ends). A Worker whose module changed
 * since it loaded it, the module file or any local file of its graph (see
 * `_module_files.ts`: recorded when the Worker starts, one `stat` each when it
 * is reused), is never handed out: it is stopped and a new one started.
 * {@linkcode SandboxPool.close} stops them all: an idle Worker keeps its
 * process alive.
 */
export class SandboxPool {
  #idle = new Map<string, IdleEntry[]>();
  /** Releases so far: an idle entry's `since`, to find the one idle longest. */
  #releases = 0;
  /** The local files of each started Worker's module graph, with their status at its start. */
  #graphs = new WeakMap<SandboxWorker, readonly FileStamp[]>();
  #holds = 0;
  #closed = false;
  #idleMs: number;
  readonly #memoryLimitMiB: number;
  /** Workers started by this pool (for tests and benchmarks). */
  started = 0;
  /** The most flow checks that held Workers at once (for tests). */
  peakChecks = 0;
  readonly #maxChecks: number;
  /** How long (ms) a flow's check of one node module may take (see `SandboxPoolOptions.checkTimeoutMs`). */
  readonly checkTimeoutMs: number;
  readonly #maxIdle: number;
  #checks = 0;
  /** Checks waiting for a turn, first come first served. */
  #waiting: { go: () => void }[] = [];

  /**
   * A pool keeping idle Workers for `idleMs` (0: only while held), each
   * stopped when its heap passes `memoryLimitMiB` while a node runs.
   */
  constructor(options: SandboxPoolOptions = {}) {
    this.#idleMs = options.idleMs ?? 0;
    const perCore = Math.max(1, navigator.hardwareConcurrency ?? 1) * 2;
    this.#maxChecks = positiveWhole(options.maxChecks, Math.max(2, perCore), "maxChecks");
    this.#maxIdle = positiveWhole(options.maxIdle, Math.max(8, perCore), "maxIdle");
    this.#memoryLimitMiB = options.memoryLimitMiB ?? DEFAULT_WORKER_MEMORY_MIB;
    const limit = options.checkTimeoutMs;
    if (limit !== undefined && !(Number.isFinite(limit) && limit > 0)) {
      throw new RangeError(
        `Cannot create a sandbox pool: checkTimeoutMs must be a number of milliseconds > 0 (got ${limit})`,
      );
    }
    this.checkTimeoutMs = limit ?? DEFAULT_CHECK_TIMEOUT_MS;
    this.#projectDir = options.projectDir;
    this.#protect = options.protect;
  }

  readonly #projectDir: string | undefined;
  #protect: readonly string[] | (() => readonly string[]) | undefined;

  /** How long (ms) an idle Worker is kept; applies to Workers released from now on. */
  get idleMs(): number {
    return this.#idleMs;
  }
  set idleMs(ms: number) {
    this.#idleMs = ms;
  }

  /**
   * A Worker for `moduleUrl` with `permissions`, its module graph reading
   * only from `baseDir` (the flow's folder), the module's folder, the
   * project and Flowstate, minus the protected paths: an idle one, or a new
   * one.
   */
  acquire(moduleUrl: string, permissions: ResolvedPermissions, baseDir?: string): SandboxWorker {
    const cwd = Deno.cwd();
    if (typeof this.#protect === "function") this.#protect = this.#protect();
    const protect = this.#protect ?? defaultProtected(cwd);
    const roots = [this.#projectDir ?? cwd, ...(baseDir === undefined ? [] : [baseDir])];
    let modulePath: string | undefined;
    const fileUrl = localModuleUrl(moduleUrl);
    if (fileUrl !== undefined) {
      modulePath = fromFileUrl(fileUrl);
      roots.push(dirname(modulePath));
    }
    if (FLOWSTATE_ROOT !== undefined) roots.push(FLOWSTATE_ROOT);
    // At every hand-out, a kept Worker's too: a link made since it started is seen.
    const escape = linkEscape(permissions);
    if (escape !== undefined) {
      throw new LinkEscapeError(
        escape,
        (permissions[escape.name] as string[])[escape.index],
        baseDir,
      );
    }
    const key = poolKey(moduleUrl, permissions) + `\n${JSON.stringify(roots)}`;
    const idle = this.#idle.get(key);
    while (idle && idle.length > 0) {
      const entry = idle.pop()!;
      clearTimeout(entry.timer);
      if (entry.worker.dead) continue;
      // A file its module imports changed since it loaded them: a new Worker loads them again.
      if (unchanged(this.#graphs.get(entry.worker) ?? [])) return entry.worker;
      entry.worker.terminate();
    }
    if (idle?.length === 0) this.#idle.delete(key);
    this.started++;
    const inside = modulePath === undefined ? undefined : protectedBy(modulePath, protect);
    if (inside !== undefined) {
      throw new ProtectedModuleError(
        `${modulePath} is inside ${inside}, which node modules may not read (Flowstate's home, a store file or the config): move the module out of it`,
      );
    }
    // Before the Worker reads them: an edit while it loads is a change at its next reuse.
    const graph = modulePath === undefined ? [] : nodeModuleFiles(modulePath);
    const worker = new SandboxWorker(
      moduleUrl,
      permissions,
      this.#memoryLimitMiB,
      importReadPaths(roots, protect),
    );
    worker.poolKey = key;
    worker.baseDir = baseDir;
    this.#graphs.set(worker, graph.slice(1)); // the module file itself is in its key
    return worker;
  }

  /**
   * Wait for a turn to check a flow's custom nodes in Workers (at most
   * `maxChecks` at once; first come, first served). Dispose of the handle
   * when the check gave its Workers back. Rejects with the signal's reason
   * when `signal` aborts while waiting.
   */
  async checkTurn(signal?: AbortSignal): Promise<Disposable> {
    signal?.throwIfAborted();
    if (this.#checks >= this.#maxChecks) {
      await new Promise<void>((resolve, reject) => {
        const waiter = {
          go: () => {
            signal?.removeEventListener("abort", abort);
            resolve();
          },
        };
        const abort = () => {
          const at = this.#waiting.indexOf(waiter);
          if (at >= 0) this.#waiting.splice(at, 1);
          reject(signal!.reason);
        };
        signal?.addEventListener("abort", abort, { once: true });
        this.#waiting.push(waiter);
      });
    } else {
      this.#checks++;
    }
    // A turn handed over by `go` keeps the count as it was (the leaver's place).
    this.peakChecks = Math.max(this.peakChecks, this.#checks);
    let open = true;
    return {
      [Symbol.dispose]: () => {
        if (!open) return;
        open = false;
        const next = this.#waiting.shift();
        if (next !== undefined) next.go();
        else this.#checks--;
      },
    };
  }

  /** Give `worker` back: kept when alive, idle and wanted, else stopped. */
  release(worker: SandboxWorker): void {
    const key = worker.poolKey;
    if (
      this.#closed || worker.dead || worker.busy || key === undefined ||
      (this.#idleMs === 0 && this.#holds === 0) ||
      !key.startsWith(poolKey(worker.moduleUrl, worker.permissions) + "\n")
    ) {
      worker.terminate();
      return;
    }
    const entry: IdleEntry = { worker };
    if (this.#idleMs > 0) {
      entry.timer = setTimeout(() => this.#drop(key, entry), this.#idleMs);
    }
    const list = this.#idle.get(key) ?? [];
    list.push(entry);
    this.#idle.set(key, list);
    entry.since = ++this.#releases;
    // Past the cap, the Worker idle longest goes.
    while (this.idle > this.#maxIdle) {
      let oldest: [string, IdleEntry] | undefined;
      for (const [k, entries] of this.#idle) {
        for (const e of entries) {
          if (oldest === undefined || e.since! < oldest[1].since!) oldest = [k, e];
        }
      }
      this.#drop(oldest![0], oldest![1]);
    }
  }

  #drop(key: string, entry: IdleEntry) {
    const list = this.#idle.get(key);
    const at = list?.indexOf(entry) ?? -1;
    if (at >= 0) list!.splice(at, 1);
    if (list?.length === 0) this.#idle.delete(key);
    clearTimeout(entry.timer);
    entry.worker.terminate();
  }

  /**
   * Keep released Workers until the returned handle is disposed, even with
   * `idleMs` 0: a flow's check and its run share them.
   */
  hold(): Disposable {
    this.#holds++;
    let open = true;
    return {
      [Symbol.dispose]: () => {
        if (!open) return;
        open = false;
        if (--this.#holds === 0 && this.#idleMs === 0) this.#stopIdle();
      },
    };
  }

  /** Idle Workers kept now (for tests). */
  get idle(): number {
    let n = 0;
    for (const list of this.#idle.values()) n += list.length;
    return n;
  }

  #stopIdle() {
    for (const [key, list] of [...this.#idle]) {
      for (const entry of [...list]) this.#drop(key, entry);
    }
  }

  /** Stop every idle Worker; Workers released later are stopped at once. */
  close(): void {
    this.#closed = true;
    this.#stopIdle();
  }
}

/**
 * A node type that runs `moduleUrl` in a Worker with `permissions`: one
 * Worker per run, taken from `pool` on first use and shared by every node and
 * attempt of that run using the module, until {@linkcode releaseSandbox} (the
 * end of that run) gives it back. Aborted, a node has `options.stopGraceMs`
 * ({@linkcode WORKER_STOP_GRACE} by default) to stop before its Worker is
 * terminated.
 */
export function sandboxedNodeType(
  moduleUrl: string,
  name: string,
  permissions: ResolvedPermissions,
  pool: SandboxPool,
  baseDir?: string,
  options: { stopGraceMs?: number } = {},
): NodeType<unknown> {
  const workers = new Map<string, SandboxWorker>();
  const type: NodeType<unknown> & { [RELEASE]: (runId: string) => void } = {
    kind: "flowstate.node",
    name,
    // The real schema runs inside the Worker.
    optionsSchema: PASS_THROUGH as unknown as NodeType<unknown>["optionsSchema"],
    run: (ctx, input) => {
      if (!workerOptionsEnabled()) throw new Error(NO_WORKER_OPTIONS);
      const missing = missingRunnerPermission(permissions);
      if (missing !== undefined) {
        throw new Error(
          `node ${ctx.nodeId} (${name}) declares permissions this runner lacks; add \`${missing}\` to the flags flowstate runs with, or narrow the node's \`permissions:\``,
        );
      }
      let worker = workers.get(ctx.runId);
      if (!worker || worker.dead) {
        worker = pool.acquire(moduleUrl, permissions, baseDir);
        workers.set(ctx.runId, worker);
      }
      return worker.run(ctx, input, name, options.stopGraceMs);
    },
    [RELEASE]: (runId: string) => {
      const worker = workers.get(runId);
      workers.delete(runId);
      if (worker) pool.release(worker);
    },
  };
  return type;
}

const RELEASE = Symbol("flowstate.sandbox.release");

/** Give back the Worker a sandboxed node type took for run `runId` (the run is over). */
export function releaseSandbox(type: NodeType<unknown>, runId: string): void {
  (type as { [RELEASE]?: (runId: string) => void })[RELEASE]?.(runId);
}
