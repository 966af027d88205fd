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
 *
 * `scope` is `node`, `flow` (default) or `global`.
 *
 * @module
 */
import { z } from "zod";
import { durationProblem, parseDuration } from "../duration.ts";
import { defineNode, type NodeType } from "./node.ts";
import type { BuiltinNodeType } from "./types.ts";
import type { JsonValue } from "../store/types.ts";

const scope = z.enum(["node", "flow", "global"]).default("flow");
const stateKey = z.union([z.string().min(1), z.array(z.string()).min(1)]);
const storeName = z.string().min(1).optional();
const json = z.custom<unknown>((v) => v !== undefined, { message: "a value is required" });
// Checked like every other duration, so `flowstate validate` reports "5 parsecs" at its place.
const duration = z.union([z.number().nonnegative(), z.string().min(1)]).superRefine(
  (value, ctx) => {
    const problem = durationProblem(value);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem.message });
  },
);

const stateGet = defineNode({
  description: "read a value from node, flow or global state",
  optionsSchema: z.strictObject({
    scope,
    key: stateKey,
    store: storeName,
    default: json.optional(),
  }),
  async run(ctx, o) {
    // The entry, not get(): a stored null is a value, and only absence takes the default.
    const entry = await ctx[o.scope].entry(o.key, { store: o.store });
    return entry === null ? (o.default ?? null) : entry.value;
  },
});

const stateSet = defineNode({
  description: "write a value to node, flow or global state",
  optionsSchema: z.strictObject({
    scope,
    key: stateKey,
    value: json,
    store: storeName,
    expireIn: duration.optional(),
  }),
  async run(ctx, o) {
    const expireIn = o.expireIn === undefined ? undefined : parseDuration(o.expireIn, "expireIn");
    await ctx[o.scope].set(o.key, o.value, { store: o.store, expireIn });
    return o.value;
  },
});

const stateDelete = defineNode({
  description: "delete a value from node, flow or global state",
  optionsSchema: z.strictObject({ scope, key: stateKey, store: storeName }),
  run: (ctx, o) => ctx[o.scope].delete(o.key, { store: o.store }),
});

const stateIncrement = defineNode({
  description: "add to a number in state atomically (safe under concurrent runs)",
  optionsSchema: z.strictObject({
    scope,
    key: stateKey,
    by: z.number().default(1),
    store: storeName,
  }),
  run: (ctx, o) => ctx[o.scope].increment(o.key, o.by, { store: o.store }),
});

const stateList = defineNode({
  description: "list the entries of a scope",
  optionsSchema: z.strictObject({
    scope,
    prefix: stateKey.optional(),
    limit: z.number().int().positive().optional(),
    store: storeName,
  }),
  run: (ctx, o) => ctx[o.scope].entries({ prefix: o.prefix, limit: o.limit, store: o.store }),
});

const path = z.union([z.string(), z.array(z.string())]);
const whereClause = z.strictObject({
  path,
  op: z.enum(["eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "exists"]),
  value: z.custom<JsonValue>((v) => v !== undefined).optional(),
});
const orderBy = z.strictObject({ path, direction: z.enum(["asc", "desc"]).optional() });

/**
 * `state.query`: filter and sort the values of a scope, with the store's
 * declared indexes. `where` is a list of `{ path, op, value }` (`op` one of
 * eq, ne, lt, lte, gt, gte, in, contains, exists); `orderBy` one
 * `{ path, direction }` or a list. Output: `[{ key, value }]`, keys relative
 * to the scope.
 */
const stateQuery = defineNode({
  description: "filter and sort the values of a scope (uses the store's declared indexes)",
  optionsSchema: z.strictObject({
    scope,
    prefix: stateKey.optional(),
    where: z.array(whereClause).default([]),
    orderBy: z.union([orderBy, z.array(orderBy)]).optional(),
    limit: z.number().int().nonnegative().optional(),
    offset: z.number().int().nonnegative().optional(),
    store: storeName,
  }),
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
 * case-insensitive), best first. Output: `[{ key, value, score }]`.
 */
const stateSearch = defineNode({
  description: "full-text search in a scope: entries holding every word, best first",
  optionsSchema: z.strictObject({
    scope,
    text: z.string().min(1),
    prefix: stateKey.optional(),
    fields: z.array(path).min(1).optional(),
    limit: z.number().int().positive().optional(),
    store: storeName,
  }),
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
  optionsSchema: z.strictObject({
    message: z.unknown().transform((m) => typeof m === "string" ? m : JSON.stringify(m) ?? ""),
    level: z.enum(["debug", "info", "warn", "error"]).default("info"),
  }),
  run(ctx, o) {
    ctx.log(o.message, o.level);
    return o.message;
  },
});

const transform = defineNode({
  description: "build a value from templates",
  optionsSchema: z.strictObject({ value: z.unknown() }),
  run: (_ctx, o) => o.value ?? null,
});

const delay = defineNode({
  description: "wait for a duration (cancellable)",
  optionsSchema: z.strictObject({ for: duration }),
  async run(ctx, o) {
    await ctx.sleep(parseDuration(o.for, "for"));
    return null;
  },
});

const fail = defineNode({
  description: "fail the node with a message",
  optionsSchema: z.strictObject({ message: z.string().default("failed by a fail node") }),
  run(_ctx, o): never {
    throw new Error(o.message);
  },
});

const flow = defineNode({
  description: "run another flow as a sub-flow; its outputs are this node's output",
  optionsSchema: z.strictObject({
    flow: z.union([z.string().min(1), z.record(z.string(), z.unknown())]),
    input: z.record(z.string(), z.unknown()).default({}),
  }),
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
  optionsSchema: z.strictObject({
    flow: z.string().min(1),
    input: z.record(z.string(), z.unknown()).default({}),
    delay: duration.optional(),
    key: z.string().min(1).optional(),
    priority: z.number().int().min(-1_000_000).max(1_000_000).optional(),
    maxAttempts: z.number().int().min(1).optional(),
  }),
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
  ] satisfies [BuiltinNodeType, unknown][]) as [string, NodeType<never>][],
);
