import assert from "node:assert/strict";
import { AsyncLocalStorage } from "node:async_hooks";
import { PENDING_LINES, routeConsole } from "./_sandbox_console.ts";

// deno-lint-ignore no-explicit-any
const internals = (Deno as any)[(Deno as any).internal];

/** Run `fn` with the console routed to `sent` (the test's console restored after). */
async function routed(
  fn: (route: ReturnType<typeof routeConsole>) => Promise<void>,
): Promise<[number, string, string][]> {
  const saved = { ...console };
  const sent: [number, string, string][] = [];
  try {
    await fn(
      routeConsole(
        internals,
        AsyncLocalStorage,
        (run, message, level) => sent.push([run, message, level]),
      ),
    );
  } finally {
    Object.assign(console, saved);
  }
  return sent;
}

/** `print` in a timer (a macrotask: after the attempt that set it ended); resolves once it ran. */
function later(print: () => void): Promise<void> {
  return new Promise((resolve) =>
    setTimeout(() => {
      print();
      resolve();
    }, 0)
  );
}

Deno.test("routeConsole: a line an ended attempt's timer printed goes to its run's next attempt, never to another run's", async () => {
  const sent = await routed(async (route) => {
    console.log("at the top");
    let printed!: Promise<void>;
    await route.attempt(1, { runId: "A", nodeId: "a", attempt: 1 }, () => {
      console.info("in %s", "A");
      printed = later(() => console.error("late in A"));
      return Promise.resolve();
    });
    await printed;
    // Run A gave the Worker back; run B's attempt does not get A's line, only its count.
    await route.attempt(2, { runId: "B", nodeId: "b", attempt: 1 }, () => {
      printed = later(() => console.warn("late in B"));
      return Promise.resolve();
    });
    await printed;
    await route.attempt(3, { runId: "B", nodeId: "c", attempt: 2 }, () => Promise.resolve());
  });
  assert.deepEqual(sent, [
    [1, "(printed by the node's module outside an attempt) at the top", "info"],
    [1, "in A", "info"],
    [
      2,
      "1 console line printed after an attempt of an earlier run ended dropped: they could hold that run's secrets, which this run would not mask",
      "warn",
    ],
    [3, "(printed after node b's attempt 1 ended) late in B", "warn"],
  ]);
});

Deno.test("routeConsole: what waits outside an attempt is bounded; every method prints at its level", async () => {
  const sent = await routed(async (route) => {
    for (let i = 0; i < PENDING_LINES + 5; i++) console.log(i);
    await route.attempt(1, { runId: "A", nodeId: "a", attempt: 1 }, () => {
      console.debug("d");
      console.trace("t");
      console.count();
      console.group("g");
      console.dir({ in: 1 });
      console.groupEnd();
      console.table([{ a: 1 }]);
      console.assert(true, "fine");
      console.clear();
      console.log("%c%s\x1b[31m red", "color: red", "no color:");
      return Promise.resolve();
    });
  });
  assert.equal(sent.length, PENDING_LINES + 1 + 7);
  assert.deepEqual(sent[PENDING_LINES], [
    1,
    "5 console lines printed outside an attempt dropped: at most 100 wait for the next attempt",
    "warn",
  ]);
  const own = sent.slice(PENDING_LINES + 1).map(([, m, l]) => [l, m]);
  assert.deepEqual(own[0], ["debug", "d"]);
  assert.equal(own[1][0], "error");
  // The trace names the caller, not Flowstate's own frames.
  assert.match(own[1][1], /^Trace: t\n {4}at .*_sandbox_console_test\.ts:\d+:\d+/);
  assert.ok(!/at .*\/_sandbox_console\.ts:/.test(own[1][1]), own[1][1]);
  assert.deepEqual(own.slice(2), [
    ["info", "default: 1"],
    ["info", "g"],
    ["info", "  { in: 1 }"],
    ["info", "┌───────┬───┐\n│ (idx) │ a │\n├───────┼───┤\n│     0 │ 1 │\n└───────┴───┘"],
    ["info", "no color: red"],
  ]);
});

Deno.test("routeConsole: without Deno's Console among the internals, output is still the attempt's log lines", async () => {
  const saved = { ...console };
  const sent: [number, string, string][] = [];
  try {
    const route = routeConsole(
      undefined,
      AsyncLocalStorage,
      (run, message, level) => sent.push([run, message, level]),
    );
    await route.attempt(1, { runId: "A", nodeId: "a", attempt: 1 }, () => {
      console.log("plain", { n: 1 });
      console.warn("careful");
      console.error(new Error("boom").message);
      console.debug("detail");
      console.assert(false, "must hold");
      return Promise.resolve();
    });
  } finally {
    Object.assign(console, saved);
  }
  assert.deepEqual(sent, [
    [1, "plain { n: 1 }", "info"],
    [1, "careful", "warn"],
    [1, "boom", "error"],
    [1, "detail", "debug"],
    [1, "Assertion failed must hold", "error"],
  ]);
});
