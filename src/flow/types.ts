/**
 * The shape of a flow, as parsed from YAML (or given as an object). What a run
 * of it records is in `src/records/types.ts`.
 *
 * @module
 */
import type { JsonValue } from "../store/types.ts";

import type { Duration } from "../duration.ts";
export type { Duration };

/** The type of a flow input. */
export type InputType = "string" | "number" | "boolean" | "object" | "array" | "any";

/** One declared input of a flow. */
export interface InputSpec {
  /** The expected type (default `"any"`). */
  type?: InputType;
  /** Used when the caller gives no value. An input without a default is required. */
  default?: JsonValue;
  /** Allowed values. */
  enum?: JsonValue[];
  /** For `--help`-like listings. */
  description?: string;
}

/** How a failing node is retried. */
export interface RetrySpec {
  /** Total attempts including the first (>= 1). */
  attempts: number;
  /** Wait before the first retry (default 1s); later retries wait per `backoff`. */
  delay?: Duration;
  /** `constant` (default) or `exponential` (delay doubles each retry). */
  backoff?: "constant" | "exponential";
  /** Upper bound on one wait. */
  maxDelay?: Duration;
}

/**
 * The name of a built-in node type. A node's `type` offers these and takes any
 * other string (a module path or specifier).
 *
 * @example
 * ```ts
 * import type { BuiltinNodeType } from "@flowstate/core";
 * const type: BuiltinNodeType = "state.increment";
 * ```
 */
export type BuiltinNodeType =
  | "state.get"
  | "state.set"
  | "state.delete"
  | "state.increment"
  | "state.list"
  | "state.query"
  | "state.search"
  | "log"
  | "transform"
  | "delay"
  | "fail"
  | "flow"
  | "queue";

/** One node of a flow. */
export interface NodeSpec {
  /** Unique within the flow: `[A-Za-z0-9_-]+`. */
  id: string;
  /** A built-in type (`state.set`, `log`…) or a module path (`./nodes/thing.ts`). */
  // deno-lint-ignore ban-types
  type: BuiltinNodeType | (string & {});
  /** Options for the node; strings may hold `${{ … }}` templates. */
  with?: Record<string, unknown>;
  /** Nodes that must finish first. */
  needs?: string[];
  /** A template; the node runs only if it is truthy (else it is `skipped`). */
  if?: string;
  /** Retry policy. */
  retry?: RetrySpec;
  /** Fail an attempt that takes longer than this. */
  timeout?: Duration;
  /** A failure of this node does not fail the run (dependents still run). */
  continueOnError?: boolean;
  /** Free text. */
  description?: string;
  /**
   * What a custom node's Worker may do (Deno's permission names). Without it
   * a custom node gets no permission at all; built-in nodes ignore it.
   */
  permissions?: NodePermissions;
}

/**
 * A node's declared permissions: Deno's names, each `true`, `false` or a list
 * (paths relative to the flow file, hosts, variable names, commands).
 *
 * @example
 * ```ts
 * import type { NodePermissions } from "@flowstate/core/flow";
 * const p: NodePermissions = { read: ["./data"], env: ["API_TOKEN"] };
 * ```
 */
export interface NodePermissions {
  /** File reads. */
  read?: boolean | string[];
  /** File writes. */
  write?: boolean | string[];
  /** Network (`host:port`). */
  net?: boolean | string[];
  /** Environment variables. */
  env?: boolean | string[];
  /** Subprocesses. */
  run?: boolean | string[];
  /** System information. */
  sys?: boolean | string[];
  /** Native libraries. */
  ffi?: boolean | string[];
  /** Module imports from the network (hosts). */
  import?: boolean | string[];
}

/** A flow's schedule with its policies. */
export interface FlowSchedule {
  /** Cron expression (5 or 6 fields) or nickname (`@daily`). */
  cron: string;
  /** IANA time zone (default: the config's `timezone`, else UTC). */
  timezone?: string;
  /** While a run of this schedule is still going: `skip` (default) or `queue`. */
  overlap?: "skip" | "queue";
  /** Ticks missed while no daemon ran: `skip` (default) or `run-once`. */
  missed?: "skip" | "run-once";
  /** A tick whose daemon died while running it: recorded as abandoned, then `skip` (default) or `rerun`. */
  abandoned?: "skip" | "rerun";
  /** Wait a random time up to this long before each tick. */
  jitter?: Duration;
}

/**
 * How many runs of a flow taken from the queue run at once, across every
 * worker: at most `concurrency`, or, with `by` (a template over `inputs`,
 * like `${{ inputs.customer }}`), at most `concurrency` per value of it.
 */
export interface FlowQueueLimits {
  /** Runs at once (per value of `by`). */
  concurrency: number;
  /** A template over the run's inputs: runs with the same value share the limit. */
  by?: string;
}

/**
 * An HTTP trigger: `flowstate serve` (and `daemon --serve`) runs the flow when
 * a request comes to `path`.
 */
export interface HttpTrigger {
  /** Under `/hooks/`: `/hooks/deploy`. */
  path: string;
  /** `POST` (default) or `PUT`. */
  method?: "POST" | "PUT";
  /**
   * The environment variable holding a shared secret: requests must carry
   * `X-Flowstate-Signature: sha256=<hex HMAC-SHA256 of the body>` (or
   * GitHub's `X-Hub-Signature-256`).
   */
  secret?: { env: string };
  /**
   * Inputs from the request: `body`, `body.a.b`, `headers.x-name`,
   * `query.name`. Without it, a JSON object body is the inputs.
   */
  inputs?: Record<string, string>;
}

/**
 * A change trigger: `flowstate daemon` runs the flow once for each change of
 * a key under `prefix` in `store` (whose config keeps a change feed), with
 * at-least-once delivery from a stored position.
 */
export interface ChangesTrigger {
  /** The store to watch (default: the global scope's store). */
  store?: string;
  /** Only keys under this prefix (default `[]`: every key but Flowstate's own records). */
  prefix?: string[];
}

/** What starts a flow besides a schedule and a person. */
export interface FlowTrigger {
  /** An HTTP request to `flowstate serve`. */
  http?: HttpTrigger;
  /** A change of a key in a store (run by `flowstate daemon`). */
  changes?: ChangesTrigger;
}

/** A whole flow. */
export interface FlowDefinition {
  /** `[a-z0-9_-]+`, unique per home. */
  id: string;
  /** Free text. */
  description?: string;
  /** A cron expression, or one with its policies (used by the daemon). */
  schedule?: string | FlowSchedule;
  /**
   * What else starts it: an HTTP request (`trigger: { http: { path: /hooks/x } }`)
   * or changes in a store (`trigger: { changes: { store, prefix } }`).
   */
  trigger?: FlowTrigger;
  /** Names of environment variables templates may read as `env.NAME`. */
  env?: string[];
  /** Declared inputs. */
  inputs?: Record<string, InputSpec>;
  /** Maximum nodes running at once (default 16). */
  concurrency?: number;
  /** Limits on queued runs of this flow (see {@linkcode FlowQueueLimits}). */
  queue?: FlowQueueLimits;
  /** Fail the whole run after this long. */
  timeout?: Duration;
  /** The nodes (a DAG through `needs`). */
  nodes: NodeSpec[];
  /** Values computed from templates when the run succeeds. */
  outputs?: Record<string, unknown>;
}
