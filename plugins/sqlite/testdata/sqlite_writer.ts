/**
 * Test helper for plugins/sqlite/processes_test.ts (run as a separate OS process):
 * `deno run sqlite_writer.ts <db path> <durability>` writes ["w", i] for
 * i = 0, 1, 2… and prints i on its own line after each write resolves, until
 * the parent kills it.
 *
 * @module
 */
import { openStore } from "../../../src/plugin.ts";
import sqlite from "../mod.ts";

const [path, durability] = Deno.args as [string, "full" | "relaxed"];
const store = await openStore({ plugin: sqlite, path, durability }, { home: "." });
const encoder = new TextEncoder();
const padding = "x".repeat(200);
for (let i = 0; i < 1_000_000; i++) {
  const key = String(i).padStart(7, "0");
  if (i % 10 === 9) {
    // Every tenth acknowledgement covers an atomic batch of three entries.
    const result = await store.atomic()
      .set(["w", key], { i, padding })
      .set(["w", `${key}-a`], { i, padding })
      .set(["w", `${key}-b`], { i, padding })
      .commit();
    if (!result.ok) throw new Error("unexpected conflict");
  } else {
    await store.set(["w", key], { i, padding });
  }
  const line = encoder.encode(`${key}\n`);
  for (let written = 0; written < line.length;) {
    written += Deno.stdout.writeSync(line.subarray(written));
  }
}
