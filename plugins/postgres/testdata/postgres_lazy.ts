/**
 * Test helper for plugins/postgres/postgres_test.ts (run as a separate OS process with
 * "postgres" mapped to postgres_stub.ts): imports the plugin, reports whether
 * the driver package was evaluated, opens a store (which fails against the
 * stub), and reports again, as one JSON line.
 *
 * @module
 */
import { openStore } from "../../../src/plugin.ts";
import postgres from "../mod.ts";

const loaded = () => (globalThis as { postgresStubLoaded?: boolean }).postgresStubLoaded === true;
const afterImport = loaded();
let error = "";
try {
  await openStore({ plugin: postgres, url: "postgres://user@127.0.0.1:1/db" }, { name: "lazy" });
} catch (err) {
  error = String(err);
}
console.log(JSON.stringify({ afterImport, afterOpen: loaded(), error }));
