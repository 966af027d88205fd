/**
 * What the watch benchmarks share (feed_bench.ts, watch_bench.ts): the
 * watcher's side of a latency measurement across processes.
 *
 * @module
 */
import type { Store } from "../mod.ts";

/** Wall-clock milliseconds, comparable across processes. */
export const now = (): number => performance.timeOrigin + performance.now();

/**
 * Start watching `["watched"]` from the feed's head; resolves once the
 * watcher started, to `done`: it settles once `count` changes arrived, with
 * each one's latency: `now()` at arrival less the `sentAt` its writer
 * stamped into the value.
 */
export async function watchLatencies(
  store: Store,
  count: number,
): Promise<{ done: Promise<number[]> }> {
  const since = (await store.feedInfo()).lastSeq;
  const lat: number[] = [];
  const stop = new AbortController();
  const done = (async () => {
    for await (const c of store.watch([["watched"]], { since, signal: stop.signal })) {
      lat.push(now() - (c.value as { sentAt: number }).sentAt);
      if (lat.length === count) stop.abort();
    }
    return lat;
  })();
  return { done };
}
