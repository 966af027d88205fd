import assert from "node:assert/strict";
import { StoreOpenError, StoreUnavailableError } from "./errors.ts";
import { openStore } from "./plugin.ts";
import { definePlugin } from "./plugin_define.ts";
import type { StoreDriver } from "./store/driver.ts";

const anything = {
  "~standard": { version: 1, vendor: "test", validate: (value: unknown) => ({ value }) },
} as const;

/** A plugin named "flaky" whose open() throws what `fail` gives. */
function failingPlugin(fail: () => unknown) {
  return definePlugin({
    name: "flaky",
    optionsSchema: anything,
    open: (): StoreDriver => {
      throw fail();
    },
  });
}

Deno.test("openStore() names the store and plugin when the plugin's open() throws an error of its own", async () => {
  const cause = new Error("the disk is on fire");
  const err = await openStore({ plugin: failingPlugin(() => cause) }, { name: "main" })
    .catch((e) => e);
  assert.ok(err instanceof StoreOpenError);
  assert.equal(err.message, 'Cannot open store "main" (plugin "flaky"): the disk is on fire');
  assert.equal(err.code, "STORE_OPEN_FAILED");
  assert.equal(err.store, "main");
  assert.equal(err.plugin, "flaky");
  assert.equal(err.file, null);
  assert.equal(err.cause, cause);
  // Without a name, the store is called after its plugin; a thrown string is its own message.
  const unnamed = await openStore({ plugin: failingPlugin(() => "nope") }).catch((e) => e);
  assert.ok(unnamed instanceof StoreOpenError);
  assert.equal(unnamed.message, 'Cannot open store "flaky" (plugin "flaky"): nope');
  // A Deno error too (its class stays reachable as the cause).
  const notFound = await openStore(
    { plugin: failingPlugin(() => new Deno.errors.NotFound("no such file: /x/y")) },
    { name: "main" },
  ).catch((e) => e);
  assert.ok(notFound instanceof StoreOpenError);
  assert.ok(notFound.cause instanceof Deno.errors.NotFound);
});

Deno.test("openStore() passes our own errors, and those that already name the store, through unchanged", async () => {
  const ours = new StoreUnavailableError('Cannot open store "main": down', { store: "main" });
  assert.equal(
    await openStore({ plugin: failingPlugin(() => ours) }, { name: "main" }).catch((e) => e),
    ours,
  );
  const named = new Deno.errors.TimedOut('Cannot open store "main": the lock is held');
  assert.equal(
    await openStore({ plugin: failingPlugin(() => named) }, { name: "main" }).catch((e) => e),
    named,
  );
});
