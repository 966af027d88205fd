/**
 * The project's rule, "every exported symbol has JSDoc with a runnable
 * example", checked: `deno doc --json` over the entry points `deno task
 * check` lints, and every exported symbol (a re-export counted once, at its
 * declaration) must have an `@example`. `deno test --doc` runs the examples.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { entryPoints, missingExamples } from "../tools/doc_examples.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

Deno.test("every exported symbol of the public entry points has an @example", async () => {
  const missing = await missingExamples(ROOT);
  assert.deepEqual(
    missing.map((m) => `${m.at}: ${m.kind} ${m.name} (exported by ${m.entries.join(", ")})`),
    [],
    `${missing.length} exported symbol(s) have no @example in their JSDoc: add a runnable ` +
      "```ts example at the declaration named (deno test --doc runs it)",
  );
});

Deno.test("the entry points checked are the ones deno task check lints", async () => {
  const entries = await entryPoints(ROOT);
  assert.ok(entries.includes("mod.ts") && entries.includes("packages/redis/mod.ts"), `${entries}`);
  for (const entry of entries) assert.ok((await Deno.stat(`${ROOT}${entry}`)).isFile, entry);
});
