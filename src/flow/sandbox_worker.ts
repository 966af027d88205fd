/**
 * The inside of a sandboxed node's Worker: loads the node module (imported
 * statically by the generated entry module) and serves `describe`, `validate`
 * and `run` requests from the host. Every state call, log line and sub-flow
 * is a message to the host, which performs it on the node's own views.
 *
 * @module
 */

import { realTimers } from "../clock.ts";
import { errorMessage, logLevel, logLine, maskProblem, sleepProblem } from "./_context_args.ts";
import { serializeValue } from "../store/values.ts";
import { checkExpireIn } from "../store/write_args.ts";
import { parseJson } from "../_json.ts";
import { PING, quoteMessage } from "./_sandbox_messages.ts";
import { routeConsole } from "./_sandbox_console.ts";
import { OptionsError, optionsIssues } from "./_options_error.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

const scope = globalThis as unknown as {
  postMessage(message: unknown): void;
  onmessage: ((event: MessageEvent) => void) | null;
};

/** Arguments as JSON: `undefined` (which JSON cannot hold) as `{}`, a value as `{ v }`. */
function encodeArgs(args: unknown[]): { v?: unknown }[] {
  return args.map((a) => a === undefined ? {} : { v: a });
}

/** An export no module has: importing it fails when Deno links the graph, after loading all of it. */
const GRAPH_CHECK = "__flowstateGraphCheck";

/**
 * An error the node leaves uncaught (a rejection no one handles, a throw in
 * a timer) is sent to the host as `{"op":"crash","message"}`, in the words
 * Deno would have used (`Uncaught (in promise) Error: …`), and not printed:
 * Deno prints a Worker's uncaught error raw on the runner's stderr even when
 * the host handles it, with the node's message (its secrets unmasked) and
 * source line. The host stops the Worker, as it did on `onerror`. What the
 * handlers use is taken now, before the node's code can replace it.
 */
function reportUncaught(post: (message: string) => void): void {
  const preventDefault = Event.prototype.preventDefault;
  const inspect = Deno.inspect;
  const text = (value: unknown): string => {
    try {
      return value instanceof Error ? String(value) : inspect(value);
    } catch {
      return "a value that could not be printed";
    }
  };
  const crash = (event: Event, message: string) => {
    preventDefault.call(event);
    post(JSON.stringify({ op: "crash", message: errorMessage(message) }));
  };
  globalThis.addEventListener("error", (event) => {
    crash(event, `Uncaught ${text((event as ErrorEvent).error ?? (event as ErrorEvent).message)}`);
  });
  globalThis.addEventListener("unhandledrejection", (event) => {
    crash(event, `Uncaught (in promise) ${text(event.reason)}`);
  });
}

/**
 * Load the node module at `url` the way a Worker the runner starts with read
 * on its import reads must: load its whole module graph without running any
 * of it (an import of it beside an export no module has, which fails when
 * Deno links the graph, after every module of it, `import()` with a literal
 * specifier included, was read under the Worker's own permissions), give up
 * read on `revoke` (the import reads the node's `read:` does not cover),
 * then import it. So the node's code, top level included, runs with its
 * declared permissions only, while its imports read what node modules may.
 */
export async function loadChecked(
  url: string,
  revoke: readonly string[],
): Promise<{ default?: unknown }> {
  const check = "data:text/javascript," + encodeURIComponent(
    `import ${JSON.stringify(url)};\nimport { ${GRAPH_CHECK} } from "data:text/javascript,";\n`,
  );
  try {
    await import(check);
    throw new Error("the node module's graph could not be checked before it ran");
  } catch (err) {
    // A link error comes after the whole graph loaded; anything else (a refused read, a syntax
    // error, a missing file) stops the load and is the module's error.
    if (!(err instanceof SyntaxError) || !String(err.message).includes(`'${GRAPH_CHECK}'`)) {
      throw err;
    }
  }
  for (const path of revoke) Deno.permissions.revokeSync({ name: "read", path });
  // Not a literal: loaded under the Worker's own permissions (the graph is loaded already).
  const specifier = url;
  return await import(specifier);
}

/**
 * Load the node module with `load` (the generated entry module's `import()`
 * of it) and serve its default export to the host. A module that fails to
 * load is reported to the host as `loadError`, never as an uncaught error
 * (which Deno would also print to stderr).
 *
 * Every message goes over the `MessagePort` the host sends first on the
 * Worker's own channel (the node cannot reach it); the host checks the
 * Worker's heap by asking on it (`ping`, answered `heap`) while a node runs.
 * What the answers need is taken before the node's module runs, so the node
 * cannot replace it.
 */
export async function serve(load: () => Promise<{ default?: unknown }>): Promise<void> {
  const port = await new Promise<MessagePort>((resolve) => {
    scope.onmessage = (event) => {
      scope.onmessage = null;
      resolve(event.ports[0]);
    };
  });
  const memoryUsage = Deno.memoryUsage.bind(Deno);
  const post = port.postMessage.bind(port);
  reportUncaught(post);
  // Ending the Worker from inside (Deno.exit, close) sends the host no answer: it would wait
  // for one forever. Both throw instead, so the node fails with a reason. So do what would reach
  // beyond the Worker: a prompt on the runner's terminal, the runner's working directory.
  const refuse = (what: string, instead: string) => () => {
    throw new Error(`a node cannot call ${what}: ${instead}`);
  };
  const ending = "throw an error to fail the node, or return to end it";
  const pin = (target: object, name: string, value: unknown) =>
    Object.defineProperty(target, name, { value, configurable: false, writable: false });
  pin(Deno, "exit", refuse("Deno.exit()", ending));
  pin(globalThis, "close", refuse("close()", ending));
  const chdir = refuse(
    "Deno.chdir()",
    "it would change the runner's working directory; use absolute paths (or paths from import.meta.url)",
  );
  pin(Deno, "chdir", chdir);
  const requesting = refuse(
    "Deno.permissions.request()",
    "a node gets the permissions its flow declares under permissions:, never more",
  );
  const permissions = Object.getPrototypeOf(Deno.permissions);
  pin(permissions, "request", (..._: unknown[]) => Promise.reject(requesting.call(null)));
  pin(permissions, "requestSync", requesting);
  // A Worker the node starts has a heap of its own, which no heap check sees: nodes.memoryLimit
  // would not hold (nor would the node's timeout stop what it runs). Deno's Worker, and Node's
  // (node:worker_threads, whose constructor runs EventEmitter.init before it starts a thread).
  const noWorkers = refuse(
    "new Worker()",
    "a Worker's memory would escape nodes.memoryLimit; do the work in the node (await now and then), or list the module under nodes: { trusted: [...] } in the config",
  );
  pin(globalThis, "Worker", function Worker() {
    noWorkers();
  });
  // Not literal specifiers: `deno test` type-checks a Worker's modules as it starts it, and Node's
  // types would take it past nodes.checkTimeout.
  const [eventsModule, threadsModule, hooksModule] = [
    "node:events",
    "node:worker_threads",
    "node:async_hooks",
  ];
  const { EventEmitter } = await import(eventsModule);
  const { Worker: NodeWorker } = await import(threadsModule);
  const init = (EventEmitter as { init: (...a: unknown[]) => unknown }).init;
  // Taken now: the node may replace Reflect.apply, or give the class a Symbol.hasInstance.
  const apply = Reflect.apply;
  const isPrototypeOf = Object.prototype.isPrototypeOf;
  const workerPrototype = NodeWorker.prototype;
  pin(EventEmitter, "init", function (this: unknown, ...args: unknown[]) {
    if (apply(isPrototypeOf, workerPrototype, [this])) noWorkers();
    return apply(init, this, args);
  });
  // The Worker's own channel to the host, which Flowstate never uses: a node posting there (a
  // huge message, over and over) would make the host copy it all before it could stop the node.
  // Only a short quote goes, over the port, and the host stops the Worker.
  pin(globalThis, "postMessage", (data: unknown) => {
    post(JSON.stringify({ op: "stray", quote: quoteMessage(data) }));
  });
  // What the node prints with console.* is its log lines (see _sandbox_console.ts), not the
  // runner's stdout and stderr: recorded, limited and masked as ctx.log lines. Deno's Console,
  // taken before its internals go, formats it as Deno's console does.
  const consoleLines = routeConsole(
    (Deno as unknown as Record<symbol, { Console: never }>)[
      (Deno as unknown as { internal: symbol }).internal
    ],
    (await import(hooksModule)).AsyncLocalStorage,
    (run, message, level) => post(JSON.stringify({ op: "log", run, message, level })),
  );
  // So is what it (or an npm package of it) writes to stdout or stderr itself:
  // process.stdout.write, a Console of its own, Deno.stdout.write. Each write
  // a line, stdout's at info, stderr's at error; `run --json` keeps its stdout.
  const decoder = new TextDecoder();
  for (const [stream, level] of [[Deno.stdout, 1], [Deno.stderr, 3]] as const) {
    const take = (bytes: Uint8Array): number => {
      consoleLines.print(decoder.decode(bytes), level);
      return bytes.byteLength;
    };
    pin(stream, "writeSync", take);
    pin(stream, "write", (bytes: Uint8Array) => {
      try {
        return Promise.resolve(take(bytes));
      } catch (err) {
        return Promise.reject(err);
      }
    });
  }
  // Deno's internals (its ops: a prompt or a chdir without the checks above).
  delete (Deno as unknown as Record<symbol, unknown>)[
    (Deno as unknown as { internal: symbol }).internal
  ];
  // What serves the host stays the host's: an answer to a heap check is built here.
  pin(port, "postMessage", post);
  pin(port, "dispatchEvent", EventTarget.prototype.dispatchEvent);
  let handle: (msg: Any) => void = () => {};
  port.onmessage = (event: MessageEvent) => {
    // ArrayBuffers live outside the heap: counted too, or a node holding buffers is never seen.
    if (event.data === PING) {
      const { heapUsed, external } = memoryUsage();
      post(`{"op":"heap","heapUsed":${heapUsed + external}}`);
    } else handle(parseJson(event.data as string));
  };
  let type: Any;
  try {
    type = (await load()).default;
  } catch (err) {
    post(JSON.stringify({
      op: "loadError",
      error: {
        name: String((err as Error)?.name ?? "Error").slice(0, 200),
        message: errorMessage(String((err as Error)?.message ?? err)),
      },
    }));
    return;
  }
  const send = (message: Record<string, unknown>) => post(JSON.stringify(message));
  const calls = new Map<number, Pending>();
  const aborts = new Map<number, AbortController>();
  let next = 0;
  const call = (run: number, body: Record<string, unknown>): Promise<unknown> => {
    const id = ++next;
    return new Promise((resolve, reject) => {
      calls.set(id, { resolve, reject });
      send({ op: "call", id, run, ...body });
    });
  };
  const view = (run: number, name: string) => {
    const method = (m: string) => (...args: unknown[]): Promise<unknown> => {
      // The value a set writes, and its expireIn, are checked here: on the way out as JSON a
      // Map would become {} and NaN null, unseen (or refused as "got null"). Only those: a
      // read's options may hold what JSON turns into what the host reads the same way (limit:
      // Infinity becomes null, "no limit", as in-process). A refusal is a rejected promise, as
      // in-process, never a throw at the call: `.then(ok, fail)` and `allSettled` see it.
      if (m === "set") {
        try {
          if (args[1] !== undefined) serializeValue(args[1], `ctx.${name}.set()`);
          const expireIn = (args[2] as { expireIn?: unknown } | undefined)?.expireIn;
          if (expireIn !== undefined) checkExpireIn(expireIn, "Cannot set");
        } catch (err) {
          return Promise.reject(err);
        }
      }
      return call(run, { scope: name, method: m, args: encodeArgs(args) });
    };
    return {
      scope: name,
      get: method("get"),
      entry: method("entry"),
      set: method("set"),
      delete: method("delete"),
      increment: method("increment"),
      keys: method("keys"),
      entries: method("entries"),
      query: method("query"),
      search: method("search"),
    };
  };
  // Cut here (as the runner would): a huge message never crosses to the runner.
  const fail = (err: unknown) => ({
    name: String((err as Error)?.name ?? "Error").slice(0, 200),
    message: errorMessage(String((err as Error)?.message ?? err)),
    // The schema's issues, for the host to say where the offending field is in the flow file.
    ...(err instanceof OptionsError ? { issues: err.issues } : {}),
  });
  handle = async (msg: Any) => {
    if (msg.op === "reply") {
      const pending = calls.get(msg.id);
      calls.delete(msg.id);
      if (msg.error) pending?.reject(Object.assign(new Error(msg.error.message), msg.error));
      else pending?.resolve(msg.value);
      return;
    }
    if (msg.op === "abort") {
      aborts.get(msg.run)?.abort(new DOMException(msg.reason ?? "aborted", "AbortError"));
      return;
    }
    if (msg.op === "describe") {
      const ok = typeof type?.run === "function" &&
        typeof type?.optionsSchema?.["~standard"]?.validate === "function";
      send({ op: "done", id: msg.id, value: ok });
      return;
    }
    if (msg.op === "validate") {
      try {
        const result = await type.optionsSchema["~standard"].validate(msg.value);
        send({ op: "done", id: msg.id, value: result.issues ?? null });
      } catch (err) {
        send({ op: "done", id: msg.id, error: fail(err) });
      }
      return;
    }
    if (msg.op !== "run") return;
    const run: number = msg.id;
    const controller = new AbortController();
    aborts.set(run, controller);
    const signal = controller.signal;
    const info = { runId: msg.runId, nodeId: msg.nodeId, attempt: msg.attempt };
    // Settled (and its console lines its own no more) before the host hears it is done. No
    // promise methods here: the node may replace them.
    let answer: string;
    try {
      answer = await consoleLines.attempt(run, info, async () => {
        const checked = await type.optionsSchema["~standard"].validate(msg.input);
        if (checked.issues) {
          // As the in-process executor makes it (`invalid options for ./nodes/x.ts:
          // with.name: …`, its issues kept): the host sends the node's type.
          throw new OptionsError(msg.type, optionsIssues(checked.issues));
        }
        const ctx = {
          node: view(run, "node"),
          flow: view(run, "flow"),
          global: view(run, "global"),
          input: checked.value,
          inputs: msg.inputs,
          runId: msg.runId,
          flowId: msg.flowId,
          nodeId: msg.nodeId,
          attempt: msg.attempt,
          signal,
          // The host's clock, advancing in real time: its offset from the wall clock when the
          // host sent the attempt (0 for the real clock), in whole milliseconds as in-process.
          clock: { now: () => Math.floor(Date.now() + (msg.now - msg.sentAt)) },
          // Checked here, as in-process: the node's own call throws.
          // Cut here (as the runner would): a huge line never crosses to the runner.
          log: (message: string, level?: string) =>
            send({ op: "log", run, message: logLine(message), level: logLevel(level) }),
          // Checked here, as in-process; the runner masks the value from the message on (the
          // node's later log lines and its output come after it, in order).
          mask: (value: string) => {
            const problem = maskProblem(value);
            if (problem !== undefined) throw problem;
            if (value !== "") send({ op: "mask", run, value });
          },
          // The runner's own timers, checked as in-process (and no Node setTimeout, which would
          // print a TimeoutOverflowWarning to stderr and fire at once for Infinity).
          sleep: (ms: number) => {
            const problem = sleepProblem(ms);
            return problem === undefined ? realTimers.sleep(ms, signal) : Promise.reject(problem);
          },
          runFlow: (flow: unknown, input?: unknown) =>
            call(run, { method: "runFlow", args: encodeArgs([flow, input]) }),
        };
        const value = await type.run(ctx, checked.value);
        // Checked (worded as the in-process executor words it): unchecked, JSON would change it
        // unseen. The checked text is sent as it is, not serialized again.
        const text = value === undefined || value === null
          ? "null"
          : serializeValue(value, `node ${msg.nodeId} returned a value that is not JSON`);
        return `{"op":"done","id":${run},"value":${text}}`;
      });
    } catch (err) {
      answer = JSON.stringify({ op: "done", id: run, error: fail(err) });
    } finally {
      aborts.delete(run);
    }
    post(answer);
  };
  send({ op: "ready" });
}
