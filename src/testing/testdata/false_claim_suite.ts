// Run by harness_test.ts with `deno test`: the suite on a plugin whose
// multiProcess claim is false, once with a second-process spec and once without.
import { openStore } from "../../plugin.ts";
import { testStore } from "../conformance/mod.ts";

const plugin = import.meta.resolve("./single_process_plugin.ts");

testStore(
  "with spec",
  ({ clock, indexes, search, changes }) =>
    openStore({ plugin, indexes, search, changes }, { clock }),
  { multiProcess: { spec: () => ({ plugin }) } },
);
testStore(
  "without spec",
  ({ clock, indexes, search, changes }) =>
    openStore({ plugin, indexes, search, changes }, { clock }),
);
