/**
 * Waiting for a store that cannot be reached yet: what a long-running
 * process (a queue worker, `flowstate serve`'s worker, the daemon) does when
 * its records store's server is down at start or goes away while it runs
 * (the database starts after the worker under systemd or Kubernetes; a
 * restart; a failover).
 *
 * Only a transient failure is waited for (a {@linkcode StoreUnavailableError}
 * whose `transient` is true: the server is down, starting, out of
 * connections, not answering); any other error (a wrong password, a database
 * that does not exist, a bad option, a damaged file) is thrown at once:
 * waiting would not fix it. Attempts are spaced by a capped exponential
 * backoff ({@linkcode storeRetryDelay}: 0.5 s doubling to 30 s), so a
 * process waiting for hours says so twice a minute, not twice a second.
 *
 * @module
 */
import { messageOf, StoreUnavailableError, transientUnavailable } from "../errors.ts";

/** The wait after the first failed attempt, in ms. */
export const STORE_RETRY_FIRST_MS = 500;
/** The longest wait between two attempts, in ms. */
export const STORE_RETRY_MAX_MS = 30_000;

/**
 * How long to wait after the `failures`-th failed attempt in a row (1, 2, …)
 * before the next one, in ms: 0.5 s, 1 s, 2 s, … doubling up to 30 s.
 */
export function storeRetryDelay(failures: number): number {
  const n = Math.max(1, Math.floor(failures));
  return Math.min(STORE_RETRY_MAX_MS, STORE_RETRY_FIRST_MS * 2 ** Math.min(n - 1, 30));
}

/** One failed attempt at reaching a store, told before the wait that follows it. */
export interface StoreWaitInfo {
  /** The store's name. */
  store: string;
  /** Why it cannot be reached (the error's message, without its `Cannot open store "x": `). */
  reason: string;
  /** Failed attempts so far (1 for the first). */
  attempt: number;
  /** How long until the next attempt, in ms. */
  retryInMs: number;
}

/** The part of an unavailable store's message after `Cannot open store "<name>": `, if there. */
export function unavailableReason(err: StoreUnavailableError): string {
  const prefix = `Cannot open store "${err.store}": `;
  const message = messageOf(err);
  return message.startsWith(prefix) ? message.slice(prefix.length) : message;
}

/**
 * `open()` until it resolves: a transient failure (see
 * {@linkcode transientUnavailable}) is told to `onWait` and tried again after
 * {@linkcode storeRetryDelay}; any other failure is thrown at once, and so is
 * a transient one once `maxWaitMs` (default: no limit) have passed since the
 * first failure, its message saying how long it was waited for. Resolves
 * `undefined` as soon as `signal` aborts (during an attempt too: the attempt
 * is left to settle on its own), else the value and the failed attempts.
 */
export async function untilReachable<T>(
  open: () => Promise<T>,
  options: {
    signal?: AbortSignal;
    maxWaitMs?: number;
    onWait?: (info: StoreWaitInfo) => void;
  } = {},
): Promise<{ value: T; failures: number; waitedMs: number } | undefined> {
  const { signal, maxWaitMs = Infinity, onWait } = options;
  const ABORTED = Symbol("aborted");
  const aborted = new Promise<typeof ABORTED>((resolve) => {
    if (signal?.aborted) resolve(ABORTED);
    signal?.addEventListener("abort", () => resolve(ABORTED), { once: true });
  });
  const started = performance.now();
  let failures = 0;
  for (;;) {
    if (signal?.aborted) return undefined;
    const attempt = open();
    attempt.catch(() => {}); // told below, unless given up by the signal
    let err: unknown;
    try {
      const value = await Promise.race([attempt, aborted]);
      if (value === ABORTED) return undefined;
      return { value, failures, waitedMs: performance.now() - started };
    } catch (e) {
      err = e;
    }
    const unavailable = transientUnavailable(err);
    if (unavailable === undefined) throw err;
    failures++;
    const waited = performance.now() - started;
    const retryInMs = storeRetryDelay(failures);
    if (waited + retryInMs > maxWaitMs) throw gaveUp(unavailable, waited);
    onWait?.({
      store: unavailable.store,
      reason: unavailableReason(unavailable),
      attempt: failures,
      retryInMs,
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      new Promise<void>((resolve) => timer = setTimeout(resolve, retryInMs)),
      aborted,
    ]);
    clearTimeout(timer);
  }
}

/** The error of a store still unreachable when the wait for it ran out. */
function gaveUp(err: StoreUnavailableError, waitedMs: number): StoreUnavailableError {
  const seconds = Math.round(waitedMs / 100) / 10;
  return new StoreUnavailableError(
    `${err.message} (still unreachable after waiting ${seconds} s for it)`,
    { store: err.store, address: err.address, transient: err.transient },
    { cause: err.cause },
  );
}
