import assert from "node:assert/strict";
import { join } from "node:path";
import { z } from "zod";
import { ConfigError, StoreClosedError, StoreOpenError } from "./errors.ts";
import { definePlugin, type Plugin } from "./plugin.ts";
import { flowHostOf, openRuntime } from "./runtime.ts";
import type { StoreDriver } from "./store/driver.ts";
import { MemoryDriver } from "../plugins/memory/mod.ts";
import { UnknownStoreError } from "./errors.ts";

const FAILING_OPEN = new URL("../tests/fixtures/failing_open_store.ts", import.meta.url).pathname;

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-runtime-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A memory-backed plugin that records opens and closes, and can fail either. */
function probePlugin(options: { failOpen?: number; failClose?: string } = {}) {
  const events: string[] = [];
  let failOpen = options.failOpen ?? 0;
  const plugin = definePlugin({
    name: "probe",
    optionsSchema: z.strictObject({ label: z.string().optional() }),
    open(opts, context): StoreDriver {
      events.push(`open ${context.storeName}`);
      if (failOpen > 0) {
        failOpen--;
        throw new Error(`probe ${context.storeName} refused to open`);
      }
      const driver = new MemoryDriver();
      return {
        location: `probe:${opts.label ?? context.storeName}`,
        get: (key) => driver.get(key),
        list: (range) => driver.list(range),
        commit: (request) => driver.commit(request),
        close: () => {
          events.push(`close ${context.storeName}`);
          if (options.failClose === context.storeName) {
            throw new Error(`probe ${context.storeName} failed to close`);
          }
        },
      };
    },
  });
  return { plugin: plugin as unknown as Plugin<never>, events };
}

Deno.test("openRuntime() opens stores lazily, once, and store() defaults to the global scope's store", async () => {
  const { plugin, events } = probePlugin();
  await using runtime = await openRuntime({
    config: {
      stores: { a: { plugin }, b: { plugin, label: "bee" } },
      scopes: { global: "b", node: "a" },
    },
    home: "/nonexistent/home",
  });
  assert.deepEqual(runtime.storeNames, ["a", "b"]);
  assert.deepEqual(events, [], "nothing opens before first use");
  assert.equal(runtime.isOpen("b"), false);

  const [first, second] = await Promise.all([runtime.store(), runtime.store("b")]);
  assert.equal(first, second, "concurrent calls share one store");
  assert.equal(first.name, "b");
  assert.equal(first.location, "probe:bee");
  assert.equal(runtime.isOpen("b"), true);
  assert.deepEqual(events, ["open b"]);

  assert.equal((await runtime.storeFor("node")).name, "a");
  // An unset scope uses the store named "default", else the first store.
  assert.equal(await runtime.storeFor("flow"), await runtime.storeFor("node"));
  assert.deepEqual(events, ["open b", "open a"]);
});

Deno.test("Runtime.storeFor() maps unset scopes to the store named default", async () => {
  await using runtime = await openRuntime({
    config: { stores: { other: { plugin: "memory" }, default: { plugin: "memory" } } },
  });
  assert.equal((await runtime.storeFor("flow")).name, "default");
  assert.equal((await runtime.store()).name, "default");
  await assert.rejects(runtime.storeFor("galaxy" as never), RangeError);
});

Deno.test("Runtime.store() rejects an unknown name with the known names and a suggestion", async () => {
  await using runtime = await openRuntime({
    config: { stores: { main: { plugin: "memory" }, cache: { plugin: "memory" } } },
  });
  await assert.rejects(runtime.store("mian"), (err: Error) => {
    assert.ok(err instanceof UnknownStoreError);
    assert.equal(err.code, "STORE_UNKNOWN");
    assert.equal(err.store, "mian");
    assert.deepEqual(err.known, ["main", "cache"]);
    assert.equal(
      err.message,
      'Cannot open store "mian": no such store (did you mean "main"?); the configured stores are "main", "cache"',
    );
    return true;
  });
});

Deno.test("Runtime.store() forgets a failed open so a later call can retry", async () => {
  const { plugin, events } = probePlugin({ failOpen: 1 });
  await using runtime = await openRuntime({ config: { stores: { s: { plugin } } } });
  await assert.rejects(runtime.store("s"), /probe s refused to open/);
  assert.equal(runtime.isOpen("s"), false);
  const store = await runtime.store("s");
  assert.equal(store.name, "s");
  assert.deepEqual(events, ["open s", "open s"]);
});

Deno.test("a run's state views take a scope's store without waiting once it is open, and not after close() or a failed open", async () => {
  const { plugin } = probePlugin({ failOpen: 1 });
  const runtime = await openRuntime({
    config: {
      stores: { main: { plugin: "memory" }, other: { plugin } },
      scopes: { global: "main", flow: "main", node: "other" },
    },
  });
  const { resolver } = flowHostOf(runtime).host;
  assert.equal(resolver.opened!("global"), undefined, "not open yet");
  const main = await resolver.forScope("global");
  assert.equal(resolver.opened!("global"), main);
  assert.equal(resolver.opened!("flow"), main);
  await assert.rejects(resolver.forScope("node"), /probe other refused to open/);
  assert.equal(resolver.opened!("node"), undefined, "a failed open is not handed out");
  const other = await resolver.forScope("node");
  assert.equal(resolver.opened!("node"), other);
  await runtime.close();
  assert.equal(resolver.opened!("global"), undefined, "none once the runtime closes");
  await assert.rejects(resolver.forScope("global"), StoreClosedError);
});

Deno.test("Runtime.close() closes every opened store even when one close throws", async () => {
  const { plugin, events } = probePlugin({ failClose: "b" });
  const runtime = await openRuntime({
    config: { stores: { a: { plugin }, b: { plugin }, c: { plugin }, unused: { plugin } } },
  });
  const a = await runtime.store("a");
  await runtime.store("b");
  await runtime.store("c");
  await assert.rejects(runtime.close(), /probe b failed to close/);
  assert.deepEqual(events.filter((e) => e.startsWith("close")).sort(), [
    "close a",
    "close b",
    "close c",
  ]);
  await assert.rejects(a.get(["x"]), StoreClosedError);
  // Idempotent: the same outcome, no second close of any store.
  await assert.rejects(runtime.close(), /probe b failed to close/);
  assert.equal(events.filter((e) => e.startsWith("close")).length, 3);
  await assert.rejects(runtime.store("a"), (err: Error) => {
    assert.ok(err instanceof StoreClosedError);
    assert.match(err.message, /the runtime is closed/);
    return true;
  });
});

Deno.test("Runtime.close() reports several failed closes as one AggregateError", async () => {
  const one = probePlugin({ failClose: "a" });
  const two = probePlugin({ failClose: "b" });
  const runtime = await openRuntime({
    config: { stores: { a: { plugin: one.plugin }, b: { plugin: two.plugin } } },
  });
  await runtime.store("a");
  await runtime.store("b");
  await assert.rejects(runtime.close(), (err: Error) => {
    assert.ok(err instanceof AggregateError);
    assert.equal(err.errors.length, 2);
    return true;
  });
});

Deno.test("openRuntime() disposes with await using", async () => {
  const { plugin, events } = probePlugin();
  {
    await using runtime = await openRuntime({ config: { stores: { s: { plugin } } } });
    await runtime.store("s");
  }
  assert.deepEqual(events, ["open s", "close s"]);
});

Deno.test("openRuntime() gives every store the injected clock", async () => {
  let now = 1_000_000;
  await using runtime = await openRuntime({
    config: { stores: { m: { plugin: "memory" } } },
    clock: { now: () => now },
  });
  const store = await runtime.store();
  await store.set(["session"], "abc", { expireIn: 5_000 });
  assert.equal((await store.get(["session"]))?.expiresAt, 1_005_000);
  now += 5_000;
  assert.equal(await store.get(["session"]), null);
});

Deno.test("openRuntime() points a plugin option error at the option's line in the file", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main:\n    plugin: memory\n    snapshto: main.json\n",
    );
    await using runtime = await openRuntime({ cwd: dir, env: {} });
    await assert.rejects(runtime.store("main"), (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.match(
        err.message,
        /^flowstate\.yaml:4:5: stores\.main\.snapshto: Cannot open store "main" \(plugin "memory"\): unknown option "snapshto" \(did you mean "snapshot"\?\)/,
      );
      return true;
    });
  });
});

Deno.test("openRuntime() points a plugin's own open() error at the store in the file", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      `stores:\n  other: { plugin: memory }\n  main:\n    plugin: ${FAILING_OPEN}\n`,
    );
    await using runtime = await openRuntime({ cwd: dir, env: {} });
    await assert.rejects(runtime.store("main"), (err: Error) => {
      assert.ok(err instanceof StoreOpenError);
      assert.equal(
        err.message,
        'flowstate.yaml:3:3: stores.main: Cannot open store "main" (plugin "flaky"): the disk is on fire',
      );
      assert.equal(err.file, join(dir, "flowstate.yaml"));
      assert.equal((err.cause as Error).message, "the disk is on fire");
      return true;
    });
  });
});

Deno.test("openRuntime() points a plugin that cannot be loaded at its plugin line", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main:\n    plugin: ./missing-plugin.ts\n",
    );
    await using runtime = await openRuntime({ cwd: dir, env: {} });
    await assert.rejects(runtime.store(), (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /^flowstate\.yaml:3:5: stores\.main\.plugin: Cannot load plugin/);
      return true;
    });
  });
});

Deno.test("openRuntime() resolves relative store paths against the config file's directory", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "conf"));
    await Deno.writeTextFile(
      join(dir, "conf", "fs.yaml"),
      "stores:\n  main: { plugin: memory, snapshot: snap.json }\n",
    );
    {
      await using runtime = await openRuntime({ cwd: dir, config: "conf/fs.yaml", env: {} });
      await (await runtime.store()).set(["k"], 1);
    }
    const snapshot = JSON.parse(await Deno.readTextFile(join(dir, "conf", "snap.json")));
    assert.equal(snapshot.entries.length, 1);
    await using again = await openRuntime({ cwd: dir, config: "conf/fs.yaml", env: {} });
    assert.equal((await (await again.store()).get(["k"]))?.value, 1);
  });
});

Deno.test("openRuntime() rejects an invalid config before opening anything", async () => {
  await assert.rejects(
    openRuntime({ config: { stores: { a: { plugin: "memory" } }, scopes: { flow: "b" } } }),
    ConfigError,
  );
});

Deno.test({
  name: "openRuntime() without a config opens a sqlite store at <home>/state.db, creating home",
  fn: async () => {
    await withTempDir(async (dir) => {
      const home = join(dir, "nested", "home");
      {
        await using runtime = await openRuntime({ cwd: dir, env: { FLOWSTATE_HOME: home } });
        assert.equal(runtime.home, home);
        assert.equal(runtime.storeNames.length, 1);
        const store = await runtime.store();
        assert.equal(store.name, "default");
        assert.equal(store.plugin, "sqlite");
        await store.set(["runs"], 1);
      }
      assert.ok((await Deno.stat(join(home, "state.db"))).isFile);
      await using again = await openRuntime({ cwd: dir, env: { FLOWSTATE_HOME: home } });
      assert.equal((await (await again.store()).get(["runs"]))?.value, 1);
    });
  },
});
