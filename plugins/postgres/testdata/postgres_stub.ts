/**
 * Test helper for plugins/postgres/postgres_test.ts: stands in for the `postgres` npm
 * package (the lazy-import test maps "postgres" to this file). Evaluating it
 * sets `globalThis.postgresStubLoaded`; every query rejects.
 *
 * @module
 */
(globalThis as { postgresStubLoaded?: boolean }).postgresStubLoaded = true;

/** A fake `postgres()` whose queries all reject with "stub driver". */
export default function postgres(): unknown {
  const fail = () => Promise.reject(new Error("stub driver"));
  // What a client's options hold for its types (see plugins/postgres/client.ts).
  const options = { parsers: {}, serializers: {}, shared: { typeArrayMap: {} } };
  return { unsafe: fail, begin: fail, reserve: fail, end: () => Promise.resolve(), options };
}
