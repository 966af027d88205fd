/**
 * The conformance case run when the backend claims `multiProcess`: a second
 * OS process opens the same store (from a module specifier and options, as a
 * config names it) and both write at once with compare-and-set; no update
 * may be lost and no claim won twice.
 *
 * @module
 */
import { AssertionError } from "node:assert/strict";
import { dirname, join } from "node:path";
import { check, same, show } from "./_assert.ts";
import type { CaseRun, DefineCase } from "./_case.ts";
import { claimKey, COUNTER_KEY, race, type RaceResult } from "./_race.ts";
import { openStore, type StoreSpec } from "../../plugin.ts";
import type { Store } from "../../store/types.ts";

/**
 * How long the second process may take to close its store and end once it
 * has reported its result: a hang guard (it ends in milliseconds when close()
 * releases everything), so that a leak fails the case, saying so, instead of
 * hanging the suite.
 */
const EXIT_GRACE_MS = 30_000;

/** Whether `status` settles within `ms` (the timer is cleared either way). */
async function exitsWithin(status: Promise<Deno.CommandStatus>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([status.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Rounds each process runs: enough for their writes to interleave many times. */
const ROUNDS = 40;

/** The second process: its script, run with `deno run`. */
const CHILD = new URL("./_child.ts", import.meta.url).href;

/**
 * `--config <file>` for the second process: the `deno.json` (or `deno.jsonc`)
 * Deno finds from the working directory up, as it did for the test run, unless
 * `flags` name a config already. Without it, Deno would take the config beside
 * the child script, and a child script inside a linked or cached copy of
 * Flowstate would resolve the plugin's imports with Flowstate's import map,
 * not the plugin's ("not a dependency and not in import map").
 */
function configFlags(flags: readonly string[]): string[] {
  if (flags.some((f) => /^(--config|-c|--no-config)(=|$)/.test(f))) return [];
  let dir = Deno.cwd();
  while (true) {
    for (const name of ["deno.json", "deno.jsonc"]) {
      const file = join(dir, name);
      try {
        if (Deno.statSync(file).isFile) return ["--config", file];
      } catch { /* not here */ }
    }
    const parent = dirname(dir);
    if (parent === dir) return [];
    dir = parent;
  }
}

/** How a second process opens the case's store, or a failure saying why the case needs it. */
function secondProcessOf(c: CaseRun, why: string): NonNullable<CaseRun["secondProcess"]> {
  if (c.secondProcess !== undefined) return c.secondProcess;
  throw new AssertionError({
    message: `${why}: pass testStore(name, open, { multiProcess: { spec: ({ id }) => ` +
      '({ plugin: "<module specifier>", ...options }) } }) naming the same data as open() ' +
      "for that id, or skip this case with a reason",
  });
}

/** Registers the case of this file with `defineMultiProcess`. */
export function defineProcessCases(defineMultiProcess: DefineCase): void {
  defineMultiProcess(
    "multiProcess: two processes writing with compare-and-set lose no update",
    async (c) => {
      const second = secondProcessOf(
        c,
        "the store claims capabilities.multiProcess, so the suite checks it from a second process",
      );
      const store = await c.open();
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          ...second.flags,
          ...configFlags(second.flags),
          CHILD,
          JSON.stringify({ spec: second.spec, rounds: ROUNDS }),
        ],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const stderr = new Response(child.stderr).text();
      const lines = readLines(child.stdout);
      const failed = async (what: string): Promise<never> => {
        const status = await child.status;
        throw new AssertionError({
          message: `${what}: the second process exited with code ${status.code}; its stderr:\n${
            (await stderr).trim()
          }`,
        });
      };
      const stdin = child.stdin.getWriter();
      try {
        const ready = await lines.next();
        if (ready.done || ready.value !== "ready") {
          await stdin.close().catch(() => {});
          await failed(`expected "ready" from the second process, got ${show(ready.value)}`);
        }
        // Go: both processes now write at once.
        await stdin.write(new TextEncoder().encode("go\n"));
        await stdin.close();
        const [mine, reply] = await Promise.all([race(store, "first", ROUNDS), lines.next()]);
        if (reply.done) await failed("the second process reported no result");
        const theirs = JSON.parse(reply.value as string) as RaceResult;
        let closed = false;
        const closing = lines.next().then((line) => closed = !line.done && line.value === "closed");
        if (!(await exitsWithin(child.status, EXIT_GRACE_MS))) {
          throw new AssertionError({
            message: closed
              ? `the second process closed its store (store.close() resolved) but did not exit ` +
                `within ${EXIT_GRACE_MS / 1000} s: the driver's close() must release every ` +
                "connection, socket, pool and timer it holds (a client pool that is not ended " +
                "keeps the process alive, and a program that closes the store never ends)"
              : `the second process's store.close() did not resolve within ${
                EXIT_GRACE_MS / 1000
              } s after its writes: the driver's close() must finish (end its connections, ` +
                "let pending commits settle) and resolve",
          });
        }
        await closing;
        if (!(await child.status).success) await failed("after reporting its result");

        same(
          (await store.get(COUNTER_KEY))?.value,
          2 * ROUNDS,
          `the counter after ${ROUNDS} compare-and-set increments by each of two processes ` +
            `(${mine.retries} + ${theirs.retries} retries): a smaller count is a lost update`,
        );
        const both = mine.won.filter((i) => theirs.won.includes(i));
        check(
          both.length === 0,
          `set(key, value, { ifVersion: null }) must succeed for one process only, but both ` +
            `won rounds ${show(both)}`,
        );
        for (let i = 0; i < ROUNDS; i++) {
          const winner = mine.won.includes(i) ? "first" : theirs.won.includes(i) ? "second" : null;
          same(
            (await store.get(claimKey(i)))?.value ?? null,
            winner,
            `claim ${i}: the stored value is the one process whose set(…, { ifVersion: null }) succeeded`,
          );
        }
      } finally {
        try {
          child.kill();
        } catch { /* already exited */ }
        await lines.return(undefined);
        await child.status;
        await stderr;
      }
    },
  );
}

/**
 * Registers the `mustExist` case with `defineMultiProcess`: it opens the
 * store from the spec the second process would use (the suite's own `open`
 * does not pass `mustExist`).
 */
export function defineMustExistCase(defineMultiProcess: DefineCase): void {
  defineMultiProcess(
    "multiProcess: mustExist refuses a store that does not exist, creates nothing, and opens one that does",
    async (c) => {
      const second = secondProcessOf(
        c,
        "the suite opens the store with { mustExist: true } from the spec a second process would use",
      );
      const openExisting = () =>
        openStore(second.spec as StoreSpec, { mustExist: true, clock: c.clock, name: "checked" });
      // Twice: a first refusal that created the store (a file, a table) lets the second open.
      for (const attempt of ["first", "second"]) {
        let opened: Store;
        try {
          opened = await openExisting();
        } catch (err) {
          const code = (err as { code?: unknown })?.code;
          check(
            code === "STORE_MISSING",
            `openStore(spec, { mustExist: true }) of a store that does not exist must throw ` +
              `StoreMissingError (code STORE_MISSING); it threw ${show(err)}`,
          );
          continue;
        }
        await opened.close();
        throw new AssertionError({
          message: attempt === "first"
            ? "openStore(spec, { mustExist: true }) of a store that does not exist opened one: " +
              "with context.mustExist the plugin must throw StoreMissingError (the read-only " +
              "commands, `state get` and `runs ls`, only report a missing store)"
            : "the first open with { mustExist: true } threw StoreMissingError but created the " +
              "store (the second one opened it): check before creating any file, table or schema",
        });
      }
      const store = await c.open();
      await store.set(["made"], 1);
      const existing = await openExisting();
      try {
        same(
          (await existing.get(["made"]))?.value ?? null,
          1,
          "the existing store, opened with mustExist",
        );
      } finally {
        await existing.close();
      }
    },
  );
}

async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffer = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
    }
  }
  if (buffer !== "") yield buffer;
}
