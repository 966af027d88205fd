/**
 * The owner judgement through an injected `/proc` (`ProcReader`): a reused
 * pid, a zombie, a process of another host, boot or pid namespace, a
 * `/proc` that hides processes, and what `judgeRun` makes of each.
 */
import assert from "node:assert/strict";
import { judgeRun, MIN_ABANDONED_MS } from "./heartbeat.ts";
import { currentOwner, ownerLiveness, type ProcReader, type RunOwner } from "./owner.ts";
import type { RunRecord } from "./types.ts";

const ME = 700;

/** `/proc/<pid>/stat` of a process in state `state` started at `ticks` (field 22). */
function stat(pid: number, state: string, ticks: number): string {
  // Fields 3 to 21 after the command name (which may hold spaces and parentheses), then 22.
  return `${pid} (deno (x) y) ${state} 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 ${ticks} 0 0`;
}

/** A machine "box" (boot b1, pid namespace [1]) where this process is pid 700, started at tick 100. */
function machine(
  procs: Record<number, string> = {},
  options: { host?: string; boot?: string; mounts?: string } = {},
): ProcReader {
  const files: Record<string, string> = {
    "/proc/sys/kernel/hostname": `${options.host ?? "box"}\n`,
    "/proc/sys/kernel/random/boot_id": `${options.boot ?? "b1"}\n`,
    "/proc/self/stat": stat(ME, "R", 100),
    "/proc/self/mountinfo": options.mounts ?? "22 27 0:21 / /proc rw,relatime - proc proc rw\n",
  };
  for (const [pid, text] of Object.entries(procs)) files[`/proc/${pid}/stat`] = text;
  return {
    pid: ME,
    readText: (path) => files[path] ?? null,
    readLink: (path) => path === "/proc/self/ns/pid" ? "pid:[1]" : null,
  };
}

const OWNER: RunOwner = { pid: 42, host: "box", boot: "b1", pidNs: "pid:[1]", startTicks: 5 };

function running(owner: RunOwner | undefined, heartbeatAt: number): RunRecord {
  return {
    id: "0mjuw3ms0abcdefghijk",
    flowId: "f",
    flowVersion: "v",
    status: "running",
    inputs: {},
    outputs: null,
    startedAt: 0,
    endedAt: null,
    durationMs: null,
    nodes: {},
    error: null,
    heartbeatAt,
    ...(owner === undefined ? {} : { owner }),
  };
}

Deno.test("currentOwner reads host, boot id, pid namespace and start time through the reader", () => {
  assert.deepEqual(currentOwner(machine()), {
    pid: ME,
    host: "box",
    boot: "b1",
    pidNs: "pid:[1]",
    startTicks: 100,
  });
});

Deno.test("currentOwner: a /proc of another pid namespace, or one that hides processes, is not verifiable", () => {
  const other = machine();
  const foreign: ProcReader = {
    ...other,
    readText: (path) => path === "/proc/self/stat" ? stat(9, "R", 100) : other.readText(path),
  };
  assert.equal(currentOwner(foreign).startTicks, undefined);
  const hidden = machine({}, { mounts: "22 27 0:21 / /proc rw - proc proc rw,hidepid=2\n" });
  assert.equal(currentOwner(hidden).startTicks, undefined);
  assert.equal(ownerLiveness(OWNER, hidden).state, "unknown", "absent may be hidden");
  const off = machine({}, { mounts: "22 27 0:21 / /proc rw - proc proc rw,hidepid=0\n" });
  assert.equal(currentOwner(off).startTicks, 100);
});

Deno.test("a reused pid (same pid, another start time) is dead; the same start time is alive", () => {
  assert.equal(ownerLiveness(OWNER, machine({ 42: stat(42, "S", 5) })).state, "alive");
  const reused = ownerLiveness(OWNER, machine({ 42: stat(42, "S", 6) }));
  assert.deepEqual(reused, {
    state: "dead",
    why: "its process 42 is gone (the pid is another's now)",
  });
});

Deno.test("no such pid, and a zombie, are dead; an unreadable stat is unknown", () => {
  assert.equal(ownerLiveness(OWNER, machine()).state, "dead");
  assert.equal(ownerLiveness(OWNER, machine({ 42: stat(42, "Z", 5) })).state, "dead");
  assert.equal(ownerLiveness(OWNER, machine({ 42: "" })).state, "unknown");
});

Deno.test("another host, boot or pid namespace, an owner without proof, or none: unknown", () => {
  const reader = machine();
  assert.equal(ownerLiveness({ ...OWNER, host: "other" }, reader).state, "unknown");
  assert.equal(ownerLiveness({ ...OWNER, boot: "b0" }, reader).state, "unknown");
  assert.equal(ownerLiveness({ ...OWNER, pidNs: "pid:[2]" }, reader).state, "unknown");
  assert.equal(ownerLiveness({ pid: 42, host: "box" }, reader).state, "unknown");
  assert.equal(ownerLiveness(undefined, reader).state, "unknown");
  assert.equal(ownerLiveness({ ...OWNER, pid: ME, startTicks: 100 }, reader).state, "here");
});

Deno.test("judgeRun: a dead owner abandons a run with a fresh heartbeat; a live one makes a stale run stalled", () => {
  const now = 1_000_000;
  const fresh = now - 1_000;
  const stale = now - 10 * 60_000;
  const dead = judgeRun(running(OWNER, fresh), now, MIN_ABANDONED_MS, machine());
  assert.equal(dead.state, "abandoned");
  assert.equal(dead.state === "abandoned" && dead.why.by, "process");
  const reused = machine({ 42: stat(42, "S", 6) });
  assert.equal(judgeRun(running(OWNER, fresh), now, MIN_ABANDONED_MS, reused).state, "abandoned");

  const alive = machine({ 42: stat(42, "T", 5) }); // stopped (SIGSTOP)
  assert.deepEqual(judgeRun(running(OWNER, stale), now, 60_000, alive), {
    state: "stalled",
    lastSeenAt: stale,
    thresholdMs: 60_000,
    pid: 42,
  });
  assert.deepEqual(judgeRun(running(OWNER, fresh), now, 60_000, alive), { state: "live" });
});

Deno.test("judgeRun: an owner on another host, boot or pid namespace, or none, follows the heartbeat rule", () => {
  const now = 1_000_000;
  const reader = machine(); // no pid 42 here: it would be dead, were it on this machine
  for (
    const owner of [
      { ...OWNER, host: "other" },
      { ...OWNER, boot: "b0" },
      { ...OWNER, pidNs: "pid:[2]" },
      { pid: 42, host: "box" },
      undefined,
    ]
  ) {
    const name = JSON.stringify(owner);
    assert.deepEqual(judgeRun(running(owner, now - 1_000), now, 60_000, reader), {
      state: "live",
    }, name);
    const old = judgeRun(running(owner, now - 61_000), now, 60_000, reader);
    assert.equal(old.state === "abandoned" && old.why.by, "heartbeat", name);
  }
});

Deno.test("a free owner lock is dead under the same boot, unknown under another (another kernel may not share its locks)", () => {
  const lock = Deno.makeTempFileSync({ suffix: ".lock" });
  try {
    const reader = machine();
    // No pid namespace recorded: judged by its lock, which nobody holds.
    const owner: RunOwner = { pid: 42, host: "box", boot: "b1", lock };
    assert.equal(ownerLiveness(owner, reader).state, "dead");
    assert.equal(ownerLiveness({ ...owner, boot: "b0" }, reader).state, "unknown");
    assert.equal(ownerLiveness({ pid: 42, host: "box", lock }, reader).state, "dead");
  } finally {
    Deno.removeSync(lock);
  }
});
