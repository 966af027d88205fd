// A write-behind cache's onFlushError that throws, or an async one that rejects: it used to be an
// unhandled rejection, ending the program (or failing its `deno test`); it is ignored, and the
// timed flush is retried as with a handler that returns.
import assert from "node:assert/strict";
import { openStore } from "../mod.ts";
import { cached } from "../cache.ts";
import { within } from "./_deadline.ts";

for (const kind of ["throws", "rejects"] as const) {
  Deno.test(`a write-behind cache whose onFlushError ${kind} goes on retrying, without an unhandled rejection`, async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (event: PromiseRejectionEvent) => {
      event.preventDefault();
      unhandled.push(event.reason);
    };
    globalThis.addEventListener("unhandledrejection", onUnhandled);
    try {
      const inner = await openStore({ plugin: "memory" });
      const calls: unknown[] = [];
      const twice = Promise.withResolvers<void>();
      const bug = new Error("the handler's own bug");
      const store = cached(inner, {
        mode: "write-behind",
        flushInterval: 1,
        onFlushError: kind === "throws"
          ? (error) => {
            calls.push(error);
            if (calls.length === 2) twice.resolve();
            throw bug;
          }
          : async (error) => {
            calls.push(error);
            if (calls.length === 2) twice.resolve();
            await Promise.resolve();
            throw bug;
          },
      });
      await store.set(["k"], 1);
      await inner.close(); // every flush fails from now on
      await within(twice.promise, "a second timed flush after the handler failed");
      await new Promise((resolve) => setTimeout(resolve, 0)); // a turn for rejections to surface
      assert.deepEqual(unhandled, []);
      assert.match(String(calls[0]), /closed/);
      await assert.rejects(store.close(), /closed/); // the pending write, told to close()
    } finally {
      globalThis.removeEventListener("unhandledrejection", onUnhandled);
    }
  });
}
