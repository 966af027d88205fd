// What a plugin author meets through the public surface (mod.ts, plugin.ts): mistakes in a
// driver are reported at openStore, naming the plugin and what is wrong.
import assert from "node:assert/strict";
import { z } from "zod";
import { ConfigError, loadPlugin, openStore, StoreOpenError } from "../mod.ts";
import {
  byteBounds,
  definePlugin,
  encodeKey,
  hasPrefix,
  prefixUpperBound,
  type StoreDriver,
} from "../plugin.ts";
import { MemoryDriver } from "../plugins/memory/mod.ts";

/** A plugin whose open() returns what `make` gives. */
function pluginReturning(make: () => unknown) {
  return definePlugin({
    name: "mine",
    optionsSchema: z.strictObject({}),
    open: () => make() as StoreDriver,
  });
}

/** A correct driver over the memory plugin's, as a plain object (its methods are own fields). */
function plainDriver(onClose?: () => void): Record<string, unknown> {
  const inner = new MemoryDriver();
  return {
    location: "mine:test",
    get: (key: never) => inner.get(key),
    list: (range: never) => inner.list(range),
    commit: (request: never) => inner.commit(request),
    close: () => onClose?.(),
  };
}

Deno.test("openStore: a plugin whose open() returns nothing is named, with the contract", async () => {
  for (const returned of [undefined, null, 42]) {
    await assert.rejects(
      () => openStore({ plugin: pluginReturning(() => returned) }),
      (err: Error) => {
        assert.ok(err instanceof TypeError);
        assert.match(err.message, /^Cannot open store "mine": plugin "mine"'s open\(\) returned /);
        assert.match(err.message, /get, list, commit and close methods/);
        return true;
      },
    );
  }
});

Deno.test("openStore: a driver missing a required method or its location is refused and closed", async () => {
  for (const lack of ["get", "list", "commit", "location"]) {
    let closed = 0;
    const driver = plainDriver(() => closed++);
    delete driver[lack];
    await assert.rejects(
      () => openStore({ plugin: pluginReturning(() => driver) }),
      (err: Error) => {
        assert.ok(err instanceof TypeError);
        const name = lack === "location" ? "location" : `${lack}()`;
        assert.equal(
          err.message.split(";")[0],
          `Cannot open store "mine": plugin "mine"'s open() returned a driver without ${name}`,
        );
        return true;
      },
    );
    assert.equal(closed, 1, `the driver without ${lack} is closed`);
  }
  const noClose = plainDriver();
  delete noClose.close;
  await assert.rejects(
    () => openStore({ plugin: pluginReturning(() => noClose) }),
    /returned a driver without close\(\); it must return a StoreDriver/,
  );
});

Deno.test("openStore: a correct driver as a plain object or a class instance opens", async () => {
  for (const make of [() => plainDriver(), () => new MemoryDriver()]) {
    await using store = await openStore({ plugin: pluginReturning(make) });
    await store.set(["k"], 1);
    assert.equal((await store.get(["k"]))?.value, 1);
  }
});

Deno.test("a driver whose commit() resolves something else than a result is named at the write", async () => {
  const returns = [undefined, {}, { ok: false }, { ok: "yes" }, Promise.resolve(undefined)];
  for (const returned of returns) {
    for (const changes of [undefined, { keep: "1d" }]) {
      const driver = plainDriver();
      const inner = driver.commit as (request: unknown) => unknown;
      const plugin = pluginReturning(() => ({
        ...driver,
        // Lets the store open (a feed writes its head), then answers wrongly.
        commit: (request: { mutations: { key: string[] }[] }) => {
          const user = request.mutations.some((m) => m.key?.[0] === "k");
          return user ? returned : inner(request);
        },
      }));
      await using store = await openStore(changes ? { plugin, changes } : { plugin });
      await assert.rejects(
        () => store.set(["k"], 1),
        (err: Error) => {
          assert.ok(err instanceof TypeError, String(err));
          assert.match(
            err.message,
            /^Cannot commit to store "mine": its driver's commit\(\) resolved .*; it must resolve \{ ok: true \} or \{ ok: false, conflicts: /,
          );
          return true;
        },
        `${JSON.stringify(returned)} ${changes ? "with" : "without"} a feed`,
      );
    }
  }
});

Deno.test("a driver that returns a malformed entry is named, by get, list, query, count and search alike", async () => {
  const mangles: Record<string, (raw: Record<string, unknown>) => unknown> = {
    "expiresAt left out": ({ expiresAt: _, ...rest }) => rest,
    "the value parsed": (raw) => ({ ...raw, value: JSON.parse(raw.value as string) }),
    "no version": ({ version: _, ...rest }) => rest,
    "not an object": () => 42,
  };
  for (const [label, mangle] of Object.entries(mangles)) {
    const inner = plainDriver();
    const get = inner.get as (key: unknown) => Record<string, unknown> | null;
    const list = inner.list as (range: unknown) => Record<string, unknown>[];
    const plugin = pluginReturning(() => ({
      ...inner,
      get: (key: unknown) => {
        const raw = get(key);
        return raw === null ? null : mangle(raw);
      },
      list: (range: unknown) => [...list(range)].map(mangle),
    }));
    await using store = await openStore({ plugin });
    await store.set(["k"], { n: 1 });
    const malformed =
      /The store's driver returned a malformed entry: .*; a RawEntry is \{ key: string\[\], value: its JSON text/;
    await assert.rejects(() => store.get(["k"]), malformed, `get: ${label}`);
    await assert.rejects(() => Array.fromAsync(store.list()), malformed, `list: ${label}`);
    // The core's scans (no native query, count or search) read the same entries: never a
    // SyntaxError from JSON.parse, nor an entry counted or left out silently.
    const where = { where: [{ path: "n", op: "eq" as const, value: 1 }] };
    await assert.rejects(() => store.query(where), malformed, `query: ${label}`);
    await assert.rejects(() => store.count(), malformed, `count: ${label}`);
    await assert.rejects(() => store.search("1"), malformed, `search: ${label}`);
    // A native query's rows are checked before their expiry is read.
    const native = pluginReturning(() => ({
      ...inner,
      capabilities: { query: true },
      query: () => Promise.resolve([...list({ prefix: [] })].map(mangle)),
    }));
    await using queried = await openStore({ plugin: native });
    await queried.set(["k"], { n: 1 });
    await assert.rejects(() => queried.query(where), malformed, `native query: ${label}`);
  }
});

Deno.test("a driver may answer query and commit with a promise or another library's thenable", async () => {
  // What `await` accepts, the core accepts: a thenable is no Promise (`instanceof`). An answer
  // given at once (an array, a result) is the sqlite driver's, tested with it.
  const thenable = <T>(p: Promise<T>) => ({ then: p.then.bind(p) });
  for (const mode of ["promise", "thenable"] as const) {
    const answer = <T>(value: T | Promise<T>): unknown => {
      const p = Promise.resolve(value);
      return mode === "promise" ? p : thenable(p);
    };
    class Driver extends MemoryDriver {
      override readonly capabilities = { ...new MemoryDriver().capabilities, query: true };
      override query(...args: Parameters<MemoryDriver["query"]>) {
        return answer(super.query(...args)) as ReturnType<MemoryDriver["query"]>;
      }
      override commit(...args: Parameters<MemoryDriver["commit"]>) {
        return answer(super.commit(...args)) as ReturnType<MemoryDriver["commit"]>;
      }
    }
    await using store = await openStore({ plugin: pluginReturning(() => new Driver()) });
    await store.set(["o", "1"], { n: 1 });
    assert.deepEqual((await store.get(["o", "1"]))?.value, { n: 1 }, mode);
    assert.deepEqual((await store.query({ prefix: ["o"] })).map((e) => e.value), [{ n: 1 }], mode);
  }
});

Deno.test("openStore: a driver claiming a capability that does not exist is refused and closed, with a suggestion", async () => {
  let closed = 0;
  const driver = {
    ...plainDriver(() => closed++),
    capabilities: { persistent: true, multiProces: true },
  };
  await assert.rejects(
    () => openStore({ plugin: pluginReturning(() => driver) }),
    (err: Error) => {
      assert.ok(err instanceof TypeError);
      assert.equal(
        err.message.split(";")[0],
        `Cannot open store "mine": plugin "mine"'s open() returned a driver with unknown capability "multiProces" (did you mean "multiProcess"?)`,
      );
      assert.match(err.message, /; the capabilities are persistent, expiry, .*multiProcess/);
      return true;
    },
  );
  assert.equal(closed, 1, "the driver with the misspelt capability is closed");
});

Deno.test("openStore: a driver whose list() returns a promise of an array is refused, with what to write", async () => {
  let closed = 0;
  const inner = plainDriver(() => closed++);
  const list = inner.list as (range: unknown) => Iterable<unknown>;
  // The natural slip of a server-backed driver: `async list()` instead of `async *list()`.
  // deno-lint-ignore require-await
  const driver = { ...inner, list: async (range: unknown) => [...list(range)] };
  await assert.rejects(
    () => openStore({ plugin: pluginReturning(() => driver) }),
    (err: Error) => {
      assert.ok(err instanceof TypeError);
      assert.equal(
        err.message,
        `Cannot open store "mine": plugin "mine"'s open() returned a driver whose list() returns ` +
          "a Promise; list() must return an iterable or async iterable of RawEntry (make it " +
          "`async *list` and yield the entries, or return the array itself)",
      );
      return true;
    },
  );
  assert.equal(closed, 1, "the driver is closed");
});

Deno.test("a driver whose get() returns undefined for a missing key is told to return null", async () => {
  const inner = plainDriver();
  const get = inner.get as (key: unknown) => unknown;
  const plugin = pluginReturning(() => ({
    ...inner,
    get: (key: unknown) => get(key) ?? undefined,
  }));
  await using store = await openStore({ plugin });
  await assert.rejects(
    () => store.get(["absent"]),
    /The store's driver returned undefined for an entry; return null for an absent key/,
  );
});

Deno.test("openStore: an optionsSchema that throws is named as the plugin's, with the store, not a bare error", async () => {
  const throwing = definePlugin({
    name: "mine",
    optionsSchema: {
      "~standard": {
        version: 1,
        vendor: "test",
        validate: (value: unknown) => ((value as { url: string }).url.length, { value }),
      },
    } as never,
    open: () => plainDriver() as unknown as StoreDriver,
  });
  await assert.rejects(
    () => openStore({ plugin: throwing }, { name: "main" }),
    (err: Error) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(
        err.message,
        /^Cannot open store "main" \(plugin "mine"\): mine's optionsSchema threw while checking the options: .*\(a schema must report a bad option as an issue, not throw\)$/,
      );
      assert.ok(err.cause instanceof TypeError);
      return true;
    },
  );
});

Deno.test("loadPlugin: a module that is not a plugin is told what it lacks and how to export it", async () => {
  const fixture = (name: string) =>
    new URL(`./fixtures/plugin_exports/${name}.ts`, import.meta.url);
  const cases: [string, RegExp][] = [
    [
      "named_only",
      /: the module has no default export, but its export "plugin" is a plugin: add `export default plugin;`$/,
    ],
    [
      "no_schema",
      /: its default export is not a plugin: it lacks optionsSchema \(a Standard Schema such as z\.strictObject\(\{…\}\) from zod\); export default definePlugin\(\{ name, optionsSchema, open \}\) from "@flowstate\/core\/plugin"$/,
    ],
    [
      "bare_open",
      /: its default export is a function \(open\), not a plugin object: export default definePlugin\(\{ name, optionsSchema, open \}\) from "@flowstate\/core\/plugin", with the function as open$/,
    ],
    [
      "nothing",
      /: the module has no default export; export default definePlugin\(\{ name, optionsSchema, open \}\)/,
    ],
  ];
  for (const [name, expected] of cases) {
    await assert.rejects(
      () => loadPlugin(fixture(name).href, { storeName: "main" }),
      (err: Error) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.ok(
          err.message.startsWith(`Cannot load plugin "${fixture(name).href}" for store "main"`),
        );
        assert.match(err.message, expected);
        return true;
      },
    );
  }
});

Deno.test("openStore: a client that open() imports and no import map resolves names the line to add", async () => {
  // As the docs advise, the heavy client is imported inside open(); its name is mapped nowhere.
  const client = "flowstate-test-unmapped-client";
  const lazy = definePlugin({
    name: "lazy",
    optionsSchema: z.strictObject({}),
    async open() {
      await import(client);
      return plainDriver() as unknown as StoreDriver;
    },
  });
  await assert.rejects(
    () => openStore({ plugin: lazy }, { name: "main" }),
    (err: Error) => {
      assert.ok(err instanceof StoreOpenError, String(err));
      assert.match(
        err.message,
        /^Cannot open store "main" \(plugin "lazy"\): .*plugin_author_test\.ts imports "flowstate-test-unmapped-client", which no import map resolves: add "flowstate-test-unmapped-client": "npm:flowstate-test-unmapped-client@<version>" to the imports of .*deno\.json/,
      );
      return true;
    },
  );
});

Deno.test("byteBounds and prefixUpperBound from @flowstate/core/plugin bound exactly the keys of a range", () => {
  const keys = [
    ["a"],
    ["a", ""],
    ["a", "b"],
    ["a", "\u0000"],
    ["a\u0000"],
    ["a\u0000", "b"],
    ["a\u0001"],
    ["ab"],
    ["a", "\uFFFF"],
    ["a", "😀"],
    ["b"],
  ];
  const bytesIn = (k: string[], b: ReturnType<typeof byteBounds>) => {
    const e = encodeKey(k);
    const lower = b.lower === undefined ? 1 : Buffer.compare(e, b.lower);
    return (b.lowerExclusive ? lower > 0 : lower >= 0) &&
      (b.upper === undefined || Buffer.compare(e, b.upper) < 0);
  };
  for (const prefix of [["a"], ["a\u0000"], ["a", ""]]) {
    const under = keys.filter((k) => k.length > prefix.length && hasPrefix(k, prefix));
    assert.deepEqual(keys.filter((k) => bytesIn(k, byteBounds({ prefix }))), under, `${prefix}`);
    const upper = prefixUpperBound(prefix);
    assert.deepEqual(
      keys.filter((k) =>
        Buffer.compare(encodeKey(k), encodeKey(prefix)) > 0 &&
        Buffer.compare(encodeKey(k), upper) < 0
      ),
      under,
    );
  }
  const range = { prefix: ["a"], start: ["a", "b"], startExclusive: true, end: ["a", "😀"] };
  assert.deepEqual(keys.filter((k) => bytesIn(k, byteBounds(range))), [["a", "\uFFFF"]]);
});
