/**
 * Test helper for plugins/postgres/postgres_test.ts (run as a separate OS process with
 * chosen permissions): `deno run postgres_open.ts <url>` opens a postgres
 * store and prints "opened" or the error message, as one JSON line.
 *
 * @module
 */
import { openStore } from "../../../src/plugin.ts";
import postgres from "../mod.ts";

try {
  const store = await openStore({ plugin: postgres, url: Deno.args[0] }, { name: "main" });
  await store.close();
  console.log(JSON.stringify("opened"));
} catch (err) {
  console.log(JSON.stringify(err instanceof Error ? err.message : String(err)));
}
