import assert from "node:assert/strict";
import { realTimers } from "./clock.ts";

Deno.test("realTimers.sleep resolves after the delay, and at once for 0, negative or NaN", async () => {
  let done = false;
  const sleeping = realTimers.sleep(20).then(() => (done = true));
  assert.equal(done, false);
  await sleeping;
  assert.equal(done, true);
  await realTimers.sleep(0);
  await realTimers.sleep(-5);
  await realTimers.sleep(NaN);
});

Deno.test("realTimers.sleep rejects with the signal's reason when it aborts first", async () => {
  const controller = new AbortController();
  const sleeping = realTimers.sleep(60_000, controller.signal);
  controller.abort(new Error("stop"));
  await assert.rejects(sleeping, /stop/);
  const aborted = AbortSignal.abort(new Error("already"));
  await assert.rejects(realTimers.sleep(10, aborted), /already/);
});

Deno.test("a cancelled sleep does not keep the process alive", async () => {
  const code = `
    import { realTimers } from ${JSON.stringify(new URL("./clock.ts", import.meta.url).href)};
    const c = new AbortController();
    const s = realTimers.sleep(600_000, c.signal).catch(() => "cancelled");
    await realTimers.sleep(1);
    c.abort();
    console.log(await s);
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(new TextDecoder().decode(out.stderr), "");
  // The process ended (a pending 10-minute timer would have held it) and said why.
  assert.equal(new TextDecoder().decode(out.stdout).trim(), "cancelled");
  assert.equal(out.code, 0);
});

Deno.test("realTimers.sleep(Infinity), and a wait past one timer's range, sleep until the signal aborts", async () => {
  for (const ms of [Infinity, 3e9]) {
    const controller = new AbortController();
    let woke = false;
    const sleeping = realTimers.sleep(ms, controller.signal).then(() => (woke = true));
    await realTimers.sleep(50);
    assert.equal(woke, false, `sleep(${ms}) is still asleep`);
    controller.abort(new Error("stop"));
    await assert.rejects(sleeping, /stop/);
  }
});
