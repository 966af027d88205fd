/**
 * The orders the index benches fill a store with (bench/indexes_bench.ts,
 * eq_ab.ts, eq_fixed_ab.ts, pg_reads_ab.ts): `["orders", "00000000"]`… with a
 * status (one entry in the middle is `"needle"`, the rest one of 50), a
 * number `n`, a customer id and, with text, a title and a body of words.
 *
 * @module
 */
import type { Store } from "../src/store/types.ts";

/** 2,000 distinct words. */
export const WORDS: readonly string[] = Array.from(
  { length: 2000 },
  (_, i) => `w${(i * 7919 % 2000).toString(36)}x`,
);

/** Write `n` orders to `store`, 5,000 a commit. */
export async function fillOrders(store: Store, n: number, withText: boolean): Promise<void> {
  let op = store.atomic();
  for (let i = 0; i < n; i++) {
    const value: Record<string, unknown> = {
      status: i === Math.floor(n / 2) ? "needle" : `s${i % 50}`,
      n: i,
      customer: { id: i % 1000 },
    };
    if (withText) {
      value.title = `${WORDS[i % WORDS.length]} ${WORDS[(i * 31) % WORDS.length]}`;
      value.body = Array.from({ length: 8 }, (_, j) => WORDS[(i * 13 + j * 101) % WORDS.length])
        .join(" ");
    }
    op.set(["orders", String(i).padStart(8, "0")], value as never);
    if (i % 5000 === 4999) {
      await op.commit();
      op = store.atomic();
    }
  }
  await op.commit();
}
