/**
 * The structure of a flow file as a zod schema ({@linkcode flowSchema}), and
 * the same structure as JSON Schema for editors ({@linkcode flowJsonSchema}).
 *
 * The schema checks shapes, types, id patterns, durations and numeric ranges.
 * Checks that span the whole flow (node references, `needs` cycles,
 * templates, input defaults) live in `parse.ts`.
 *
 * @module
 */
import { z } from "zod";
import { fieldsAt } from "../_zod_fields.ts";
import { HTTP_METHODS } from "./_http.ts";
import type { JsonValue } from "../store/types.ts";
import type { ParsingSchema } from "../plugin.ts";
import { DURATION_HINT, DURATION_PATTERN, durationProblem, parseDuration } from "../duration.ts";
import type { FlowDefinition, InputType, NodeWhen } from "./types.ts";
import { cronProblem } from "../cron.ts";
import { timezoneProblem } from "../timezone.ts";
import { RATE_PATTERN, rateProblem } from "../rate.ts";
import { MASK_PATH_HINT, parseMaskPath } from "./_mask_paths.ts";

export {
  BUILTIN_NODE_TYPE_EXAMPLES,
  describeValue,
  ENV_NAME_PATTERN,
  EXPECTED,
  FLOW_ID_PATTERN,
  INPUT_TYPES,
  inputTypeProblem,
  jsonProblem,
  nestedDeeperThan,
  NODE_ID_PATTERN,
} from "./_shapes.ts";
import {
  BUILTIN_NODE_TYPE_EXAMPLES,
  describeValue,
  ENV_NAME_PATTERN,
  FLOW_ID_PATTERN,
  INPUT_TYPES,
  jsonProblem,
  NODE_ID_PATTERN,
} from "./_shapes.ts";

const durationSchemas = new WeakMap<object, { positive: boolean }>();

function duration(options: { positive: boolean; description: string }): z.ZodType<number | string> {
  const schema = z.union([z.number(), z.string()], { error: `expected ${DURATION_HINT}` })
    .superRefine((value, ctx) => {
      const problem = durationProblem(value);
      if (problem !== undefined) {
        const template = typeof value === "string" && value.includes("${{");
        ctx.addIssue({
          code: "custom",
          message: template
            ? `${problem.message}: a template is not evaluated here (only in with, if, ` +
              `forEach and outputs); write the duration itself`
            : problem.message,
        });
      } else if (options.positive && parseDuration(value, "duration") === 0) {
        ctx.addIssue({
          code: "custom",
          message: `must be longer than 0, got ${describeValue(value)}`,
        });
      }
    })
    .meta({ description: options.description });
  durationSchemas.set(schema, { positive: options.positive });
  return schema;
}

const jsonValue = z.unknown().superRefine((value, ctx) => {
  const problem = jsonProblem(value);
  if (problem !== undefined) {
    ctx.addIssue({ code: "custom", message: problem.message, path: problem.path });
  }
}) as unknown as z.ZodType<JsonValue>;

const inputSpecSchema = z.strictObject({
  type: z.enum(INPUT_TYPES as [InputType, ...InputType[]]).optional().meta({
    description: 'The expected type (default `"any"`).',
  }),
  default: jsonValue.optional().meta({
    description: "Used when the caller gives no value. An input without a default is required.",
  }),
  enum: z.array(jsonValue).min(1, { error: "expected at least one value" }).optional().meta({
    description: "The allowed values.",
  }),
  description: z.string().optional().meta({ description: "Shown in input listings." }),
}).meta({ description: "One declared input of the flow." });

const retrySchema = z.strictObject({
  attempts: z.number().int().min(1, { error: "must be at least 1" }).meta({
    description: "Total attempts including the first (at least 1).",
  }),
  delay: duration({
    positive: false,
    description: "Wait before the first retry (default `1s`); later retries wait per `backoff`.",
  }).optional(),
  backoff: z.enum(["constant", "exponential"]).optional().meta({
    description: "`constant` (default) or `exponential` (the delay doubles each retry).",
  }),
  maxDelay: duration({ positive: false, description: "Upper bound on one wait." }).optional(),
}).meta({ description: "How a failing node is retried." });

const nodeTypeSchema = z.string().min(1, { error: "must not be empty" }).meta({
  description:
    "A built-in node type (`log`, `state.set`…) or a module path (`./nodes/thing.ts`) or specifier (`jsr:@scope/pkg`) whose default export is `defineNode(...)`.",
});

const permissionValue = z.union([
  z.boolean(),
  z.array(z.string().min(1, { error: "must not be empty" })),
], { error: "expected true, false or a list (of paths, hosts, names or commands)" });

const permissionsSchema = z.strictObject({
  read: permissionValue.optional(),
  write: permissionValue.optional(),
  net: permissionValue.optional(),
  env: permissionValue.optional(),
  run: permissionValue.optional(),
  sys: permissionValue.optional(),
  ffi: permissionValue.optional(),
  import: permissionValue.optional(),
}).meta({
  description:
    "What a custom node's Worker may do, in Deno's permission names: each `true`, `false` or a list (`read: [./data]`, `net: [\"api.example.com:443\"]`, `env: [API_TOKEN]`). Paths are relative to the flow file. Without it a custom node gets no permission at all. An `http` node takes `net:` only: the hosts it may call.",
});

const forEachItems = z.union([
  z.string().meta({
    description: "A template whose value is the list: `${{ nodes.list.output }}`.",
  }),
  z.array(jsonValue).meta({ description: "A literal list." }),
], { error: 'expected a template like "${{ nodes.list.output }}" or a list' });

const forEachSchema = z.union([
  forEachItems.def.options[0],
  forEachItems.def.options[1],
  z.strictObject({
    items: forEachItems,
    concurrency: z.number().int({ error: "expected a whole number" }).min(1, {
      error: "must be at least 1",
    }).optional().meta({
      description:
        "Items running at once (default 1: one after the other); never more than the flow's `concurrency`.",
    }),
  }),
], {
  error: 'expected a template like "${{ nodes.list.output }}", a list, or { items, concurrency }',
}).meta({
  description:
    "Run the node once per element of a list: a template (`${{ nodes.list.output }}`), a literal list, or `{ items, concurrency }`. Templates of the node read the element as `item` and its position as `index`; the node's output is the list of the items' outputs, in order.",
});

const maskSchema = (z.unknown().superRefine((value, ctx) => {
  if (value === true) return;
  const expected =
    `expected a list of paths into the node's output (${MASK_PATH_HINT}), or true for the whole output`;
  if (typeof value === "string" && Array.isArray(parseMaskPath(value))) {
    ctx.addIssue({
      code: "custom",
      message: `${expected}, got a string: write it as a list, mask: [${value}]`,
    });
    return;
  }
  if (!Array.isArray(value)) {
    ctx.addIssue({ code: "custom", message: `${expected}, got ${describeValue(value)}` });
    return;
  }
  if (value.length === 0) {
    ctx.addIssue({ code: "custom", message: `${expected}, got an empty list` });
  }
  value.forEach((path, i) => {
    const problem = typeof path === "string"
      ? (parseMaskPath(path) as { problem?: string }).problem
      : `expected ${MASK_PATH_HINT}, got ${describeValue(path)}`;
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem, path: [i] });
  });
}) as unknown as z.ZodType<true | string[]>).meta({
  description:
    "Parts of the node's output that are secrets the run obtained (a token): paths into the output such as `body.access_token`, `headers.set-cookie`, `items[0]`, or `true` for the whole output. From the end of the attempt that returned them, their values are `***` in everything the run records or shows; later nodes get the real values.",
  anyOf: [{ const: true }, { type: "array", items: { type: "string" }, minItems: 1 }],
});

/** The values of a node's `when:` (see `NodeWhen`). */
const NODE_WHEN: [NodeWhen, ...NodeWhen[]] = ["on_success", "on_failure", "always"];

const nodeSchema = z.strictObject({
  id: z.string().regex(NODE_ID_PATTERN, {
    error: 'expected a node id of letters, digits, "_" and "-"',
  }).meta({ description: "Unique within the flow: letters, digits, `_` and `-`." }),
  type: nodeTypeSchema,
  description: z.string().optional().meta({ description: "Free text." }),
  needs: z.array(z.string()).optional().meta({
    description: "Nodes that must finish before this one starts.",
  }),
  if: z.string().optional().meta({
    description:
      "A template such as `${{ nodes.check.output > 0 }}`; the node runs only if it is truthy (else it is `skipped`).",
  }),
  with: z.record(z.string(), jsonValue).optional().meta({
    description: "Options for the node type; strings may hold `${{ … }}` templates.",
  }),
  retry: retrySchema.optional(),
  timeout: duration({
    positive: true,
    description: "Fail an attempt that takes longer than this (`30s`, `5m`…).",
  }).optional(),
  continueOnError: z.boolean().optional().meta({
    description:
      "A failure of this node does not fail the run (dependents still run). With `forEach`, every item runs and a failed item's output is `null`.",
  }),
  when: z.enum(NODE_WHEN).optional().meta({
    description:
      "When the node runs: `on_success` (default: while the run has not failed), `on_failure` (only when a node it needs, directly or indirectly, failed the run; without `needs`, when any node of the run failed, at its end) or `always` (once its needs ended, whatever their outcome). After the run's timeout they still run, within `runs.abortGrace`; not after a cancel. Its templates may read `run.failed` (`[{ node, error }]`) and `nodes.<id>.error`.",
  }),
  forEach: forEachSchema.optional(),
  mask: maskSchema.optional(),
  permissions: permissionsSchema.optional(),
}).meta({ description: "One node of the flow." });

const cronSchema = z.string().superRefine((value, ctx) => {
  const problem = cronProblem(value);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
}).meta({ description: "A cron expression (5 or 6 fields) or nickname (`@daily`)." });

/** A schedule's zone: a typo is told with the zone it is near (`did you mean "Europe/Paris"?`). */
const timezoneSchema = z.string().min(1, {
  abort: true,
  error: 'expected an IANA time zone like "Europe/Paris" or "UTC"',
}).superRefine((value, ctx) => {
  const problem = timezoneProblem(value);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
}).meta({ description: "IANA time zone (default: the config's, else UTC)." });

/** One schedule of a flow: `{ cron, timezone, overlap, missed, abandoned, jitter, inputs, id }`. */
const scheduleObjectSchema = z.strictObject({
  cron: cronSchema,
  timezone: timezoneSchema.optional(),
  overlap: z.enum(["skip", "queue"]).optional().meta({
    description: "While a run is still going: `skip` the tick (default) or `queue` it.",
  }),
  missed: z.enum(["skip", "run-once"]).optional().meta({
    description: "Ticks missed while no daemon ran: `skip` (default) or `run-once`.",
  }),
  abandoned: z.enum(["skip", "rerun"]).optional().meta({
    description:
      "A tick whose daemon died while running it: recorded as abandoned, then `skip` (default) or `rerun`.",
  }),
  jitter: duration({
    positive: false,
    description: "Wait a random time up to this long before each tick.",
  }).optional(),
  id: z.string().regex(FLOW_ID_PATTERN, {
    error: 'expected a schedule id of lowercase letters, digits, "_" and "-"',
  }).optional().meta({
    description:
      "Tells this entry of a `schedule:` list apart (its schedule is `flow:<flow>#<id>`); without it, the entry is the flow's own schedule `flow:<flow>` (at most one entry goes without).",
  }),
  inputs: z.record(z.string(), jsonValue).optional().meta({
    description:
      "The inputs each scheduled run gets: literal values, checked against the flow's `inputs:` (the run reads the tick's time as `run.scheduledAt`).",
  }),
}).meta({ description: "A schedule with its policies." });

const flowObjectSchema = z.strictObject({
  id: z.string().regex(FLOW_ID_PATTERN, {
    error: 'expected a flow id of lowercase letters, digits, "_" and "-"',
  }).meta({ description: "Unique per home: lowercase letters, digits, `_` and `-`." }),
  description: z.string().optional().meta({ description: "Free text." }),
  schedule: z.union([
    cronSchema,
    scheduleObjectSchema,
    z.array(z.union([cronSchema, scheduleObjectSchema]))
      .min(1, { error: "a schedule: list needs at least one entry" })
      .meta({ description: "Several schedules, each with its own cron, policies and inputs." }),
  ]).optional().meta({
    description:
      'A cron expression (`"0 * * * *"`, 5 or 6 fields) or nickname (`@daily`), or `{ cron, timezone, overlap, missed, abandoned, jitter, inputs, id }`, or a list of those (each entry its own schedule; `id` tells them apart).',
  }),
  trigger: z.strictObject({
    http: z.strictObject({
      path: z.string().regex(/^\/hooks\/[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*$/, {
        error:
          'expected a path under /hooks/ of letters, digits and "._~-" segments, like /hooks/deploy',
      }).meta({ description: "Under `/hooks/`: `/hooks/deploy`." }),
      method: z.enum(["POST", "PUT"]).optional().meta({
        description: "`POST` (default) or `PUT`.",
      }),
      secret: z.strictObject({
        env: z.string().regex(ENV_NAME_PATTERN, {
          error: 'expected an environment variable name (letters, digits and "_")',
        }),
      }, {
        error:
          "expected { env: NAME }: the name of the environment variable holding the secret, never the secret itself",
      }).optional().meta({
        description:
          "The environment variable holding a shared secret: requests must carry `X-Flowstate-Signature: sha256=<hex HMAC-SHA256 of the body>` (or `X-Hub-Signature-256`).",
      }),
      inputs: z.record(
        z.string(),
        z.string().regex(/^(body(\.[^.\s]+)*|headers\.[A-Za-z0-9-]+|query\.[^.\s]+)$/, {
          error: "expected body, body.<field>[.<field>…], headers.<name> or query.<name>",
        }),
      ).optional().meta({
        description:
          "Inputs from the request: `body`, `body.a.b`, `headers.x-name`, `query.name`. Without it, a JSON object body is the inputs.",
      }),
    }).meta({ description: "Run the flow on an HTTP request to `flowstate serve`." }).optional(),
    changes: z.strictObject({
      store: z.string().min(1).optional().meta({
        description:
          "The store to watch (default: the global scope's); it needs `changes: { keep }`.",
      }),
      prefix: z.array(z.string()).optional().meta({
        description: "Only keys under this prefix, like `[orders]` (default: every key).",
      }),
    }).meta({
      description:
        "Run the flow for each change of a key under `prefix` in `store` (`flowstate daemon`; at-least-once, from a stored position). Inputs it may declare: `key`, `op`, `value`, `seq`, `at`, `by`, `expiresAt`, `store`, `change`.",
    }).optional(),
  }).optional().meta({
    description:
      "What else starts the flow: `{ http: { path, method, secret, inputs } }` or `{ changes: { store, prefix } }`.",
  }),
  env: z.array(
    z.string().regex(ENV_NAME_PATTERN, {
      error: 'expected an environment variable name (letters, digits and "_")',
    }),
  ).optional().meta({
    description: "Names of environment variables templates may read as `env.NAME`.",
  }),
  secrets: z.array(
    z.string().regex(ENV_NAME_PATTERN, {
      error: 'expected an environment variable name (letters, digits and "_")',
    }),
  ).optional().meta({
    description:
      "Names of environment variables holding secrets, read by templates as `secrets.NAME`: each must be set (4 characters or more), and its value is replaced by `***` in everything the run records or shows.",
  }),
  inputs: z.record(z.string(), inputSpecSchema).optional().meta({
    description: "Declared inputs, read by templates as `inputs.NAME`.",
  }),
  concurrency: z.number().int().min(1, { error: "must be at least 1" }).optional().meta({
    description: "Maximum nodes running at once (default 16).",
  }),
  queue: z.strictObject({
    concurrency: z.number().int().min(1, { error: "must be at least 1" }).optional().meta({
      description: "Runs of this flow taken from the queue at once, across every worker.",
    }),
    rate: (z.unknown().superRefine((value, ctx) => {
      const problem = rateProblem(value);
      if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
    }) as unknown as z.ZodType<string>).optional().meta({
      description:
        'Runs of this flow started from the queue per window, across every worker: `"10/1m"` is at most 10 in any minute (retries count).',
      type: "string",
      pattern: RATE_PATTERN,
      examples: ["10/1m", "100/1s", "1000/1h"],
    }),
    by: z.string().min(1).optional().meta({
      description:
        "A template over inputs (`${{ inputs.customer }}`): the limits apply per value of it.",
    }),
  }).superRefine((value, ctx) => {
    if (value.concurrency === undefined && value.rate === undefined) {
      ctx.addIssue({
        code: "custom",
        message: 'needs concurrency, rate or both: like { concurrency: 1 } or { rate: "10/1m" }',
      });
    }
  }).optional().meta({
    description: "Limits on queued runs of this flow: `{ concurrency?, rate?, by? }`.",
  }),
  timeout: duration({ positive: true, description: "Fail the whole run after this long." })
    .optional(),
  nodes: z.array(nodeSchema).min(1, { error: "a flow needs at least one node" }).meta({
    description: "The nodes: a DAG through `needs`; independent nodes run concurrently.",
  }),
  outputs: z.record(z.string(), jsonValue).optional().meta({
    description: "Values computed from templates when the run succeeds.",
  }),
}).meta({
  title: "Flowstate flow",
  description: "A Flowstate flow: an id, optional schedule and inputs, and a DAG of nodes.",
});

/**
 * The zod schema of a flow definition. It checks structure, types, id
 * patterns, durations, cron shape and ranges; use `validateFlow` for the
 * whole-flow checks (references, cycles, templates) as well.
 *
 * @example
 * ```ts
 * import { flowSchema } from "@flowstate/core/flow";
 * import assert from "node:assert/strict";
 * const ok = flowSchema.safeParse({ id: "hello", nodes: [{ id: "say", type: "log" }] });
 * if (!ok.success) throw ok.error;
 * const bad = flowSchema.safeParse({ id: "Hello!", nodes: [] });
 * assert.equal(bad.success, false);
 * ```
 */
export const flowSchema: ParsingSchema<FlowDefinition> = flowObjectSchema;

/** The same schema typed as zod's, for the parser's own use of zod's issue codes. Internal. */
export const flowZodSchema: z.ZodType<FlowDefinition> = flowObjectSchema;

/**
 * The field names an object at `path` (inside a flow) may have, for
 * did-you-mean suggestions; empty when `path` is not an object in the schema.
 */
export function knownFields(path: readonly (string | number)[]): string[] {
  return fieldsAt(flowObjectSchema, path);
}

/** A value written as a `${{ … }}` template (its value is known only at run time). */
const TEMPLATE_STRING = {
  type: "string",
  pattern: "\\$\\{\\{",
  description: "A `${{ … }}` template.",
};
const orTemplate = (schema: Record<string, unknown>, description: string) => ({
  anyOf: [schema, TEMPLATE_STRING],
  description,
  markdownDescription: description,
});
const QUERY_SCALAR = { type: ["string", "number", "boolean"] };
const HTTP_STATUS = { type: "integer", minimum: 100, maximum: 599 };

/** The `with:` of an `http` node, for editors (the runner's own check is `node_schemas.ts`). */
const HTTP_NODE_JSON_SCHEMA = {
  if: { properties: { type: { const: "http" } }, required: ["type"] },
  then: {
    required: ["with"],
    properties: {
      with: {
        type: "object",
        required: ["url"],
        additionalProperties: false,
        description: "An HTTP request; its output is `{ status, headers, body }`.",
        markdownDescription: "An HTTP request; its output is `{ status, headers, body }`.",
        properties: {
          url: {
            type: "string",
            description:
              "An http:// or https:// URL. Its host must be listed under the node's `permissions: { net: [...] }`.",
            markdownDescription:
              "An http:// or https:// URL. Its host must be listed under the node's `permissions: { net: [...] }`.",
          },
          method: orTemplate(
            { enum: [...HTTP_METHODS, ...HTTP_METHODS.map((m) => m.toLowerCase())] },
            "The method (default `GET`).",
          ),
          headers: orTemplate(
            { type: "object", additionalProperties: { type: "string" } },
            "Request headers: names to string values. Values of credential headers (`Authorization`, `Cookie`, `X-Api-Key`…) are never recorded.",
          ),
          query: orTemplate(
            {
              type: "object",
              additionalProperties: {
                anyOf: [QUERY_SCALAR, { type: "array", items: QUERY_SCALAR }],
              },
            },
            "Query parameters appended to the url (a list repeats the parameter).",
          ),
          body: {
            description:
              "The request body: a string is sent as it is; any other value as JSON (`content-type: application/json` unless `headers` set one). Not with GET or HEAD.",
            markdownDescription:
              "The request body: a string is sent as it is; any other value as JSON (`content-type: application/json` unless `headers` set one). Not with GET or HEAD.",
          },
          responseType: orTemplate(
            { enum: ["auto", "json", "text"] },
            "`auto` (default): JSON when the response's content-type is JSON, else text; `json`; `text`.",
          ),
          expectStatus: orTemplate(
            { anyOf: [HTTP_STATUS, { type: "array", items: HTTP_STATUS, minItems: 1 }] },
            "The statuses that succeed (default: any 2xx); another fails the attempt (so `retry:` applies).",
          ),
          maxBytes: orTemplate(
            { type: "integer", minimum: 1 },
            "The largest response body read, in bytes (default 10 MiB); a larger one fails the attempt.",
          ),
          followRedirects: orTemplate(
            { type: "boolean" },
            "Follow redirects (default `true`, at most 10), each hop within `permissions: net`.",
          ),
        },
      },
    },
  },
};

const EXIT_CODE = { type: "integer", minimum: 0, maximum: 255 };
const ARGUMENT = { type: ["string", "number", "boolean"] };

/** The `with:` of an `exec` node, for editors (the runner's own check is `node_schemas.ts`). */
const EXEC_NODE_JSON_SCHEMA = {
  if: { properties: { type: { const: "exec" } }, required: ["type"] },
  then: {
    required: ["with"],
    properties: {
      with: {
        type: "object",
        required: ["command"],
        additionalProperties: false,
        description: "Run a program (no shell); its output is `{ code, stdout, stderr }`.",
        markdownDescription: "Run a program (no shell); its output is `{ code, stdout, stderr }`.",
        properties: {
          command: {
            type: "string",
            minLength: 1,
            description:
              "The program: a name looked up on PATH, or a path. It must be listed under the node's `permissions: { run: [...] }`.",
            markdownDescription:
              "The program: a name looked up on PATH, or a path. It must be listed under the node's `permissions: { run: [...] }`.",
          },
          args: orTemplate(
            { type: "array", items: ARGUMENT },
            "Its arguments, each passed as it is (no shell: templates cannot inject).",
          ),
          cwd: {
            type: "string",
            description:
              "The folder it runs in (default, and relative to: the flow file's folder).",
            markdownDescription:
              "The folder it runs in (default, and relative to: the flow file's folder).",
          },
          env: orTemplate(
            { type: "object", additionalProperties: ARGUMENT },
            "Variables it gets besides PATH, HOME, LANG, LC_ALL and TZ (the only ones taken from the runner). Pass secrets as `${{ secrets.NAME }}`.",
          ),
          stdin: { type: "string", description: "Text written to its standard input." },
          okCodes: orTemplate(
            { anyOf: [EXIT_CODE, { type: "array", items: EXIT_CODE, minItems: 1 }] },
            "The exit codes that succeed (default `[0]`); another fails the attempt (so `retry:` applies).",
          ),
          stdout: orTemplate(
            { enum: ["text", "json", "lines"] },
            "How stdout becomes the output's `stdout`: `text` (default), `json` (parsed), `lines` (a list).",
          ),
          maxBytes: orTemplate(
            { type: "integer", minimum: 1 },
            "The most read of each of stdout and stderr, in bytes (default 1 MiB): more stdout fails the attempt; stderr keeps its end.",
          ),
        },
      },
    },
  },
};

/**
 * Options for {@linkcode flowJsonSchema}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { flowJsonSchema, type FlowJsonSchemaOptions } from "@flowstate/core/flow";
 *
 * const options: FlowJsonSchemaOptions = { nodeTypes: ["log", "./nodes/send.ts"], id: "https://example.com/flow.json" };
 * const schema = flowJsonSchema(options) as { $id?: string };
 * assert.equal(schema.$id, "https://example.com/flow.json");
 * assert.match(JSON.stringify(schema), /\.\/nodes\/send\.ts/);
 * ```
 */
export interface FlowJsonSchemaOptions {
  /**
   * The node types to offer. With this, a `type` that is neither one of them
   * nor a module path is flagged by editors; without it, the built-in names
   * are only offered as examples.
   */
  nodeTypes?: Iterable<string>;
  /** The schema's `$id` (default `https://jsr.io/@flowstate/core/flow.schema.json`). */
  id?: string;
}

/**
 * The flow format as JSON Schema (draft 2020-12), for editors: point the YAML
 * language server at it (`# yaml-language-server: $schema=flow.schema.json`)
 * to get completion, hover docs (`markdownDescription`) and red squiggles.
 * Durations carry a `pattern`, ids their patterns, and node `type` the known
 * node types as `examples`.
 *
 * @example
 * ```ts
 * import { flowJsonSchema } from "@flowstate/core/flow";
 * import assert from "node:assert/strict";
 * const schema = flowJsonSchema({ nodeTypes: ["log", "state.set"] });
 * assert.equal(schema.$schema, "https://json-schema.org/draft/2020-12/schema");
 * assert.equal(schema.title, "Flowstate flow");
 * const text = JSON.stringify(schema, null, 2); // save as flow.schema.json
 * assert.ok(text.includes('"state.set"'));
 * ```
 */
export function flowJsonSchema(options: FlowJsonSchemaOptions = {}): Record<string, unknown> {
  const nodeTypes = options.nodeTypes === undefined
    ? undefined
    : [...new Set(options.nodeTypes)].sort();
  const schema = z.toJSONSchema(flowObjectSchema, {
    target: "draft-2020-12",
    io: "input",
    unrepresentable: "any",
    override: (ctx) => {
      const json = ctx.jsonSchema as Record<string, unknown>;
      const duration = durationSchemas.get(ctx.zodSchema);
      if (duration !== undefined) {
        delete json.type;
        json.anyOf = [
          duration.positive
            ? { type: "number", exclusiveMinimum: 0, description: "Milliseconds." }
            : { type: "number", minimum: 0, description: "Milliseconds." },
          { type: "string", pattern: DURATION_PATTERN, examples: ["500ms", "2s", "1.5m", "1h"] },
        ];
      }
      if (ctx.zodSchema === nodeTypeSchema) {
        json.examples = [...(nodeTypes ?? BUILTIN_NODE_TYPE_EXAMPLES)];
        if (nodeTypes !== undefined) {
          json.anyOf = [{ enum: nodeTypes }, { pattern: "^(\\./|\\.\\./|/)|:" }];
        }
      }
      if (typeof json.description === "string" && json.markdownDescription === undefined) {
        json.markdownDescription = json.description;
      }
    },
  }) as Record<string, unknown>;
  const items = (schema.properties as { nodes?: { items?: Record<string, unknown> } }).nodes?.items;
  if (items !== undefined) items.allOf = [HTTP_NODE_JSON_SCHEMA, EXEC_NODE_JSON_SCHEMA];
  const { $schema, ...rest } = schema;
  return {
    $schema,
    $id: options.id ?? "https://jsr.io/@flowstate/core/flow.schema.json",
    ...rest,
  };
}
