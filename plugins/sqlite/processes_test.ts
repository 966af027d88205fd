import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore } from "../../src/plugin.ts";
import type { Key } from "../../src/store/types.ts";
import { SqliteDriver } from "./mod.ts";
import { rawDb, withDir } from "./_test_utils.ts";
import { exitOf, killQuietly, within } from "../../tests/_deadline.ts";

// SqliteDriver shared by several OS processes: compare-and-set across two
// writers, and no acknowledged write lost to kill -9. The child scripts are
// in testdata/.

const ROOT = new URL("../", import.meta.url).pathname;
const TESTDATA = new URL("./testdata/", import.meta.url).pathname;

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

function denoRun(script: string, args: string[]): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", join(TESTDATA, script), ...args],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  });
}

// --- Several OS processes ----------------------------------------------------

Deno.test("SqliteDriver.commit() loses no compare-and-set increment across two processes", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "counter.db");
    // Create the file first so both processes race on writes, not on setup.
    (await SqliteDriver.open(path)).close();
    const children = [0, 1].map(() => denoRun("sqlite_counter.ts", [path, "500"]).spawn());
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
    await within(Promise.all(outputs.map((o) => o.isReady)), "both children ready", {
      details: () => outputs.map((o, i) => `child ${i} printed: ${o.out.join("\n")}`).join("\n"),
      onHang: () => children.forEach(killQuietly),
    });
    for (const child of children) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode("go\n"));
      await writer.close();
    }
    const statuses = await Promise.all(children.map((c) => exitOf(c)));
    for (const [i, status] of statuses.entries()) {
      await outputs[i].done;
      assert.ok(status.success, `child ${i} failed: ${await outputs[i].stderr}`);
    }
    const store = await openStore({ plugin: "sqlite", path });
    try {
      assert.equal((await store.get(["counter"]))?.value, 1000);
    } finally {
      await store.close();
    }
    // The processes really raced: some of their compare-and-sets lost and were retried.
    const conflicts = outputs.map((o) => JSON.parse(o.out[0]).conflicts as number);
    assert.ok(
      conflicts[0] + conflicts[1] > 0,
      `no conflicts (${conflicts}): the processes did not race`,
    );
  });
});

for (const durability of ["full", "relaxed"] as const) {
  Deno.test(`SqliteDriver keeps every acknowledged write after kill -9 (durability ${durability})`, async () => {
    await withDir(async (dir) => {
      const path = join(dir, "killed.db");
      const child = denoRun("sqlite_writer.ts", [path, durability]).spawn();
      await child.stdin.close();
      const stderr = new Response(child.stderr).text();
      const acknowledged: string[] = [];
      const target = 300 + Math.floor(Math.random() * 400);
      let killed = false;
      await lines(child.stdout, (line) => {
        acknowledged.push(line);
        if (!killed && acknowledged.length >= target) {
          killed = true;
          child.kill("SIGKILL");
        }
      });
      const status = await exitOf(child);
      assert.equal(status.signal, "SIGKILL", `writer ended on its own: ${await stderr}`);
      assert.ok(acknowledged.length >= target);

      const db = rawDb(path);
      try {
        const check = db.prepare("PRAGMA integrity_check").all();
        assert.deepEqual(check.map((r) => r.integrity_check), ["ok"]);
      } finally {
        db.close();
      }
      const store = await openStore({ plugin: "sqlite", path });
      try {
        const expected: Key[] = [];
        for (const key of acknowledged) {
          expected.push(["w", key]);
          if (Number(key) % 10 === 9) expected.push(["w", `${key}-a`], ["w", `${key}-b`]);
        }
        const found = await store.getMany(expected);
        const missing = expected.filter((_, i) => found[i] === null);
        assert.deepEqual(missing, [], `${missing.length} acknowledged writes were lost`);
        // Atomic batches are all-or-nothing even when the kill lands inside one.
        for await (const e of store.list({ prefix: ["w"] })) {
          const base = e.key[1].slice(0, 7);
          if (Number(base) % 10 === 9) {
            const batch = await store.getMany([["w", base], ["w", `${base}-a`], [
              "w",
              `${base}-b`,
            ]]);
            assert.ok(batch.every((x) => x !== null), `batch ${base} is partial`);
          }
        }
      } finally {
        await store.close();
      }
    });
  });
}
