/**
 * The Store conformance suite: one set of cases that every storage plugin,
 * built in or third party, runs to prove it behaves like every other.
 *
 * This module is the harness: {@linkcode testStore}, the case registry and
 * the run of one case. The cases live one topic a file beside it and are
 * registered below, in the order of the report.
 *
 * @module
 */
import { AssertionError } from "node:assert/strict";
import type { Clock, IndexDeclaration, SearchDeclaration, Store } from "../../store/types.ts";
import type { ChangesConfig } from "../../plugin.ts";
import { fakeClock } from "../clock.ts";
import { errorText, show } from "./_assert.ts";
import type { CaseRun } from "./_case.ts";
import { defineAtomicCases } from "./atomic.ts";
import { defineBadInputCases } from "./bad_input.ts";
import { defineClearCases } from "./clear.ts";
import { defineCloseCases } from "./close.ts";
import { defineDifferentialCases } from "./differential.ts";
import { defineExpiryCases } from "./expiry.ts";
import { defineKeyCases } from "./keys.ts";
import { defineListCases } from "./list.ts";
import { definePersistenceCases } from "./persistence.ts";
import { defineMustExistCase, defineProcessCases } from "./processes.ts";
import { defineQueryCases } from "./query.ts";
import { defineValueCases } from "./values.ts";
import { defineVersionCases } from "./versions.ts";
import { defineIndexCases } from "./indexes.ts";
import { defineInternalCases } from "./internal.ts";
import { defineFeedCases, DROPPED_CHANGES } from "./feed.ts";
import { uniqueRandomBytes } from "../../_random.ts";

/**
 * What {@linkcode OpenStoreForTest} receives for each case.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { type ConformanceContext, fakeClock } from "@flowstate/core/testing";
 *
 * // What the suite passes for each case; the open function must honour each field.
 * const ctx: ConformanceContext = {
 *   id: "case_1",
 *   clock: fakeClock(),
 *   indexes: [{ prefix: ["orders"], path: "status" }],
 *   changes: { keep: "1d" },
 * };
 * await using store = await openStore(
 *   { plugin: "memory", indexes: ctx.indexes, search: ctx.search, changes: ctx.changes },
 *   { clock: ctx.clock },
 * );
 * assert.equal(store.indexes.length, 1);
 * assert.equal((await store.feedInfo()).enabled, true);
 * ```
 */
export interface ConformanceContext {
  /**
   * Unique per case (letters, digits and `_`, safe as a file, table or schema
   * name). Opening the same id again must reopen the same data.
   */
  id: string;
  /** The clock the store must use for expiry (pass it as `clock` to `openStore`). */
  clock: Clock;
  /**
   * Indexes the case declares: pass them in the spec to `openStore`
   * (`openStore({ plugin, ...options, indexes: ctx.indexes, search: ctx.search, changes: ctx.changes })`).
   * The index and search cases fail, saying so, when the store does not have them.
   */
  indexes?: IndexDeclaration[];
  /** The search declaration the case makes: pass it in the spec to `openStore`, like `indexes`. */
  search?: SearchDeclaration;
  /**
   * The change feed the case asks for: pass it in the spec to `openStore`,
   * like `indexes` (any store keeps one when asked). The suite fails, saying
   * so, when the store it opens keeps none.
   */
  changes?: ChangesConfig;
}

/**
 * Opens the store under test: a new, empty store for a new id; the same data for the same id.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { join } from "node:path";
 * import { openStore } from "@flowstate/core";
 * import { fakeClock, type OpenStoreForTest } from "@flowstate/core/testing";
 *
 * const dir = await Deno.makeTempDir();
 * // A new, empty store for a new id; the same data again for the same id.
 * const open: OpenStoreForTest = ({ id, clock, indexes, search, changes }) =>
 *   openStore({ plugin: "sqlite", path: join(dir, `${id}.db`), indexes, search, changes }, { clock });
 * const clock = fakeClock();
 * const first = await open({ id: "a", clock });
 * await first.set(["k"], 1);
 * await first.close();
 * const again = await open({ id: "a", clock });
 * assert.equal((await again.get(["k"]))?.value, 1);
 * await again.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export type OpenStoreForTest = (ctx: ConformanceContext) => Promise<Store>;

/**
 * A store as a second OS process opens it: a module specifier that process
 * can import (an absolute `file:` URL from `import.meta.resolve`, or a
 * `jsr:`/`npm:` specifier) and the plugin's options, all JSON. Use absolute
 * paths in options: relative ones resolve against the working directory.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { SecondProcessSpec } from "@flowstate/core/testing";
 *
 * // All JSON, with an absolute module specifier and absolute paths.
 * const spec: SecondProcessSpec = {
 *   plugin: import.meta.resolve("@flowstate/core/plugins/sqlite"),
 *   path: "/tmp/flowstate-case_1.db",
 * };
 * assert.ok(spec.plugin.startsWith("file:"));
 * assert.deepEqual(JSON.parse(JSON.stringify(spec)), spec);
 * ```
 */
export interface SecondProcessSpec {
  /** The plugin's module specifier. */
  plugin: string;
  /** The plugin's options. */
  [option: string]: unknown;
}

/**
 * How the multi-process case opens a case's store from a second process.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_CHILD_FLAGS, type MultiProcessOptions } from "@flowstate/core/testing";
 *
 * const multiProcess: MultiProcessOptions = {
 *   spec: ({ id }) => ({ plugin: "sqlite", path: `/tmp/flowstate-${id}.db` }),
 *   flags: [...DEFAULT_CHILD_FLAGS],
 * };
 * assert.deepEqual(multiProcess.spec({ id: "case_7" }), { plugin: "sqlite", path: "/tmp/flowstate-case_7.db" });
 * ```
 */
export interface MultiProcessOptions {
  /** The spec for a case id: it must name the same data as `open` does for that id. */
  spec: (ctx: { id: string }) => SecondProcessSpec;
  /**
   * Flags for `deno run` of the second process (default: `--allow-read
   * --allow-write --allow-env --allow-net --allow-sys`). It runs in the test's
   * working directory with `--config` naming the `deno.json` (or
   * `deno.jsonc`) found from there upwards, unless these flags name one
   * (`--config`, `--no-config`): so it resolves the plugin's imports with the
   * same import map, also when Flowstate itself is a linked checkout. After
   * its writes it closes its store and must exit by itself: a driver whose
   * `close()` leaves a connection, pool or timer fails the case, saying so.
   */
  flags?: string[];
}

/**
 * Options for {@linkcode testStore}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ConformanceOptions } from "@flowstate/core/testing";
 *
 * const dropped: string[] = [];
 * // Passed as testStore's third argument.
 * const options: ConformanceOptions = {
 *   skip: { "multiProcess: two processes writing with compare-and-set lose no update": "one process only" },
 *   persistent: false,
 *   cleanup: ({ id }) => {
 *     dropped.push(id); // a server-backed plugin drops the case's table here
 *   },
 * };
 * await options.cleanup?.({ id: "case_1" });
 * assert.deepEqual(dropped, ["case_1"]);
 * ```
 */
export interface ConformanceOptions {
  /** Case names to skip, each with the reason (reported in the step name). */
  skip?: Record<string, string>;
  /** Run close/reopen persistence cases (default: store.capabilities.persistent). */
  persistent?: boolean;
  /**
   * Called after each case, once every store it opened is closed, whether it
   * passed or failed (and after the capability probe): delete what that id
   * left behind (its table, key prefix, files). A failure here fails the case.
   */
  cleanup?: (ctx: { id: string }) => Promise<void> | void;
  /** Called once after the last case, pass or fail: close admin connections, drop a schema. */
  afterAll?: () => Promise<void> | void;
  /**
   * For a store that claims `capabilities.multiProcess`: how a second OS
   * process opens a case's store. The case
   * `"multiProcess: two processes writing with compare-and-set lose no update"`
   * fails without it (or skip it with a reason).
   */
  multiProcess?: MultiProcessOptions;
}

/**
 * The flags the second process of the multi-process case runs with, unless
 * `options.multiProcess.flags` says otherwise.
 *
 * @example
 * ```ts
 * import { DEFAULT_CHILD_FLAGS, type MultiProcessOptions } from "@flowstate/core/testing";
 * import assert from "node:assert/strict";
 *
 * // A plugin whose client also needs to run a helper binary:
 * const multiProcess: MultiProcessOptions = {
 *   spec: ({ id }) => ({ plugin: "sqlite", path: `/tmp/${id}.db` }),
 *   flags: [...DEFAULT_CHILD_FLAGS, "--allow-run"],
 * };
 * assert.ok(multiProcess.flags?.includes("--allow-net"));
 * ```
 */
export const DEFAULT_CHILD_FLAGS: readonly string[] = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-net",
  "--allow-sys",
];

// ---------------------------------------------------------------------------
// The harness

interface Case {
  name: string;
  /** Run only when the store claims this capability (otherwise skipped, saying so). */
  needs?: "persistent" | "multiProcess";
  run: (c: CaseRun) => Promise<void>;
}

const CASES: Case[] = [];
const CASE_NAMES = new Set<string>();

function define(name: string, run: (c: CaseRun) => Promise<void>): void {
  if (CASE_NAMES.has(name)) throw new Error(`Duplicate conformance case name: ${name}`);
  CASE_NAMES.add(name);
  CASES.push({ name, run });
}

function definePersistent(name: string, run: (c: CaseRun) => Promise<void>): void {
  define(name, run);
  CASES[CASES.length - 1].needs = "persistent";
}

function defineMultiProcess(name: string, run: (c: CaseRun) => Promise<void>): void {
  define(name, run);
  CASES[CASES.length - 1].needs = "multiProcess";
}

// The cases, in the order of the report. Plugins skip cases by name, so a
// case keeps its name, and the cases keep their order: a new case goes at the
// end of its topic's file, a new topic at the end of this list.
defineValueCases(define);
defineVersionCases(define);
defineKeyCases(define);
defineListCases(define);
defineExpiryCases(define);
defineQueryCases(define);
defineAtomicCases(define);
defineClearCases(define);
defineCloseCases(define);
definePersistenceCases(definePersistent);
defineBadInputCases(define);
defineDifferentialCases(define);
defineProcessCases(defineMultiProcess);
defineIndexCases(define, definePersistent);
defineInternalCases(define);
defineFeedCases(define);
defineMustExistCase(defineMultiProcess);

/**
 * Register the Store conformance suite for one backend: a single
 * `Deno.test` named `"<name>: Store conformance"` with one step per case.
 *
 * Each case calls `open({ id, clock })` with an id of its own and a fresh
 * fake clock, and closes every store it opened. Persistence cases open the
 * same id twice (closing the first store in between); they run when
 * `options.persistent` is true, or, by default, when the store says
 * `capabilities.persistent`. A store that claims `capabilities.multiProcess`
 * gets a case that opens the same store in a second OS process from
 * `options.multiProcess.spec` and has both write at once. A case named in
 * `options.skip` is reported as an ignored step `"<case> (skipped: <reason>)"`.
 *
 * `options.cleanup({ id })` runs after each case, once its stores are closed,
 * and `options.afterAll()` once after the last: a server-backed plugin drops
 * what the suite created there.
 *
 * @example A plugin's test file: the suite, then what only this backend does
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { testStore } from "@flowstate/core/testing";
 * import memory from "@flowstate/core/plugins/memory";
 *
 * testStore("memory", ({ clock, indexes, search, changes }) =>
 *   openStore({ plugin: memory, indexes, search, changes }, { clock })
 * );
 *
 * Deno.test("memory plugin says where it lives", async () => {
 *   await using store = await openStore({ plugin: memory });
 *   assert.equal(store.location, "memory");
 * });
 * ```
 *
 * @example A plugin whose stores are files, which several processes may share
 * ```ts
 * import assert from "node:assert/strict";
 * import { join } from "node:path";
 * import { openStore } from "@flowstate/core";
 * import { testStore } from "@flowstate/core/testing";
 *
 * const dir = await Deno.makeTempDir();
 * // How a config names the plugin: a second process imports it by this specifier.
 * const plugin = "sqlite";
 *
 * Deno.test("sqlite keeps a store in the file its options name", async () => {
 *   await using store = await openStore({ plugin, path: join(dir, "named.db") });
 *   await store.set(["a"], 1);
 *   assert.ok((await Deno.stat(join(dir, "named.db"))).isFile);
 * });
 *
 * // The suite runs after the tests registered before it; afterAll runs last.
 * testStore(
 *   "sqlite",
 *   ({ id, clock, indexes, search, changes }) =>
 *     openStore({ plugin, path: join(dir, `${id}.db`), indexes, search, changes }, { clock }),
 *   {
 *     multiProcess: { spec: ({ id }) => ({ plugin, path: join(dir, `${id}.db`) }) },
 *     cleanup: ({ id }) => Deno.remove(join(dir, `${id}.db`)).catch(() => {}),
 *     afterAll: () => Deno.remove(dir, { recursive: true }),
 *   },
 * );
 * ```
 *
 * @param name The backend's name, shown in the test report.
 * @param open Opens the store under test for one case.
 * @param options Cases to skip (with reasons), whether to run persistence
 *   cases, cleanup hooks, and how a second process opens the store.
 */
export function testStore(
  name: string,
  open: OpenStoreForTest,
  options: ConformanceOptions = {},
): void {
  if (typeof name !== "string" || name === "") {
    throw new TypeError("Cannot register Store conformance suite: name must be a non-empty string");
  }
  if (typeof open !== "function") {
    throw new TypeError(
      `Cannot register Store conformance suite "${name}": open must be a function (ctx) => Promise<Store>`,
    );
  }
  const skip = options.skip ?? {};
  for (const [caseName, reason] of Object.entries(skip)) {
    if (!CASE_NAMES.has(caseName)) {
      throw new TypeError(
        `Cannot register Store conformance suite "${name}": options.skip names unknown case ${
          JSON.stringify(caseName)
        }; case names are the step names of the report`,
      );
    }
    if (typeof reason !== "string" || reason.trim() === "") {
      throw new TypeError(
        `Cannot register Store conformance suite "${name}": skipping ${
          JSON.stringify(caseName)
        } needs a reason`,
      );
    }
  }
  if (options.cleanup !== undefined && typeof options.cleanup !== "function") {
    throw new TypeError(
      `Cannot register Store conformance suite "${name}": options.cleanup must be a function ({ id }) => void`,
    );
  }
  if (options.multiProcess !== undefined && typeof options.multiProcess?.spec !== "function") {
    throw new TypeError(
      `Cannot register Store conformance suite "${name}": options.multiProcess.spec must be a ` +
        `function ({ id }) => ({ plugin: "<module specifier>", ...options })`,
    );
  }
  const token = Array.from(uniqueRandomBytes(4), (b) => b.toString(36))
    .join("").slice(0, 6).padEnd(6, "0");
  const hooks: Hooks = {
    open,
    cleanup: options.cleanup,
    multiProcess: options.multiProcess,
  };

  Deno.test(`${name}: Store conformance`, async (t) => {
    // What the store claims, learned from the first store a case opens.
    let claims: Partial<Record<"persistent" | "multiProcess", boolean>> | undefined;
    const learn = (store: Store): void => {
      claims ??= {
        persistent: store.capabilities?.persistent === true,
        multiProcess: store.capabilities?.multiProcess === true,
      };
    };
    const claimed = async (capability: "persistent" | "multiProcess"): Promise<boolean> => {
      if (capability === "persistent" && options.persistent !== undefined) {
        return options.persistent;
      }
      if (claims === undefined) {
        // Every earlier case was skipped: open one store just to read its capabilities.
        const id = `fs_${token}_probe`;
        const store = await open({ id, clock: fakeClock() });
        try {
          learn(store);
        } finally {
          await store.close();
          await options.cleanup?.({ id });
        }
      }
      return claims![capability] === true;
    };
    try {
      // Once per suite: an open function that drops ctx.clock or ctx.changes is named here,
      // instead of failing the expiry cases cryptically or passing the feed cases unrun.
      const problems = await checkOpen(`fs_${token}_ctx`, hooks, learn);
      await t.step(CONTEXT_STEP, () => {
        if (problems.length > 0) throw new AssertionError({ message: problems.join("; and ") });
      });
      if (problems.length > 0) {
        for (const c of CASES) {
          await t.step({
            name: `${c.name} (not run: fix open() first)`,
            ignore: true,
            fn: () => {},
          });
        }
        return;
      }
      for (const [index, c] of CASES.entries()) {
        const reason = Object.hasOwn(skip, c.name)
          ? skip[c.name]
          : c.needs !== undefined && !(await claimed(c.needs))
          ? c.needs === "persistent" ? "not persistent" : "does not claim multiProcess"
          : undefined;
        if (reason !== undefined) {
          await t.step({ name: `${c.name} (skipped: ${reason})`, ignore: true, fn: () => {} });
          continue;
        }
        const id = `fs_${token}_${String(index).padStart(3, "0")}`;
        await t.step(c.name, () => runCase(c, id, hooks, learn));
      }
    } finally {
      await options.afterAll?.();
    }
  });
}

/** The step that checks the open function passes the context on (see {@linkcode checkOpen}). */
const CONTEXT_STEP = "open() passes ctx.clock and ctx.changes to openStore";

/**
 * Open a store for `id` as a feed case does and say what the open function
 * dropped: the clock (a write's expiry follows another clock than
 * `ctx.clock`) or the change feed (the store keeps none).
 */
async function checkOpen(
  id: string,
  hooks: Hooks,
  learn: (store: Store) => void,
): Promise<string[]> {
  const clock = fakeClock();
  const problems: string[] = [];
  const store = await hooks.open({ id, clock, changes: { keep: "30d" } });
  try {
    if (typeof store?.get !== "function" || typeof store?.close !== "function") {
      throw new TypeError(`open() must resolve to a Store (got ${show(store)})`);
    }
    learn(store);
    const expireIn = 60_000;
    await store.set(["conformance", "clock"], 1, { expireIn });
    const expiresAt = (await store.get(["conformance", "clock"]))?.expiresAt;
    // A store that loses expiries altogether is for the expiry cases to name.
    if (typeof expiresAt === "number" && expiresAt !== clock.now() + expireIn) {
      problems.push(
        `open() must pass ctx.clock to openStore (openStore(spec, { clock: ctx.clock })): a set ` +
          `with expireIn: ${expireIn} expires at ${expiresAt}, not at ctx.clock.now() + ${expireIn} ` +
          `= ${clock.now() + expireIn}, so the store keeps another clock`,
      );
    }
    if (!(await store.feedInfo()).enabled) problems.push(DROPPED_CHANGES);
  } finally {
    await store?.close?.();
    await hooks.cleanup?.({ id });
  }
  return problems;
}

interface Hooks {
  open: OpenStoreForTest;
  cleanup?: (ctx: { id: string }) => Promise<void> | void;
  multiProcess?: MultiProcessOptions;
}

async function runCase(
  c: Case,
  id: string,
  hooks: Hooks,
  learn: (store: Store) => void,
): Promise<void> {
  const { open, multiProcess } = hooks;
  const clock = fakeClock();
  const opened: Store[] = [];
  const run: CaseRun = {
    id,
    clock,
    secondProcess: multiProcess && {
      spec: multiProcess.spec({ id }),
      flags: [...(multiProcess.flags ?? DEFAULT_CHILD_FLAGS)],
    },
    async open(declarations) {
      const store = await open({ id, clock, ...declarations });
      if (typeof store?.get !== "function" || typeof store?.close !== "function") {
        throw new TypeError(`open() must resolve to a Store (got ${show(store)})`);
      }
      opened.push(store);
      learn(store);
      if (opened.length === 1) {
        const n = await store.count();
        if (n !== 0) {
          throw new AssertionError({
            message: `open() must give a new id an empty store, but id "${id}" already holds ${n} ${
              n === 1 ? "entry" : "entries"
            }`,
          });
        }
      }
      return store;
    },
    async reopen(store) {
      await store.close();
      return await run.open();
    },
  };
  // Close everything the case opened, pass or fail; a case's own failure is
  // the one to report, and a close() failure fails a case that passed.
  let failure: { error: unknown } | undefined;
  try {
    await c.run(run);
  } catch (error) {
    failure = { error };
  } finally {
    for (const store of opened) {
      try {
        await store.close();
      } catch (error) {
        failure ??= {
          error: new Error(`close() failed after the case passed: ${errorText(error)}`, {
            cause: error,
          }),
        };
      }
    }
    try {
      await hooks.cleanup?.({ id });
    } catch (error) {
      failure ??= {
        error: new Error(`options.cleanup({ id: "${id}" }) failed: ${errorText(error)}`, {
          cause: error,
        }),
      };
    }
  }
  if (failure) throw failure.error;
}
