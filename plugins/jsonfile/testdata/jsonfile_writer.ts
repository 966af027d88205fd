/**
 * Test helper for jsonfile_test.ts: writes entries forever from several
 * concurrent loops, printing each key's last element only after its write
 * resolved (was acknowledged). The test kills it with SIGKILL.
 * Usage: jsonfile_writer.ts <store path> <durability>
 */
import { openStore } from "../../../mod.ts";

const [path, durability] = Deno.args as [string, "full" | "relaxed"];
const store = await openStore({ plugin: "jsonfile", path, durability }, { name: "writer" });
const padding = "x".repeat(500);
const encoder = new TextEncoder();
async function loop(id: number): Promise<never> {
  for (let i = 0;; i++) {
    const name = `${id}-${i}`;
    await store.set(["acked", name], { id, i, padding });
    // Written synchronously so a line is never lost in a buffer when the process dies.
    Deno.stdout.writeSync(encoder.encode(`${name}\n`));
  }
}
await Promise.all([0, 1, 2, 3].map(loop));
