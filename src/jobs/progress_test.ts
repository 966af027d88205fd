import assert from "node:assert/strict";
import { createProgress } from "./progress.ts";

function recorder(mode: "tty" | "plain" | "quiet") {
  let time = 0;
  const out: string[] = [];
  const progress = createProgress({
    mode,
    write: (text) => void out.push(text),
    now: () => time,
    plainInterval: 1000,
  });
  return { progress, out, advanceTime: (ms: number) => void (time += ms) };
}

Deno.test("createProgress() redraws one bar line with counts, rate and ETA on a terminal", () => {
  const { progress, out, advanceTime } = recorder("tty");
  progress.start("copying", 1000);
  advanceTime(1000);
  progress.advance(250);
  const last = out.at(-1)!;
  assert.ok(last.startsWith("\r\x1b[2K"), "redraws in place");
  assert.match(last, /copying \[######\.+\] 25% 250\/1,000 ETA 3s 250\/s/);
  progress.finish("done");
  assert.ok(out.at(-2)!.endsWith("\n"), "the final bar ends its line");
  assert.equal(out.at(-1), "done\n");
});

Deno.test("createProgress() prints plain lines at most once per interval when not a terminal", () => {
  const { progress, out, advanceTime } = recorder("plain");
  progress.start("deleting runs");
  for (let i = 0; i < 100; i++) {
    advanceTime(50);
    progress.advance(10);
  }
  // 5 s of work at one line per second: the start line plus about 5 more.
  assert.ok(out.length >= 5 && out.length <= 7, `${out.length} lines`);
  assert.ok(out.every((line) => !line.includes("\r") && line.endsWith("\n")));
  assert.match(out.at(-1)!, /deleting runs 1,000 200\/s/);
  assert.equal(progress.state.done, 1000);
});

Deno.test("createProgress() prints nothing when quiet but still counts", () => {
  const { progress, out } = recorder("quiet");
  progress.start("restoring", 10);
  progress.advance(4);
  progress.update(7);
  progress.finish("finished");
  assert.deepEqual(out, []);
  assert.deepEqual({ ...progress.state }, { label: "restoring", done: 7, total: 10 });
});

Deno.test("createProgress() in plain mode does not print the same line twice at finish", async () => {
  // Through the public entry point, as a job's ctx.progress is made.
  const { createProgress: fromJobs } = await import("../../jobs.ts");
  const out: string[] = [];
  const progress = fromJobs({ mode: "plain", write: (t) => void out.push(t), now: () => 0 });
  progress.start("visitors", 0);
  progress.finish("0 forgotten");
  assert.deepEqual(out, ["visitors 0 0/s\n", "0 forgotten\n"]);
  // A line that moved on is still printed at the end.
  const { progress: moved, out: lines, advanceTime } = recorder("plain");
  moved.start("copy", 10);
  advanceTime(100);
  moved.update(10);
  moved.finish();
  assert.deepEqual(lines, ["copy 0% 0/10 0/s\n", "copy 100% 10/10 100/s\n"]);
});
