/**
 * Quickstart: a counter that goes up every time this script runs.
 *
 * ```sh
 * deno task example      # or: npx -y deno@2.9.6 task example
 * ```
 *
 * Without a flowstate.yaml, state lives in the embedded default store: SQLite
 * at `.flowstate/state.db` under the working directory (`FLOWSTATE_HOME`
 * moves it). Run it twice and the number goes up.
 *
 * @module
 */
import { openRuntime } from "@flowstate/core";

await using runtime = await openRuntime();
const store = await runtime.store(); // the store of the global scope: "default"
const key = ["examples", "quickstart", "runs"];

// Read, add one, and write back only if nobody wrote in between (compare-and-set),
// so two copies running at once never lose a count.
let runs: number;
for (;;) {
  const entry = await store.get<number>(key);
  runs = (entry?.value ?? 0) + 1;
  const result = await store.set(key, runs, { ifVersion: entry?.version ?? null });
  if (result.ok) break;
}

console.log(`This example has run ${runs} time${runs === 1 ? "" : "s"}.`);
console.log(`State: store "${store.name}" (${store.plugin}) at ${store.location}`);
