/**
 * The work both processes of the multi-process case do at once, on the same
 * store: increment one counter by compare-and-set, and claim keys that must
 * each be won by exactly one writer. Shared by the case (`processes.ts`) and
 * the second process (`_child.ts`).
 *
 * @module
 */
import type { Store } from "../../store/types.ts";

/** The counter both processes increment. */
export const COUNTER_KEY = ["mp", "counter"] as const;

/** The key claimed in round `i` (`set(..., { ifVersion: null })`). */
export function claimKey(i: number): string[] {
  return ["mp", "claim", String(i).padStart(4, "0")];
}

/** What one process reports. */
export interface RaceResult {
  /** Rounds whose claim this process won. */
  won: number[];
  /** Compare-and-set attempts that lost to the other process and were retried. */
  retries: number;
}

/**
 * `rounds` times: add one to the counter (read, then write with `ifVersion`;
 * on a conflict, read again), then try to claim round `i`'s key.
 */
export async function race(store: Store, who: string, rounds: number): Promise<RaceResult> {
  const result: RaceResult = { won: [], retries: 0 };
  for (let i = 0; i < rounds; i++) {
    for (;;) {
      const entry = await store.get<number>(COUNTER_KEY);
      const next = (entry?.value ?? 0) + 1;
      const written = await store.set(COUNTER_KEY, next, { ifVersion: entry?.version ?? null });
      if (written.ok) break;
      result.retries++;
    }
    if ((await store.set(claimKey(i), who, { ifVersion: null })).ok) result.won.push(i);
  }
  return result;
}
