/**
 * The units a size may be written in (`8MiB`, `512KiB`, `1GB`), in bytes,
 * by their lower-case name: `KiB`/`MiB`/`GiB` are powers of 1024,
 * `KB`/`MB`/`GB` powers of 1000, `B` (or nothing) bytes.
 *
 * @example
 * ```ts
 * import { SIZE_UNITS } from "./_size_units.ts";
 * import assert from "node:assert/strict";
 * assert.equal(8 * SIZE_UNITS.mib, 8 * 1024 * 1024);
 * assert.equal(SIZE_UNITS.kb, 1000);
 * ```
 */
export const SIZE_UNITS: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
};
