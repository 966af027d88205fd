/**
 * A file that does nothing: Deno's own start, a row of bench/cold_start.ts.
 *
 * Run: deno run bench/cold_empty.ts
 */
export {};
