/**
 * Test helper for jsonfile_test.ts: opens a store, writes one entry, closes it
 * and prints "ok", or prints the error and exits with 1.
 * Usage: jsonfile_open.ts <store path> <lockTimeout>
 */
import { openStore } from "../../../mod.ts";

const [path, lockTimeout] = Deno.args;
try {
  const store = await openStore({ plugin: "jsonfile", path, lockTimeout: Number(lockTimeout) });
  await store.set(["opened"], Deno.pid);
  await store.close();
  console.log("ok");
} catch (err) {
  console.log(String(err));
  Deno.exit(1);
}
