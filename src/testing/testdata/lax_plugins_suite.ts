// Run by harness_test.ts with `deno test`: the suite on plugins subtly wrong as a plugin author
// might write them: a native range delete and a purge that get expiry wrong, and an async commit
// that is not atomic. Each must fail its cases, saying what is wrong.
import { z } from "zod";
import { definePlugin, openStore } from "../../plugin.ts";
import type { ClearRange, RawEntry, StoreDriver } from "../../store/driver.ts";
import type { Clock } from "../../store/types.ts";
import { testStore } from "../conformance/mod.ts";
import { MemoryDriver } from "../../../plugins/memory/mod.ts";

const live = (e: RawEntry, now: number) => e.expiresAt === null || e.expiresAt > now;

/** The memory driver, with a native clear() or purgeExpired() that deletes the entries `doomed` picks. */
function laxDriver(
  clock: Clock,
  native: "clear" | "purgeExpired",
  doomed: (entry: RawEntry, now: number) => boolean,
): StoreDriver {
  const inner = new MemoryDriver(undefined, clock);
  const remove = async (range: ClearRange, now: number) => {
    const keys = [];
    for await (const e of inner.list(range)) if (doomed(e, now)) keys.push(e.key);
    await inner.commit({
      checks: [],
      mutations: keys.map((key) => ({ type: "delete" as const, key })),
      version: "",
      now,
    });
    return keys.length;
  };
  return {
    location: "lax",
    capabilities: native === "clear" ? { clear: true } : {},
    get: (key) => inner.get(key),
    list: (range) => inner.list(range),
    commit: (request) => inner.commit(request),
    close: () => inner.close(),
    ...(native === "clear"
      ? { clear: remove }
      : { purgeExpired: (now: number) => remove({ prefix: [] }, now) }),
  };
}

/** The memory driver behind an async commit that awaits between its checks and its writes. */
function notAtomicDriver(clock: Clock): StoreDriver {
  const inner = new MemoryDriver(undefined, clock);
  return {
    location: "lax",
    get: (key) => inner.get(key),
    list: (range) => inner.list(range),
    async commit(request) {
      const checked = await inner.commit({ ...request, mutations: [] });
      if (!checked.ok) return checked;
      await new Promise((resolve) => setTimeout(resolve, 1)); // a round trip to a server
      return await inner.commit({ ...request, checks: [] });
    },
    close: () => inner.close(),
  };
}

const plugins = {
  // Deletes the live entries of the range and leaves the expired ones.
  "clear keeps expired": (clock: Clock) => laxDriver(clock, "clear", live),
  // Also deletes entries in their last millisecond.
  "purge too early": (clock: Clock) =>
    laxDriver(clock, "purgeExpired", (e, now) => e.expiresAt !== null && e.expiresAt <= now + 1),
  // Checks, then writes in a second step: another commit lands in between.
  "commit not atomic": notAtomicDriver,
};

for (const [name, open] of Object.entries(plugins)) {
  const plugin = definePlugin({
    name: name.replaceAll(" ", "-"),
    optionsSchema: z.strictObject({}),
    open: (_options, context) => open(context.clock),
  });
  testStore(
    name,
    ({ clock, indexes, search, changes }) =>
      openStore({ plugin, indexes, search, changes }, { clock }),
  );
}
