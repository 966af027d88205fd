import assert from "node:assert/strict";
import { truthy } from "./mod.ts";

// ---------------------------------------------------------------------------
// truthy

Deno.test("truthy() follows JavaScript", () => {
  for (const value of [false, 0, -0, NaN, "", null, undefined]) assert.equal(truthy(value), false);
  for (const value of [true, 1, -1, "0", "false", " ", [], {}, [0]]) {
    assert.equal(truthy(value), true);
  }
});
