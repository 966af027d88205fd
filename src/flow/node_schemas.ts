/**
 * The zod schemas of the built-in nodes' options, by node type: imported by
 * `nodes.ts` only when an option needs more than its fast check (a problem to
 * describe, a node without one), so that a plain run does not load zod.
 *
 * @module
 */
import { z } from "zod";
import { didYouMean } from "../_suggest.ts";
import { durationProblem } from "../duration.ts";
import type { JsonValue } from "../store/types.ts";
import { describeValue } from "./_shapes.ts";

/**
 * One of a fixed set of words, worded as the flow's own fields are (`scope: flw`: expected one
 * of "node", "flow", "global", got "flw" (did you mean "flow"?)), not zod's "Invalid option".
 */
function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, {
    error: (issue) =>
      `expected one of ${values.map((v) => JSON.stringify(v)).join(", ")}, got ${
        describeValue(issue.input)
      }${typeof issue.input === "string" ? didYouMean(issue.input, values) : ""}`,
  });
}

const scope = oneOf(["node", "flow", "global"]).default("flow");
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

const path = z.union([z.string(), z.array(z.string())]);
const whereClause = z.strictObject({
  path,
  op: oneOf(["eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "exists"]),
  value: z.custom<JsonValue>((v) => v !== undefined).optional(),
});
const orderBy = z.strictObject({ path, direction: oneOf(["asc", "desc"]).optional() });

/** The schema of each built-in node type's `with`. */
export const nodeSchemas = {
  "state.get": z.strictObject({
    scope,
    key: stateKey,
    store: storeName,
    default: json.optional(),
  }),
  "state.set": z.strictObject({
    scope,
    key: stateKey,
    value: json,
    store: storeName,
    expireIn: duration.optional(),
  }),
  "state.delete": z.strictObject({ scope, key: stateKey, store: storeName }),
  "state.increment": z.strictObject({
    scope,
    key: stateKey,
    by: z.number().default(1),
    store: storeName,
  }),
  "state.list": z.strictObject({
    scope,
    prefix: stateKey.optional(),
    limit: z.number().int().positive().optional(),
    store: storeName,
  }),
  "state.query": z.strictObject({
    scope,
    prefix: stateKey.optional(),
    where: z.array(whereClause).default([]),
    orderBy: z.union([orderBy, z.array(orderBy)]).optional(),
    limit: z.number().int().nonnegative().optional(),
    offset: z.number().int().nonnegative().optional(),
    store: storeName,
  }),
  "state.search": z.strictObject({
    scope,
    text: z.string().min(1),
    prefix: stateKey.optional(),
    fields: z.array(path).min(1).optional(),
    limit: z.number().int().positive().optional(),
    store: storeName,
  }),
  "log": z.strictObject({
    message: z.unknown().transform((m) => typeof m === "string" ? m : JSON.stringify(m) ?? ""),
    level: oneOf(["debug", "info", "warn", "error"]).default("info"),
  }),
  "transform": z.strictObject({ value: z.unknown() }),
  "delay": z.strictObject({ for: duration }),
  "fail": z.strictObject({ message: z.string().default("failed by a fail node") }),
  "flow": z.strictObject({
    flow: z.union([z.string().min(1), z.record(z.string(), z.unknown())]),
    input: z.record(z.string(), z.unknown()).default({}),
  }),
  "queue": z.strictObject({
    flow: z.string().min(1),
    input: z.record(z.string(), z.unknown()).default({}),
    delay: duration.optional(),
    key: z.string().min(1).optional(),
    priority: z.number().int().min(-1_000_000).max(1_000_000).optional(),
    maxAttempts: z.number().int().min(1).optional(),
  }),
};
