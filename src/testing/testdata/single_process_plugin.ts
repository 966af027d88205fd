/**
 * A plugin that claims `multiProcess` but keeps its entries in this
 * process's memory: each process sees only its own writes. The conformance
 * suite's multi-process case must catch it.
 *
 * @module
 */
import { z } from "zod";
import { definePlugin } from "../../plugin.ts";
import { MemoryDriver } from "../../../plugins/memory/mod.ts";

class SingleProcessDriver extends MemoryDriver {
  override readonly capabilities = {
    persistent: false,
    expiry: false,
    atomicClear: true,
    multiProcess: true, // the false claim
  };
}

export default definePlugin({
  name: "single-process",
  optionsSchema: z.strictObject({}),
  open: (_options, context) => new SingleProcessDriver(undefined, context.clock),
});
