/**
 * The owner of a run, on real processes, where `/proc` is readable (the
 * test and its child both may read it, as `deno task flowstate` may):
 * - a run its live process gave up without recording its end
 *   (`RunRecorder.close`: its end could not be stored) is judged by its
 *   heartbeat, not held `running` for as long as that process lives;
 * - judging a run (what `runs ls` does) takes no owner lock: a process that
 *   records no run leaves no file in the home's `owners/`;
 * - a runtime whose home does not exist, opened first, does not keep the
 *   runs of a second one (whose home exists) from taking their lock there.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { exitOf, hangGuard } from "./_deadline.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const CHILD = join(ROOT, "tests", "fixtures", "given_up_run.ts");

/** Start the child in a fresh project; resolve with its first lines of JSON, parsed. */
async function withChild(
  args: string[],
  lines: number,
  fn: (dir: string, said: Record<string, unknown>[]) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-given-up-" });
  try {
    const config = join(dir, "flowstate.yaml");
    await Deno.writeTextFile(
      config,
      "stores:\n  main: { plugin: sqlite, path: .flowstate/main.db }\n",
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--config", join(ROOT, "deno.json"), "-A", CHILD, config, ...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    using _hang = hangGuard(child);
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (seen.split("\n").length <= lines) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the child ended early:\n${seen}`);
      seen += value;
    }
    try {
      await fn(dir, seen.trim().split("\n").map((line) => JSON.parse(line)));
    } finally {
      await child.stdin.close();
      await exitOf(child);
      await reader.cancel();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a run its live process gave up is judged by its heartbeat, not held running while that process lives", async () => {
  await withChild([], 1, async (dir, [{ runId }]) => {
    assert.equal(typeof runId, "string");
    // Another process, as the CLI with -A reads it (by /proc), a minute later.
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "--config",
        join(ROOT, "deno.json"),
        "-A",
        CHILD,
        join(dir, "flowstate.yaml"),
        "--abandon",
        runId as string,
      ],
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    const run = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.equal(typeof run.owner?.startTicks, "number", "its owner is verifiable by /proc");
    assert.equal(run.status, "failed", "abandoned, not left running as alive");
    assert.match(run.error.message, /^abandoned: no heartbeat/);
  });
});

Deno.test("judging a run takes no owner lock: only a run started takes one", async () => {
  await withChild(["--list-owners"], 2, (_dir, [judged, started]) => {
    assert.equal(judged.judged, "live");
    assert.deepEqual(judged.owners, [], "judging a run created an owner lock");
    assert.equal((started.owners as string[]).length, 1, "the run's start takes it");
    return Promise.resolve();
  });
});

Deno.test("a runtime without a home opened first: the runs of one with a home take their owner lock in it", async () => {
  await withChild(["--memory-first"], 1, (dir, [started]) => {
    assert.equal(typeof started.lock, "string", "the run recorded no owner lock");
    assert.equal(
      started.lock,
      join(Deno.realPathSync(join(dir, ".flowstate", "owners")), (started.owners as string[])[0]),
    );
    return Promise.resolve();
  });
});
