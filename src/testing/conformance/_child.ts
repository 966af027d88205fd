/**
 * The second process of the multi-process conformance case. Run as
 * `deno run <flags> _child.ts '<json>'` with `{ spec, rounds }`: it opens the
 * store from `spec` (a module specifier and options, as a config names a
 * store), prints `ready`, waits for a line on stdin, runs {@linkcode race},
 * prints its result as one JSON line, closes the store, prints `closed` and
 * ends by itself (it never calls `Deno.exit` on success). Any
 * failure goes to stderr with exit code 1.
 *
 * @module
 */
import { openStore, type StoreSpec } from "../../plugin.ts";
import { race } from "./_race.ts";

const encoder = new TextEncoder();
const say = (line: string) => Deno.stdout.writeSync(encoder.encode(`${line}\n`));

try {
  const { spec, rounds } = JSON.parse(Deno.args[0] ?? "") as { spec: StoreSpec; rounds: number };
  const store = await openStore(spec, { name: "second-process" });
  try {
    say("ready");
    // Wait for the go: the first line on stdin.
    const reader = Deno.stdin.readable.getReader();
    await reader.read();
    reader.releaseLock();
    say(JSON.stringify(await race(store, "second", rounds)));
  } catch (err) {
    await store.close();
    throw err;
  }
  await store.close();
  // The process must now end by itself: a driver whose close() leaves a socket,
  // a pool or a timer behind keeps it alive, and the parent says so.
  say("closed");
} catch (err) {
  console.error(err instanceof Error ? err.stack ?? err.message : String(err));
  Deno.exit(1);
}
