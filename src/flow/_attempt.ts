/**
 * The fence of one node attempt: while the attempt runs, its state views,
 * sub-flows and logs work; once it is over (it returned, threw, timed out, or
 * its run was cancelled) every call throws {@linkcode AttemptOverError}, and
 * the executor can wait for the calls that began before the end.
 *
 * @module
 */
import { AttemptOverError } from "../errors.ts";
import type { ViewGuard } from "../state/scopes.ts";

/** Guards the calls of one attempt (its state views are guarded by it too). */
export class AttemptFence implements ViewGuard {
  /** Who the attempt is, for the error (fields, not an object: one fence per node attempt). */
  readonly #runId: string;
  readonly #nodeId: string;
  readonly #attempt: number;
  #over: string | undefined;
  /** Calls in flight. */
  #inFlight = 0;
  /** Wakes the callers of {@linkcode AttemptFence.drained} once none is in flight. */
  #idle: (() => void) | undefined;
  /** One settle handler per fence, made at its first call (not a closure and a set entry per call). */
  #settled: (() => void) | undefined;

  /** A fence for attempt `attempt` of node `nodeId` of run `runId`, open until {@linkcode AttemptFence.close}. */
  constructor(runId: string, nodeId: string, attempt: number) {
    this.#runId = runId;
    this.#nodeId = nodeId;
    this.#attempt = attempt;
  }

  /** Refuse every later call, saying why the attempt is over. */
  close(reason: string): void {
    this.#over ??= reason;
  }

  /** The error a call made now fails with: `undefined` while the attempt runs. */
  refusal(): AttemptOverError | undefined {
    return this.#over === undefined ? undefined : this.overError(this.#over);
  }

  /** The error of a call of this attempt refused for `reason`. */
  overError(reason: string): AttemptOverError {
    return new AttemptOverError({
      runId: this.#runId,
      nodeId: this.#nodeId,
      attempt: this.#attempt,
      reason,
    });
  }

  /** Throw if the attempt is over. */
  check(): void {
    const refused = this.refusal();
    if (refused !== undefined) throw refused;
  }

  /** Run `call` if the attempt is not over, and track it until it settles. */
  guard<T>(call: () => Promise<T>): Promise<T> {
    const refused = this.refusal();
    if (refused !== undefined) return Promise.reject(refused);
    return this.track(call());
  }

  /** Track `promise` (a call that just began) until it settles; returns it. */
  track<T>(promise: Promise<T>): Promise<T> {
    this.enter();
    const settled = this.#settled ??= () => this.leave();
    promise.then(settled, settled);
    return promise;
  }

  /** A call begins (see {@linkcode ViewGuard.enter}); each is ended by one {@linkcode AttemptFence.leave}. */
  enter(): void {
    this.#inFlight++;
  }

  /** A call {@linkcode AttemptFence.enter} began has settled. */
  leave(): void {
    if (--this.#inFlight > 0) return;
    const wake = this.#idle;
    this.#idle = undefined;
    wake?.();
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
