/**
 * The built-in node types.
 *
 * | type | with | output |
 * | --- | --- | --- |
 * | `state.get` | `scope`, `key`, `store?`, `default?` | the value, or `default` (or `null`) |
 * | `state.set` | `scope`, `key`, `value`, `store?`, `expireIn?` | the value written |
 * | `state.delete` | `scope`, `key`, `store?` | whether it existed |
 * | `state.increment` | `scope`, `key`, `by?` (1), `store?` | the new number (atomic) |
 * | `state.list` | `scope`, `prefix?`, `limit?`, `store?` | `[{ key, value }]` |
 * | `state.query` | `scope`, `prefix?`, `where?`, `orderBy?`, `limit?`, `offset?`, `store?` | `[{ key, value }]` |
 * | `state.search` | `scope`, `text`, `prefix?`, `fields?`, `limit?`, `store?` | `[{ key, value, score }]` |
 * | `log` | `message`, `level?` | the message |
 * | `transform` | `value` | the value (templates evaluated) |
 * | `delay` | `for` (a duration) | `null` |
 * | `fail` | `message?` | never: fails the node |
 * | `flow` | `flow` (path or definition), `input?` | the sub-flow's outputs |
 * | `queue` | `flow` (id or path), `input?`, `delay?`, `key?`, `priority?`, `maxAttempts?` | `{ runId, existing }` |
 * | `http` | `url`, `method?` (GET), `headers?`, `query?`, `body?`, `responseType?` (auto), `expectStatus?` (2xx), `maxBytes?` (10 MiB), `followRedirects?` (true) | `{ status, headers, body }` |
 * | `wait` | `signal` (a literal name), `timeout?`, `message?` | the signal's data (`null` when none) |
 * | `exec` | `command`, `args?`, `cwd?`, `env?`, `stdin?`, `okCodes?` ([0]), `stdout?` (text), `maxBytes?` (1 MiB) | `{ code, stdout, stderr }` |
 *
 * `scope` is `node`, `flow` (default) or `global`. The `http` node runs its
 * request in a Worker that may reach only the hosts its node declares under
 * `permissions: { net: [...] }` (see `http_node.ts`); the `exec` node starts
 * its program from a Worker that may start only the programs its node
 * declares under `permissions: { run: [...] }` (see `exec_node.ts`).
 *
 * @module
 */
import type { z } from "zod";
import { durationProblem, formatDurationExactly, parseDuration } from "../duration.ts";
import { SIGNAL_NAME, SIGNAL_POLL_MS, WAITING_FOR_SIGNAL } from "./_signal_name.ts";
import {
  type FastCheck,
  isFiniteNumber,
  isStateKey,
  type LazySchema,
  lazySchema,
  plainWith,
  type SchemaResult,
} from "../_lazy_schema.ts";
import type { OptionsSchema } from "../plugin_define.ts";
import { defineNode, type NodeType } from "./node.ts";
import type { nodeSchemas } from "./node_schemas.ts";
import type { BuiltinNodeType } from "./types.ts";
import {
  DEFAULT_MAX_BYTES,
  HEADER_NAME,
  HEADER_VALUE_BAD,
  HTTP_METHODS,
  type HttpMethod,
  type HttpOptions,
  httpUrlProblem,
  netProblem,
  type QueryValue,
  requestUrl,
} from "./_http.ts";
import {
  DEFAULT_EXEC_MAX_BYTES,
  EXEC_ENV_NAME,
  EXEC_ENV_REFUSED,
  type ExecOptions,
  NUL,
  runProblem,
  STDOUT_FORMATS,
  type StdoutFormat,
} from "./_exec.ts";

type Schemas = typeof nodeSchemas;
type Options<N extends keyof Schemas> = z.output<Schemas[N]>;

/**
 * The options schema of node type `name`: `fast` answers the usual options; the
 * zod schema (`node_schemas.ts`) is imported for anything else (see `_lazy_schema.ts`).
 */
function schemaOf<N extends keyof Schemas>(
  name: N,
  fast?: FastCheck<Options<N>>,
): LazySchema<Options<N>> {
  return lazySchema(
    async () =>
      (await import("./node_schemas.ts")).nodeSchemas[name] as unknown as OptionsSchema<
        Options<N>
      >,
    fast,
  );
}

// The fast checks: each accepts only options it is sure the zod schema accepts, and returns what
// zod returns for them (defaults filled in, arrays copied); `undefined` defers to zod.
const SCOPE_NAMES: ReadonlySet<string> = new Set(["node", "flow", "global"]);
type Scope = "node" | "flow" | "global";
const LOG_LEVELS: ReadonlySet<string> = new Set(["debug", "info", "warn", "error"]);
const GET_KEYS: ReadonlySet<string> = new Set(["scope", "key", "store", "default"]);
const SET_KEYS: ReadonlySet<string> = new Set(["scope", "key", "value", "store", "expireIn"]);
const DELETE_KEYS: ReadonlySet<string> = new Set(["scope", "key", "store"]);
const INCREMENT_KEYS: ReadonlySet<string> = new Set(["scope", "key", "by", "store"]);
const LIST_KEYS: ReadonlySet<string> = new Set(["scope", "prefix", "limit", "store"]);
const LOG_KEYS: ReadonlySet<string> = new Set(["message", "level"]);
const VALUE_KEYS: ReadonlySet<string> = new Set(["value"]);
const FOR_KEYS: ReadonlySet<string> = new Set(["for"]);
const WAIT_KEYS: ReadonlySet<string> = new Set(["signal", "timeout", "message"]);
const MESSAGE_KEYS: ReadonlySet<string> = new Set(["message"]);
const HTTP_KEYS: ReadonlySet<string> = new Set([
  "url",
  "method",
  "headers",
  "query",
  "body",
  "responseType",
  "expectStatus",
  "maxBytes",
  "followRedirects",
]);
const METHODS: ReadonlySet<string> = new Set(HTTP_METHODS);
const EXEC_KEYS: ReadonlySet<string> = new Set([
  "command",
  "args",
  "cwd",
  "env",
  "stdin",
  "okCodes",
  "stdout",
  "maxBytes",
]);
const STDOUTS: ReadonlySet<string> = new Set(STDOUT_FORMATS);
const RESPONSE_TYPES: ReadonlySet<string> = new Set(["auto", "json", "text"]);

/** A plain object (as JSON makes) whose every value `check` accepts, copied; else `undefined`. */
function plainRecord<T>(
  value: unknown,
  check: (key: string, item: unknown) => boolean,
): Record<string, T> | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  if (Object.getPrototypeOf(value) !== Object.prototype) return undefined;
  if (Object.getOwnPropertySymbols(value).length > 0) return undefined;
  const out: Record<string, T> = {};
  for (const key of Object.getOwnPropertyNames(value)) {
    const d = Object.getOwnPropertyDescriptor(value, key)!;
    if (key === "__proto__" || !d.enumerable || !("value" in d) || !check(key, d.value)) {
      return undefined;
    }
    out[key] = d.value as T;
  }
  return out;
}

const isQueryScalar = (v: unknown): v is QueryValue =>
  typeof v === "string" || typeof v === "boolean" || isFiniteNumber(v);
/** An `exec` argument or variable value as it is passed (its text), or `undefined`. */
const argumentText = (v: unknown): string | undefined => {
  const text = typeof v === "string" || typeof v === "boolean" || isFiniteNumber(v)
    ? String(v)
    : undefined;
  return text === undefined || NUL.test(text) ? undefined : text;
};
const isExitCode = (v: unknown): v is number =>
  Number.isInteger(v) && v as number >= 0 && v as number <= 255;
const isStatus = (v: unknown): v is number =>
  Number.isInteger(v) && v as number >= 100 && v as number <= 599;

/** `scope` (default `flow`), `key` and `store?` of a state node, or `undefined`. */
function stateBase(
  o: Record<string, unknown>,
): { scope: Scope; key: string | string[]; store?: string } | undefined {
  const scope = "scope" in o ? o.scope : "flow";
  if (typeof scope !== "string" || !SCOPE_NAMES.has(scope)) return undefined;
  if (!isStateKey(o.key)) return undefined;
  const key = typeof o.key === "string" ? o.key : [...o.key];
  if (!("store" in o)) return { scope: scope as Scope, key };
  if (typeof o.store !== "string" || o.store === "") return undefined;
  return { scope: scope as Scope, key, store: o.store };
}

/** A duration option as the schema takes it (a number ≥ 0, or a non-empty string it parses). */
function isDuration(value: unknown): value is number | string {
  const shape = typeof value === "string" ? value !== "" : isFiniteNumber(value) && value >= 0;
  return shape && durationProblem(value) === undefined;
}

const fast = {
  stateGet(v: unknown) {
    if (!plainWith(v, GET_KEYS)) return undefined;
    const base = stateBase(v);
    if (base === undefined) return undefined;
    return { value: "default" in v ? { ...base, default: v.default } : base };
  },
  stateSet(v: unknown) {
    if (!plainWith(v, SET_KEYS)) return undefined;
    const base = stateBase(v);
    if (base === undefined || !("value" in v)) return undefined;
    if (!("expireIn" in v)) return { value: { ...base, value: v.value } };
    if (!isDuration(v.expireIn)) return undefined;
    return { value: { ...base, value: v.value, expireIn: v.expireIn } };
  },
  stateDelete(v: unknown) {
    if (!plainWith(v, DELETE_KEYS)) return undefined;
    const base = stateBase(v);
    return base === undefined ? undefined : { value: base };
  },
  stateIncrement(v: unknown) {
    if (!plainWith(v, INCREMENT_KEYS)) return undefined;
    const base = stateBase(v);
    const by = "by" in v ? v.by : 1;
    if (base === undefined || !isFiniteNumber(by)) return undefined;
    return { value: { ...base, by } };
  },
  stateList(v: unknown) {
    if (!plainWith(v, LIST_KEYS)) return undefined;
    const { prefix, limit, ...rest } = v;
    const base = stateBase({ ...rest, key: "-" });
    if (base === undefined) return undefined;
    const value: { scope: Scope; store?: string; prefix?: string | string[]; limit?: number } = {
      scope: base.scope,
      ...(base.store === undefined ? {} : { store: base.store }),
    };
    if ("prefix" in v) {
      if (!isStateKey(prefix)) return undefined;
      value.prefix = typeof prefix === "string" ? prefix : [...prefix];
    }
    if ("limit" in v) {
      if (!Number.isSafeInteger(limit) || (limit as number) <= 0) return undefined;
      value.limit = limit as number;
    }
    return { value };
  },
  log(v: unknown) {
    if (!plainWith(v, LOG_KEYS) || !("message" in v)) return undefined;
    const level = "level" in v ? v.level : "info";
    if (typeof level !== "string" || !LOG_LEVELS.has(level)) return undefined;
    let message: string;
    try {
      message = typeof v.message === "string" ? v.message : JSON.stringify(v.message) ?? "";
    } catch {
      return undefined;
    }
    return { value: { message, level: level as "debug" | "info" | "warn" | "error" } };
  },
  transform(v: unknown) {
    if (!plainWith(v, VALUE_KEYS) || !("value" in v)) return undefined;
    return { value: { value: v.value } };
  },
  delay(v: unknown) {
    if (!plainWith(v, FOR_KEYS) || !isDuration(v.for)) return undefined;
    return { value: { for: v.for } };
  },
  http(v: unknown): { value: HttpOptions } | undefined {
    if (!plainWith(v, HTTP_KEYS)) return undefined;
    if (typeof v.url !== "string" || httpUrlProblem(v.url) !== undefined) return undefined;
    const method = "method" in v ? v.method : "GET";
    if (typeof method !== "string" || !METHODS.has(method.toUpperCase())) return undefined;
    const headers = plainRecord<string>(
      "headers" in v ? v.headers : {},
      (k, item) => HEADER_NAME.test(k) && typeof item === "string" && !HEADER_VALUE_BAD.test(item),
    );
    const query = plainRecord<QueryValue | QueryValue[]>(
      "query" in v ? v.query : {},
      (_, item) =>
        isQueryScalar(item) ||
        (Array.isArray(item) && Object.getPrototypeOf(item) === Array.prototype &&
          Object.keys(item).length === item.length && item.every(isQueryScalar)),
    );
    const responseType = "responseType" in v ? v.responseType : "auto";
    const maxBytes = "maxBytes" in v ? v.maxBytes : DEFAULT_MAX_BYTES;
    const followRedirects = "followRedirects" in v ? v.followRedirects : true;
    const upper = method.toUpperCase() as HttpMethod;
    if (
      headers === undefined || query === undefined || typeof responseType !== "string" ||
      !RESPONSE_TYPES.has(responseType) || !Number.isSafeInteger(maxBytes) ||
      (maxBytes as number) <= 0 || typeof followRedirects !== "boolean" ||
      ("body" in v && (upper === "GET" || upper === "HEAD"))
    ) {
      return undefined;
    }
    const value: HttpOptions = {
      url: v.url,
      method: upper,
      headers,
      query: Object.fromEntries(
        Object.entries(query).map(([k, q]) => [k, Array.isArray(q) ? [...q] : q]),
      ),
      responseType: responseType as HttpOptions["responseType"],
      maxBytes: maxBytes as number,
      followRedirects,
    };
    if ("body" in v) value.body = v.body;
    if ("expectStatus" in v) {
      const s = v.expectStatus;
      if (isStatus(s)) value.expectStatus = [s];
      else if (Array.isArray(s) && s.length > 0 && s.every(isStatus)) value.expectStatus = [...s];
      else return undefined;
    }
    return { value };
  },
  exec(v: unknown): { value: ExecOptions } | undefined {
    if (!plainWith(v, EXEC_KEYS)) return undefined;
    const { command, cwd, stdin } = v;
    if (typeof command !== "string" || command === "" || NUL.test(command)) return undefined;
    const rawArgs = "args" in v ? v.args : [];
    if (!Array.isArray(rawArgs) || Object.getPrototypeOf(rawArgs) !== Array.prototype) {
      return undefined;
    }
    const args = [...rawArgs].map(argumentText);
    if (args.some((a) => a === undefined) || args.length !== rawArgs.length) return undefined;
    const env = plainRecord<string | number | boolean>(
      "env" in v ? v.env : {},
      (k, item) =>
        EXEC_ENV_NAME.test(k) && !EXEC_ENV_REFUSED.test(k) && argumentText(item) !== undefined,
    );
    const okCodes = "okCodes" in v ? v.okCodes : [0];
    const stdout = "stdout" in v ? v.stdout : "text";
    const maxBytes = "maxBytes" in v ? v.maxBytes : DEFAULT_EXEC_MAX_BYTES;
    if (
      env === undefined || ("cwd" in v && (typeof cwd !== "string" || cwd === "")) ||
      ("stdin" in v && typeof stdin !== "string") || typeof stdout !== "string" ||
      !STDOUTS.has(stdout) || !Number.isSafeInteger(maxBytes) || (maxBytes as number) <= 0
    ) {
      return undefined;
    }
    let codes: number[];
    if (isExitCode(okCodes)) codes = [okCodes];
    else if (Array.isArray(okCodes) && okCodes.length > 0 && okCodes.every(isExitCode)) {
      codes = [...okCodes];
    } else return undefined;
    const value: ExecOptions = {
      command,
      args: args as string[],
      env: Object.fromEntries(Object.entries(env).map(([k, e]) => [k, String(e)])),
      okCodes: codes,
      stdout: stdout as StdoutFormat,
      maxBytes: maxBytes as number,
    };
    if ("cwd" in v) value.cwd = cwd as string;
    if ("stdin" in v) value.stdin = stdin as string;
    return { value };
  },
  wait(v: unknown) {
    if (!plainWith(v, WAIT_KEYS)) return undefined;
    if (typeof v.signal !== "string" || !SIGNAL_NAME.test(v.signal)) return undefined;
    if ("timeout" in v && !isDuration(v.timeout)) return undefined;
    if ("message" in v && typeof v.message !== "string") return undefined;
    const value: { signal: string; timeout?: number | string; message?: string } = {
      signal: v.signal,
    };
    if ("timeout" in v) value.timeout = v.timeout as number | string;
    if ("message" in v) value.message = v.message as string;
    return { value };
  },
  fail(v: unknown) {
    if (!plainWith(v, MESSAGE_KEYS)) return undefined;
    const message = "message" in v ? v.message : "failed by a fail node";
    return typeof message === "string" ? { value: { message } } : undefined;
  },
};

const stateGet = defineNode({
  description: "read a value from node, flow or global state",
  optionsSchema: schemaOf("state.get", fast.stateGet),
  async run(ctx, o) {
    // The entry, not get(): a stored null is a value, and only absence takes the default.
    const entry = await ctx[o.scope].entry(o.key, { store: o.store });
    return entry === null ? (o.default ?? null) : entry.value;
  },
});

const stateSet = defineNode({
  description: "write a value to node, flow or global state",
  optionsSchema: schemaOf("state.set", fast.stateSet),
  async run(ctx, o) {
    const expireIn = o.expireIn === undefined ? undefined : parseDuration(o.expireIn, "expireIn");
    await ctx[o.scope].set(o.key, o.value, { store: o.store, expireIn });
    return o.value;
  },
});

const stateDelete = defineNode({
  description: "delete a value from node, flow or global state",
  optionsSchema: schemaOf("state.delete", fast.stateDelete),
  run: (ctx, o) => ctx[o.scope].delete(o.key, { store: o.store }),
});

const stateIncrement = defineNode({
  description: "add to a number in state atomically (safe under concurrent runs)",
  optionsSchema: schemaOf("state.increment", fast.stateIncrement),
  run: (ctx, o) => ctx[o.scope].increment(o.key, o.by, { store: o.store }),
});

const stateList = defineNode({
  description: "list the entries of a scope",
  optionsSchema: schemaOf("state.list", fast.stateList),
  run: (ctx, o) => ctx[o.scope].entries({ prefix: o.prefix, limit: o.limit, store: o.store }),
});

/**
 * `state.query`: filter and sort the values of a scope, with the store's
 * declared indexes. `where` is a list of `{ path, op, value }` (`op` one of
 * eq, ne, lt, lte, gt, gte, in, contains, exists); `orderBy` one
 * `{ path, direction }` or a list. Output: `[{ key, value }]`, keys relative
 * to the scope.
 */
const stateQuery = defineNode({
  description: "filter and sort the values of a scope (uses the store's declared indexes)",
  optionsSchema: schemaOf("state.query"),
  run(ctx, o) {
    const view = ctx[o.scope];
    if (!view.query) throw new Error(`the ${o.scope} scope cannot query here`);
    return view.query({
      prefix: o.prefix,
      where: o.where,
      orderBy: o.orderBy,
      limit: o.limit,
      offset: o.offset,
      store: o.store,
    });
  },
});

/**
 * `state.search`: full-text search in a scope (every word of `text`,
 * case-insensitive, compared in Unicode NFKC), best first. Output:
 * `[{ key, value, score }]`.
 */
const stateSearch = defineNode({
  description: "full-text search in a scope: entries holding every word, best first",
  optionsSchema: schemaOf("state.search"),
  run(ctx, o) {
    const view = ctx[o.scope];
    if (!view.search) throw new Error(`the ${o.scope} scope cannot search here`);
    return view.search(o.text, {
      prefix: o.prefix,
      fields: o.fields,
      limit: o.limit,
      store: o.store,
    });
  },
});

const log = defineNode({
  description: "write a log line",
  optionsSchema: schemaOf("log", fast.log),
  run(ctx, o) {
    ctx.log(o.message, o.level);
    return o.message;
  },
});

const transform = defineNode({
  description: "build a value from templates",
  optionsSchema: schemaOf("transform", fast.transform),
  run: (_ctx, o) => o.value ?? null,
});

const delay = defineNode({
  description: "wait for a duration (cancellable)",
  optionsSchema: schemaOf("delay", fast.delay),
  async run(ctx, o) {
    await ctx.sleep(parseDuration(o.for, "for"));
    return null;
  },
});

/**
 * `wait`: wait for signal `signal` sent to the run (`flowstate runs signal`,
 * `POST /api/runs/{id}/signals/{name}`, the inspector, `Runtime.signalRun`),
 * looking for it every second; its output is the signal's data. A signal sent
 * before the node waits was kept for the run and is taken at once. Each
 * signal is taken once, oldest first. After `timeout` without one, it fails.
 */
const wait = defineNode({
  description:
    "wait for a signal sent to the run (flowstate runs signal, the HTTP API, the inspector); its output is the signal's data",
  optionsSchema: schemaOf("wait", fast.wait),
  async run(ctx, o) {
    const take = ctx.takeSignal;
    if (take === undefined) {
      throw new Error(
        "signals are not available here: wait nodes run in a runtime (openRuntime, the CLI, a worker), not in a sandboxed node's sub-flow",
      );
    }
    const limit = o.timeout === undefined ? Infinity : parseDuration(o.timeout, "timeout");
    ctx.log(
      `${WAITING_FOR_SIGNAL} "${o.signal}" (flowstate runs signal ${ctx.runId} ${o.signal})${
        o.message === undefined || o.message === "" ? "" : `: ${o.message}`
      }`,
    );
    const deadline = ctx.clock.now() + limit;
    for (;;) {
      const signal = await take(o.signal);
      if (signal !== null) return signal.data;
      const left = deadline - ctx.clock.now();
      if (left <= 0) {
        const within = typeof o.timeout === "string" ? o.timeout : formatDurationExactly(limit);
        throw new Error(
          `no signal "${o.signal}" within ${within}; send it with: flowstate runs signal ${ctx.runId} ${o.signal}`,
        );
      }
      await ctx.sleep(Math.min(SIGNAL_POLL_MS, left));
    }
  },
});

const fail = defineNode({
  description: "fail the node with a message",
  optionsSchema: schemaOf("fail", fast.fail),
  run(_ctx, o): never {
    throw new Error(o.message);
  },
});

const flow = defineNode({
  description: "run another flow as a sub-flow; its outputs are this node's output",
  optionsSchema: schemaOf("flow"),
  async run(ctx, o) {
    const run = await ctx.runFlow(o.flow, o.input);
    if (run.status !== "succeeded") {
      throw new Error(
        `sub-flow ${run.flowId} ${run.status} (run ${run.id})${
          run.error
            ? `: ${run.error.node ? `node ${run.error.node}: ` : ""}${run.error.message}`
            : ""
        }`,
      );
    }
    return run.outputs;
  },
});

const queue = defineNode({
  description:
    "enqueue a run of another flow (a flow id or a path); its output is { runId, existing }",
  optionsSchema: schemaOf("queue"),
  async run(ctx, o) {
    if (ctx.enqueue === undefined) {
      throw new Error(
        "the queue is not available here: queue nodes run in a runtime (openRuntime, the CLI, a worker)",
      );
    }
    const { runId, existing } = await ctx.enqueue(o.flow, {
      input: o.input,
      ...(o.delay === undefined ? {} : { delay: o.delay }),
      ...(o.key === undefined ? {} : { key: o.key }),
      ...(o.priority === undefined ? {} : { priority: o.priority }),
      ...(o.maxAttempts === undefined ? {} : { maxAttempts: o.maxAttempts }),
    });
    return { runId, existing };
  },
});

/**
 * `http`: an HTTP request, from a Worker that may reach only the hosts its
 * node declares under `permissions: { net }`. A flow's `http` node runs the
 * node type `prepareFlow` makes for it with those permissions (see
 * `http_node.ts`); this one only checks options.
 */
const http = defineNode({
  description:
    "make an HTTP request to a host the node declares under permissions: net; output { status, headers, body }",
  optionsSchema: schemaOf("http", fast.http),
  run(): never {
    throw new Error(
      "the http node runs in a Worker with its node's permissions: net, which only a prepared flow gives it (run it in a flow)",
    );
  },
});

/**
 * The options schema of an `http` node that may call `net`: the built-in
 * schema, then the URL's host against `net` (an issue at `url` naming the
 * `permissions:` line to add).
 */
export function httpOptionsSchema(net: boolean | readonly string[]): OptionsSchema<HttpOptions> {
  return checkedAfter(http.optionsSchema as unknown as LazySchema<HttpOptions>, (value) => {
    const problem = netProblem(net, requestUrl(value.url, {}));
    return problem === undefined ? undefined : { message: problem, path: ["url"] };
  });
}

/**
 * `exec`: run a program (no shell), from a Worker that may start only the
 * programs its node declares under `permissions: { run }`. A flow's `exec`
 * node runs the node type `prepareFlow` makes for it with those permissions
 * (see `exec_node.ts`); this one only checks options.
 */
const exec = defineNode({
  description:
    "run a program the node declares under permissions: run (no shell); output { code, stdout, stderr }",
  optionsSchema: schemaOf("exec", fast.exec),
  run(): never {
    throw new Error(
      "the exec node runs in a Worker with its node's permissions: run, which only a prepared flow gives it (run it in a flow)",
    );
  },
});

/**
 * The options schema of an `exec` node that may start `run`: the built-in
 * schema, then the command against `run` (an issue at `command` naming the
 * `permissions:` line to add).
 */
export function execOptionsSchema(run: boolean | readonly string[]): OptionsSchema<ExecOptions> {
  return checkedAfter(exec.optionsSchema as unknown as LazySchema<ExecOptions>, (value) => {
    const problem = runProblem(run, value.command);
    return problem === undefined ? undefined : { message: problem, path: ["command"] };
  });
}

/** `base`, then `extra` on the value it accepts (an issue, or `undefined`). */
function checkedAfter<T>(
  base: LazySchema<T>,
  extra: (value: T) => { message: string; path: string[] } | undefined,
): OptionsSchema<T> {
  const after = (result: SchemaResult<T>): SchemaResult<T> => {
    if (result.issues !== undefined) return result;
    const issue = extra(result.value);
    return issue === undefined ? result : { issues: [issue] };
  };
  return {
    "~standard": {
      version: 1,
      vendor: "flowstate",
      validate(value: unknown) {
        const result = base["~standard"].validate(value);
        return result instanceof Promise ? result.then(after) : after(result);
      },
    },
    // The option names, for a did-you-mean about an unknown one.
    get shape() {
      return base.shape;
    },
  } as OptionsSchema<T>;
}

/** Built-in node types by name. */
export const builtinNodes: ReadonlyMap<string, NodeType<never>> = new Map<string, NodeType<never>>(
  // Typed as the names, so that BuiltinNodeType and this table cannot drift apart.
  ([
    ["state.get", stateGet],
    ["state.set", stateSet],
    ["state.delete", stateDelete],
    ["state.increment", stateIncrement],
    ["state.list", stateList],
    ["state.query", stateQuery],
    ["state.search", stateSearch],
    ["log", log],
    ["transform", transform],
    ["delay", delay],
    ["fail", fail],
    ["flow", flow],
    ["queue", queue],
    ["http", http],
    ["exec", exec],
    ["wait", wait],
  ] satisfies [BuiltinNodeType, unknown][]) as [string, NodeType<never>][],
);
