/**
 * The child process of tests/faults/kill_test.ts's acknowledged writes: opens
 * the store of the spec it is given and runs the writes of `ops(seed, count)`
 * one after the other, printing `ready` once the store is open and each op's
 * number once its write resolved (was acknowledged), until it is killed.
 *
 * Usage: _child.ts <store spec JSON> <seed> <count>
 */
import { openStore } from "../../mod.ts";
import { apply, ops } from "./_ops.ts";

const [spec, seed, count] = Deno.args;
const sequence = ops(Number(seed), Number(count));
const store = await openStore(JSON.parse(spec), { name: "faults" });
const encoder = new TextEncoder();
// Written synchronously, so no acknowledged line waits in a buffer when the process dies.
const say = (line: string) => Deno.stdout.writeSync(encoder.encode(`${line}\n`));
say("ready");
for (const [i, op] of sequence.entries()) {
  await apply(store, op);
  say(String(i));
}
await store.close();
say("done");
