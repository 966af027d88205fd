/**
 * The zod schemas of the built-in nodes' options, by node type: imported by
 * `nodes.ts` only when an option needs more than its fast check (a problem to
 * describe, a node without one), so that a plain run does not load zod.
 *
 * @module
 */
import { z } from "zod";
import { didYouMean } from "../_suggest.ts";
import { SIGNAL_NAME } from "./_signal_name.ts";
import { durationProblem } from "../duration.ts";
import type { JsonValue } from "../store/types.ts";
import { describeValue } from "./_shapes.ts";
import {
  DEFAULT_MAX_BYTES,
  HEADER_NAME,
  HEADER_VALUE_BAD,
  HTTP_METHODS,
  httpUrlProblem,
} from "./_http.ts";
import {
  DEFAULT_EXEC_MAX_BYTES,
  EXEC_ENV_NAME,
  EXEC_ENV_REFUSED,
  EXEC_ENV_REFUSED_WHY,
  NUL,
  STDOUT_FORMATS,
} from "./_exec.ts";

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

/** A type's name for a message about a header's or a query parameter's value (never the value). */
function kindOf(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "a list" : `a ${typeof value}`;
}

const httpUrl = z.string().superRefine((value, ctx) => {
  const problem = httpUrlProblem(value);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
});
// A header's value is never quoted in a message: it may be a secret.
const headers = z.record(
  z.string().regex(HEADER_NAME, {
    error: "a header name is letters, digits and !#$%&'*+-.^_`|~ only",
  }),
  z.string({
    error: (issue) => `expected a string (quote it in YAML), got ${kindOf(issue.input)}`,
  }).refine((v) => !HEADER_VALUE_BAD.test(v), {
    error: "a header's value must not hold a line break or NUL",
  }),
);
const queryScalar = z.union([z.string(), z.number(), z.boolean()], {
  error: (issue) => `expected a string, a number or a boolean, got ${kindOf(issue.input)}`,
});
const httpStatus = z.number().int().min(100).max(599);

// An argument or a variable's value: a string, or a number or boolean as YAML reads `4` or
// `true` (passed as its text). Never quoted in a message: it may hold a secret.
const argument = z.union([z.string(), z.number(), z.boolean()], {
  error: (issue) =>
    `expected a string (or a number or boolean, passed as its text), got ${kindOf(issue.input)}`,
}).transform(String).refine((v) => !NUL.test(v), {
  error: "must not hold a NUL character, which no program can be passed",
});
const exitCode = z.number({ error: "expected an exit code from 0 to 255" }).int().min(0).max(255);

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
  "wait": z.strictObject({
    signal: z.string().regex(SIGNAL_NAME, {
      message:
        "signal must be a literal name of 1 to 64 letters, digits, _ and - (like approve), not a template: runs show and the inspector say what the node waits for",
    }),
    timeout: duration.optional(),
    message: z.string().optional(),
  }),
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
  "http": z.strictObject({
    url: httpUrl,
    method: z.string().transform((m) => m.toUpperCase()).pipe(oneOf(HTTP_METHODS)).default("GET"),
    headers: headers.default({}),
    query: z.record(z.string(), z.union([queryScalar, z.array(queryScalar)])).default({}),
    body: json.optional(),
    responseType: oneOf(["auto", "json", "text"]).default("auto"),
    expectStatus: z.union([httpStatus, z.array(httpStatus).min(1)])
      .transform((s) => Array.isArray(s) ? s : [s]).optional(),
    maxBytes: z.number().int().positive().default(DEFAULT_MAX_BYTES),
    followRedirects: z.boolean().default(true),
  }).superRefine((o, ctx) => {
    if (o.body !== undefined && (o.method === "GET" || o.method === "HEAD")) {
      ctx.addIssue({
        code: "custom",
        path: ["body"],
        message: `a ${o.method} request has no body; use method: POST (or PUT, PATCH)`,
      });
    }
  }),
  "exec": z.strictObject({
    command: z.string().min(1, { error: "expected the program to run, like pg_dump" }).refine(
      (v) => !NUL.test(v),
      { error: "must not hold a NUL character" },
    ),
    args: z.array(argument).default([]),
    cwd: z.string().min(1).optional(),
    env: z.record(
      z.string().regex(EXEC_ENV_NAME, {
        error: "an environment variable's name is letters, digits and _, not starting with a digit",
      }).refine((name) => !EXEC_ENV_REFUSED.test(name), { error: EXEC_ENV_REFUSED_WHY }),
      argument,
    ).default({}),
    stdin: z.string().optional(),
    okCodes: z.union([exitCode, z.array(exitCode).min(1)])
      .transform((c) => Array.isArray(c) ? c : [c]).default([0]),
    stdout: oneOf(STDOUT_FORMATS).default("text"),
    maxBytes: z.number().int().positive().default(DEFAULT_EXEC_MAX_BYTES),
  }),
};
