import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore } from "@flowstate/core";
import redis from "./mod.ts";
import { newPrefix, PACKAGE, redisTest, removeTestKeys, TESTDATA } from "./_test_utils.ts";
import { exitOf, killQuietly, within } from "../../tests/_deadline.ts";

// Two OS processes on one store: a commit's checks and writes are one step
// for every client of the server (a Lua script), so no increment is lost and
// no commit is half applied. The child script is testdata/redis_counter.ts.

async function lines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let buffer = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      onLine(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
    }
  }
}

redisTest(
  "two processes' compare-and-set increments lose nothing and commit whole",
  async (url) => {
    const prefix = newPrefix("counter");
    const times = 400;
    const children = ["p0", "p1"].map((name) =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-net=127.0.0.1",
          "--allow-env",
          join(TESTDATA, "redis_counter.ts"),
          url,
          prefix,
          name,
          String(times),
        ],
        cwd: PACKAGE,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn()
    );
    const outputs = children.map((child) => {
      let ready!: () => void;
      const isReady = new Promise<void>((resolve) => ready = resolve);
      const out: string[] = [];
      const done = lines(child.stdout, (line) => {
        if (line === "ready") ready();
        else out.push(line);
      });
      const stderr = new Response(child.stderr).text();
      return { isReady, out, done, stderr };
    });
    const statuses = children.map((c) => exitOf(c));
    // A child that fails before "ready" must fail the test, not hang it.
    await within(
      Promise.race([
        Promise.all(outputs.map((o) => o.isReady)),
        Promise.all(statuses).then(() => {}),
      ]),
      "both children ready",
      { onHang: () => children.forEach(killQuietly) },
    );
    for (const child of children) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode("go\n"));
      await writer.close();
    }
    for (const [i, status] of (await Promise.all(statuses)).entries()) {
      await outputs[i].done;
      assert.ok(status.success, `child ${i} failed: ${await outputs[i].stderr}`);
    }
    await using store = await openStore({ plugin: redis, url, prefix });
    assert.equal((await store.get(["counter"]))?.value, 2 * times);
    // Each increment wrote its log entry in the same commit, holding the value
    // it replaced: together the log holds every value 0 … 2·times−1 once.
    const seen: number[] = [];
    for await (const e of store.list<number>({ prefix: ["log"] })) seen.push(e.value);
    assert.deepEqual(seen.sort((a, b) => a - b), Array.from({ length: 2 * times }, (_, i) => i));
    // The processes really raced: some compare-and-sets lost and were retried.
    const conflicts = outputs.map((o) => JSON.parse(o.out[0]).conflicts as number);
    assert.ok(conflicts[0] + conflicts[1] > 0, `no conflicts (${conflicts}): no race happened`);
  },
);

removeTestKeys();
