/**
 * The fence of one node attempt: while the attempt runs, its state views,
 * sub-flows and logs work; once it is over (it returned, threw, timed out, or
 * its run was cancelled) every call throws {@linkcode AttemptOverError}, and
 * the executor can wait for the calls that began before the end.
 *
 * @module
 */
import { AttemptOverError } from "../errors.ts";
import type {
  ScopeCallOptions,
  ScopeKey,
  ScopeQueryOptions,
  ScopeSearchOptions,
  StateView,
} from "../state/scopes.ts";

/** Who the attempt is, for the error. */
export interface AttemptIdentity {
  /** The run. */
  runId: string;
  /** The node. */
  nodeId: string;
  /** The attempt number. */
  attempt: number;
}

/** Guards the calls of one attempt. */
export class AttemptFence {
  #who: AttemptIdentity;
  #over: string | undefined;
  /** Calls in flight. */
  #inFlight = 0;
  /** Wakes the callers of {@linkcode AttemptFence.drained} once none is in flight. */
  #idle: (() => void) | undefined;
  /** One settle handler per fence, made at its first call (not a closure and a set entry per call). */
  #settled: (() => void) | undefined;

  /** A fence for `who`, open until {@linkcode AttemptFence.close}. */
  constructor(who: AttemptIdentity) {
    this.#who = who;
  }

  /** Refuse every later call, saying why the attempt is over. */
  close(reason: string): void {
    this.#over ??= reason;
  }

  /** Throw if the attempt is over. */
  check(): void {
    if (this.#over !== undefined) {
      throw new AttemptOverError({ ...this.#who, reason: this.#over });
    }
  }

  /** Run `call` if the attempt is not over, and track it until it settles. */
  guard<T>(call: () => Promise<T>): Promise<T> {
    try {
      this.check();
    } catch (err) {
      return Promise.reject(err);
    }
    const promise = call();
    this.#inFlight++;
    const settled = this.#settled ??= () => {
      if (--this.#inFlight > 0) return;
      const wake = this.#idle;
      this.#idle = undefined;
      wake?.();
    };
    promise.then(settled, settled);
    return promise;
  }

  /** Whether calls begun before the end are still in flight. */
  get busy(): boolean {
    return this.#inFlight > 0;
  }

  /** Resolves once no call is in flight (after close, none can start). */
  drained(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const before = this.#idle;
      this.#idle = before === undefined ? resolve : () => (before(), resolve());
    });
  }
}

/** `view`, with every call guarded by `fence`. */
export function fencedView(view: StateView, fence: AttemptFence): StateView {
  return {
    scope: view.scope,
    get: <T>(key: ScopeKey, options?: ScopeCallOptions) =>
      fence.guard(() => view.get<T>(key, options)),
    entry: <T>(key: ScopeKey, options?: ScopeCallOptions) =>
      fence.guard(() => view.entry<T>(key, options)),
    set: (key, value, options) => fence.guard(() => view.set(key, value, options)),
    delete: (key, options) => fence.guard(() => view.delete(key, options)),
    increment: (key, by, options) => fence.guard(() => view.increment(key, by, options)),
    keys: (options) => fence.guard(() => view.keys(options)),
    entries: <T>(options?: ScopeCallOptions & { prefix?: ScopeKey; limit?: number }) =>
      fence.guard(() => view.entries<T>(options)),
    query: view.query &&
      (<T>(options?: ScopeQueryOptions) => fence.guard(() => view.query!<T>(options))),
    search: view.search &&
      (<T>(text: string, options?: ScopeSearchOptions) =>
        fence.guard(() => view.search!<T>(text, options))),
  };
}
