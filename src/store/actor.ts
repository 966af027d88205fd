/**
 * Who writes: the change feed records, with each change, the actor in effect
 * where the write was made. {@linkcode withActor} sets it for everything
 * `fn` does (async calls included, through `AsyncLocalStorage`); the executor
 * wraps each node, the job runner each job. Outside of any, the process's
 * declared actor applies: `FLOWSTATE_ACTOR`, else an `actor` option of
 * `openRuntime`/`openStore`, else `<user>@<hostname>` when the permissions
 * allow reading them, else `"unknown"`.
 *
 * @module
 */
import type { AsyncLocalStorage } from "node:async_hooks";
import type { ChangeActor } from "./types.ts";

// `node:async_hooks` is loaded only where an actor can be recorded: the library's entry point
// (`mod.ts`, through `actor_context.ts`) installs it at once; otherwise a store opened with a
// change feed loads it first (`openStore`, and `openRuntime` when its config declares one), so
// that a plain `flowstate run` without feeds never initialises Node compatibility (13–29 ms).
// Until then no store records actors, and `withActor` has nothing to carry.
let storage: AsyncLocalStorage<ChangeActor> | undefined;

/** Use `als` to carry the actor (the library's entry point installs one at once). */
export function installActorStorage(als: AsyncLocalStorage<ChangeActor>): void {
  storage ??= als;
}

/** Load `node:async_hooks` for the actor, before a store with a change feed opens. */
export async function loadActorStorage(): Promise<void> {
  if (storage !== undefined) return;
  const { AsyncLocalStorage } = await import("node:async_hooks");
  storage ??= new AsyncLocalStorage<ChangeActor>();
}

let processActor: string | undefined;

/**
 * Run `fn` with `actor` as who writes: every store write made inside it
 * (awaited calls included) is recorded in the change feed with it. Nested
 * calls add to the outer actor (a job's node keeps the job).
 *
 * @example
 * ```ts
 * import { openStore, withActor } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * await using store = await openStore({ plugin: "memory", changes: { keep: "1d" } });
 * await withActor({ actor: "alice" }, () => store.set(["greeting"], "hello"));
 * for await (const change of store.changes()) assert.equal(change.by.actor, "alice");
 * ```
 */
export function withActor<R>(actor: ChangeActor, fn: () => R): R {
  if (typeof actor !== "object" || actor === null) {
    throw new TypeError('Cannot set the actor: pass an object like { actor: "alice" }');
  }
  const merged: ChangeActor = { ...storage?.getStore() };
  for (const field of ["runId", "flowId", "nodeId", "job", "actor"] as const) {
    const value = actor[field];
    if (value === undefined) continue;
    if (typeof value !== "string") {
      throw new TypeError(`Cannot set the actor: ${field} must be a string (got ${typeof value})`);
    }
    merged[field] = value;
  }
  return storage === undefined ? fn() : storage.run(merged, fn);
}

/**
 * {@linkcode withActor} for a node of a run (internal: the executor, once per
 * node attempt): the same actor, without checking fields known to be strings.
 */
export function withNodeActor<R>(runId: string, flowId: string, nodeId: string, fn: () => R): R {
  if (storage === undefined) return fn(); // no store records actors (see above)
  const outer = storage.getStore();
  const actor: ChangeActor = outer === undefined
    ? { runId, flowId, nodeId }
    : { ...outer, runId, flowId, nodeId };
  return storage.run(actor, fn);
}

/**
 * `fn` with the actor in effect less a run's fields (`runId`, `flowId`,
 * `nodeId`; a job or a declared actor stay): what a sub-run's own records are
 * written as, like a top-level run's, and not as the parent's node that
 * started it (internal: the executor's sub-runs).
 */
export function outsideRunActor<R>(fn: () => R): R {
  const outer = storage?.getStore();
  if (
    outer === undefined ||
    (outer.runId === undefined && outer.flowId === undefined && outer.nodeId === undefined)
  ) return fn();
  const { runId: _run, flowId: _flow, nodeId: _node, ...rest } = outer;
  return storage!.run(rest, fn);
}

/**
 * Declare this process's actor (an `actor` option of `openRuntime` or
 * `openStore`); `FLOWSTATE_ACTOR` still wins.
 */
export function setProcessActor(actor: string | undefined): void {
  if (actor !== undefined && typeof actor !== "string") {
    throw new TypeError("Cannot set the actor: actor must be a string");
  }
  if (actor !== undefined) processActor = actor;
}

let defaultActor: string | undefined;

function fallbackActor(): string {
  if (defaultActor !== undefined) return defaultActor;
  let user: string | undefined;
  let host: string | undefined;
  try {
    user = Deno.env.get("USER") ?? Deno.env.get("USERNAME");
  } catch { /* no env permission */ }
  try {
    host = Deno.hostname();
  } catch { /* no sys permission */ }
  defaultActor = user && host ? `${user}@${host}` : "unknown";
  return defaultActor;
}

/** The process's declared actor (see the module's documentation). */
export function declaredActor(): string {
  let fromEnv: string | undefined;
  try {
    fromEnv = Deno.env.get("FLOWSTATE_ACTOR");
  } catch { /* no env permission */ }
  return fromEnv !== undefined && fromEnv !== "" ? fromEnv : processActor ?? fallbackActor();
}

/** Who writes here and now: the actor set by {@linkcode withActor}, and the declared actor. */
export function currentActor(): ChangeActor {
  const set = storage?.getStore();
  return set?.actor !== undefined ? { ...set } : { ...set, actor: declaredActor() };
}

/** The actor set here by {@linkcode withActor} (`undefined`: none), to carry across a message boundary. */
export function captureActor(): ChangeActor | undefined {
  const set = storage?.getStore();
  return set === undefined ? undefined : { ...set };
}

/** Run `fn` as `actor` (one {@linkcode captureActor} returned), exactly: nothing is merged. */
export function runAsActor<R>(actor: ChangeActor | undefined, fn: () => R): R {
  return actor === undefined || storage === undefined ? fn() : storage.run(actor, fn);
}
