// Tests of restoreBackup() and the restore job: expiry, damaged files, force, interrupted and killed restores.
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { StoreCorruptError } from "../src/errors.ts";
import { openStore } from "../src/plugin.ts";
import type { Clock, JsonValue, Key } from "../src/store/types.ts";
import { withHooks } from "../src/wrappers/hooks.ts";
import { readGzipLines } from "../src/archive_format.ts";
import { newRunId } from "../src/records/run_id.ts";
import {
  backupOf,
  content,
  NOW,
  quietProgress,
  restoreInto,
  seed,
  withEnv,
} from "./_test_utils.ts";
import { backupStore, RESTORE_MARKER_KEY } from "./backup.ts";
import { restoreBackup, type RestoreMarker, verifyBackup } from "./restore.ts";
import { exitOf, hangGuard } from "../tests/_deadline.ts";

Deno.test("restore skips entries that expired since the backup and counts them", async () => {
  await withEnv(async (env) => {
    const src = await env.rt.store("src");
    await seed(src, 50);
    const file = await backupOf(env, "src");
    // Entry 0 expires after 1 minute, entry 7 after 8 minutes.
    env.clock.advance(5 * 60_000);
    const expected = await content(src);
    const run = await restoreInto(env, file, "mem");
    assert.equal(run.status, "succeeded", run.error?.message);
    assert.equal(run.outputs?.expired, 1);
    assert.equal(run.outputs?.restored, 49);
    assert.deepEqual(await content(await env.rt.store("mem")), expected);
  });
});

// ---- damaged files ----------------------------------------------------------

async function gzipText(text: string): Promise<Uint8Array> {
  return new Uint8Array(
    await new Response(
      new Blob([text]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer(),
  );
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Rewrite a backup's lines (and drop its .sha256, so only the embedded checks apply). */
async function rewrite(
  from: string,
  to: string,
  edit: (lines: string[]) => string[] | Promise<string[]>,
): Promise<void> {
  const lines = await Array.fromAsync(readGzipLines(from));
  const edited = await edit(lines);
  await Deno.writeFile(to, await gzipText(edited.map((l) => `${l}\n`).join("")));
}

/** Entry lines with a trailer recomputed to match them (so only the intended damage remains). */
async function withTrailer(lines: string[]): Promise<string[]> {
  const entries = lines.slice(1, -1);
  const trailer = JSON.parse(lines.at(-1)!);
  trailer.entries = entries.length;
  trailer.sha256 = await sha256Hex(entries.map((l) => `${l}\n`).join(""));
  return [lines[0], ...entries, JSON.stringify(trailer)];
}

Deno.test("restore refuses each kind of damaged backup file before writing anything", async () => {
  await withEnv(async (env) => {
    const src = await env.rt.store("src");
    await seed(src, 40);
    const good = await backupOf(env, "src");
    const bytes = await Deno.readFile(good);
    const dir = join(env.dir, "damaged");
    await Deno.mkdir(dir);
    const cases: [string, () => Promise<void>, RegExp][] = [
      [
        "not gzip",
        () => Deno.writeTextFile(join(dir, "f"), "hello, not a backup\n"),
        /not a gzip file/,
      ],
      [
        "empty file",
        () => Deno.writeFile(join(dir, "f"), new Uint8Array()),
        /empty|not a gzip|truncated|damaged/,
      ],
      [
        "truncated",
        () => Deno.writeFile(join(dir, "f"), bytes.subarray(0, bytes.length - 20)),
        /damaged or truncated/,
      ],
      ["bit flip", async () => {
        const copy = bytes.slice();
        copy[Math.floor(copy.length / 2)] ^= 0x10;
        await Deno.writeFile(join(dir, "f"), copy);
      }, /damaged or truncated|not valid JSON|not UTF-8|not after/],
      [
        "bytes after the gzip data",
        () => Deno.writeFile(join(dir, "f"), new Uint8Array([...bytes, 1, 2, 3])),
        /bytes after the end of its gzip data/,
      ],
      [
        "gzip of nothing",
        async () => Deno.writeFile(join(dir, "f"), await gzipText("")),
        /empty \(no header line\)/,
      ],
      [
        "not a backup header",
        () =>
          rewrite(
            good,
            join(dir, "f"),
            (l) => [JSON.stringify({ format: "other" }), ...l.slice(1)],
          ),
        /not a Flowstate backup/,
      ],
      [
        "unknown format version",
        () =>
          rewrite(good, join(dir, "f"), (l) => [
            JSON.stringify({ ...JSON.parse(l[0]), version: 3 }),
            ...l.slice(1),
          ]),
        /format version 3, newer than this Flowstate reads \(2\)/,
      ],
      [
        "no trailer",
        () => rewrite(good, join(dir, "f"), (l) => l.slice(0, -1)),
        /truncated: no trailer after 40 entries/,
      ],
      [
        "cut between entries",
        () => rewrite(good, join(dir, "f"), (l) => l.slice(0, 10)),
        /truncated: no trailer after 9 entries/,
      ],
      [
        "count mismatch",
        () =>
          rewrite(good, join(dir, "f"), (l) => {
            const t = JSON.parse(l.at(-1)!);
            return [...l.slice(0, -1), JSON.stringify({ ...t, entries: 41 })];
          }),
        /trailer says 41 entries, but it holds 40/,
      ],
      [
        "checksum mismatch",
        () =>
          rewrite(good, join(dir, "f"), (l) => {
            const e = JSON.parse(l[5]);
            return [...l.slice(0, 5), JSON.stringify({ ...e, value: "tampered" }), ...l.slice(6)];
          }),
        /SHA-256 of its entries is [0-9a-f]{64}, but its trailer says/,
      ],
      [
        "data after the trailer",
        () => rewrite(good, join(dir, "f"), (l) => [...l, l[1]]),
        /data after its trailer/,
      ],
      [
        "keys out of order",
        () => rewrite(good, join(dir, "f"), (l) => withTrailer([l[0], l[2], l[1], ...l.slice(3)])),
        /is not after the key before it/,
      ],
      [
        "a bad key",
        () =>
          rewrite(good, join(dir, "f"), (l) => {
            const e = JSON.parse(l[1]);
            return withTrailer([l[0], JSON.stringify({ ...e, key: "flat" }), ...l.slice(2)]);
          }),
        /line 2/,
      ],
      [
        "a number JSON cannot hold",
        () =>
          rewrite(good, join(dir, "f"), (l) => {
            const broken = l[1].replace(/"value":.*,"expiresAt"/s, '"value":1e999,"expiresAt"');
            return withTrailer([l[0], broken, ...l.slice(2)]);
          }),
        /a number JSON cannot hold/,
      ],
      [
        "a .sha256 that does not match",
        async () => {
          await Deno.writeFile(join(dir, "f"), bytes);
          await Deno.writeTextFile(join(dir, "f.sha256"), `${"0".repeat(64)}  f\n`);
        },
        /says 0{64} \(the file was changed or damaged\)/,
      ],
    ];
    const target = await env.rt.store("mem");
    for (const [name, make, message] of cases) {
      await Deno.remove(join(dir, "f.sha256")).catch(() => {});
      await make();
      await assert.rejects(
        restoreBackup(target, join(dir, "f"), { batchSize: 7 }),
        (err: Error) => {
          assert.ok(err instanceof StoreCorruptError, `${name}: ${err}`);
          assert.match(err.message, message, name);
          assert.match(err.message, /^Cannot restore from /, name);
          return true;
        },
        name,
      );
      assert.equal(await target.count(), 0, `${name}: nothing written`);
      // Through the job too: the run fails, the store stays empty.
      const run = await restoreInto(env, join(dir, "f"), "mem");
      assert.equal(run.status, "failed", name);
      assert.match(run.error?.message ?? "", message, name);
      assert.equal(await target.count(), 0, `${name}: nothing written by the job`);
    }
    // The good file still restores.
    await restoreBackup(target, good, { clock: env.clock });
    assert.deepEqual(await content(target), await content(src));
  });
});

Deno.test("restore refuses a non-empty target without force; with force it replaces the content", async () => {
  await withEnv(async (env) => {
    const src = await env.rt.store("src");
    await seed(src, 20);
    const file = await backupOf(env, "src");
    const target = await env.rt.store("json");
    await target.set(["already", "here"], 1);
    const refused = await restoreInto(env, file, "json");
    assert.equal(refused.status, "failed");
    assert.match(
      refused.error?.message ?? "",
      /store "json": the store is not empty \(it holds \["already","here"\] and maybe more\); pass force \(--force\)/,
    );
    assert.deepEqual(await content(target), [{
      key: ["already", "here"],
      value: 1,
      expiresAt: null,
    }]);

    const forced = await restoreInto(env, file, "json", true);
    assert.equal(forced.status, "succeeded", forced.error?.message);
    assert.equal(forced.outputs?.cleared, 1);
    assert.deepEqual(await content(target), await content(src));
  });
});

Deno.test("an interrupted restore is marked, blocks backups, and a rerun resumes it", async () => {
  await withEnv(async (env) => {
    const src = await env.rt.store("src");
    await seed(src, 1000);
    const file = await backupOf(env, "src");
    const target = await env.rt.store("sql2");
    const controller = new AbortController();
    const stopped = await restoreBackup(target, file, {
      batchSize: 100,
      signal: controller.signal,
      clock: env.clock,
      progress: quietProgress((label, done) => {
        if (label.startsWith("restore into") && done >= 300) controller.abort();
      }),
    });
    assert.equal(stopped.cancelled, true);
    assert.equal(stopped.restored, 300);
    const marker = await target.get<RestoreMarker>(RESTORE_MARKER_KEY);
    assert.equal(marker?.value.done, 300);
    assert.equal(marker?.value.entries, 1000);
    assert.equal(await target.count(), 301);

    // A backup of a half-restored store is refused.
    await assert.rejects(
      backupStore(target, join(env.dir, "partial.fsbackup")),
      /holds an unfinished restore of .*run the restore again to finish it first/,
    );
    // Another file over it needs force.
    const other = join(env.dir, "other.fsbackup");
    await backupStore(await env.rt.store("rec"), other);
    await assert.rejects(
      restoreBackup(target, other),
      /unfinished restore of another backup \(.*300 of 1000 entries done\)/,
    );
    // The same file resumes where it stopped.
    const resumed = await restoreBackup(target, file, { batchSize: 100, clock: env.clock });
    assert.equal(resumed.resumedFrom, 300);
    assert.equal(resumed.restored, 700);
    assert.deepEqual(await content(target), await content(src));
    assert.equal(await target.get(RESTORE_MARKER_KEY), null);
  });
});

Deno.test("restore --force stopped while it deletes the old content leaves the store marked; a rerun deletes the rest and finishes", async () => {
  await withEnv(async (env) => {
    const src = await env.rt.store("src");
    await seed(src, 300);
    const file = await backupOf(env, "src");
    const target = await env.rt.store("sql2");
    await seed(target, 1600, "old");
    // The third batch of deletes fails (as a full disk or a lost connection would).
    let deletes = 0;
    const failing = withHooks(target, {
      beforeCommit(mutations) {
        if (mutations.every((m) => m.type === "delete") && ++deletes === 3) {
          throw new Error("the disk is full");
        }
      },
    });
    const keep = (key: Key) => key[0] === "kept";
    await assert.rejects(
      restoreBackup(failing, file, { force: true, keep, clock: env.clock }),
      /stopped after 0 of 300 entries: the disk is full\. The store now holds a partial restore .*its earlier content deleted.* run the same restore again to finish it/,
    );
    const marker = await target.get<RestoreMarker>(RESTORE_MARKER_KEY);
    assert.equal(marker?.value.clearing, true, "marked before anything was deleted");
    await assert.rejects(
      backupStore(target, join(env.dir, "partial.fsbackup")),
      /holds an unfinished restore/,
    );
    // The same file, without force: the rest of the old content goes, then the backup's.
    const resumed = await restoreBackup(target, file, { keep, clock: env.clock });
    assert.equal(resumed.restored, 300);
    assert.deepEqual(await content(target), await content(src));
    assert.equal(await target.get(RESTORE_MARKER_KEY), null);
  });
});

Deno.test("restore sets the exact expiry even when the clock moves inside every write", async () => {
  await withEnv(async (env) => {
    const src = await env.rt.store("src");
    await seed(src, 100);
    const file = await backupOf(env, "src");
    let t = NOW;
    const ticking: Clock = { now: () => t++ };
    await using target = await openStore({ plugin: "memory" }, { clock: ticking });
    const result = await restoreBackup(target, file, { batchSize: 30, clock: ticking });
    assert.equal(result.restored, 100);
    assert.deepEqual(await content(target), await content(src));
  });
});

Deno.test("restore survives kill -9 mid-write: a rerun completes it, with or without force", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-restore-kill-" });
  try {
    const source = await openStore({ plugin: "memory" });
    await seed(source, 4000);
    const expected = await content(source);
    const file = join(dir, "b.fsbackup");
    await backupStore(source, file);
    const child = join(dir, "child.ts");
    await Deno.writeTextFile(
      child,
      `import { openStore } from ${
        JSON.stringify(new URL("../src/plugin.ts", import.meta.url).href)
      };
import { restoreBackup } from ${JSON.stringify(new URL("./restore.ts", import.meta.url).href)};
const [file, db] = Deno.args;
const store = await openStore({ plugin: "sqlite", path: db, durability: "full" }, { home: ${
        JSON.stringify(dir)
      } });
let label = "";
await restoreBackup(store, file, {
  batchSize: 25,
  progress: {
    state: { label: "", done: 0, total: undefined },
    start(l) { label = l; },
    advance() {},
    update(done) { if (label.startsWith("restore into")) console.log("done " + done); },
    finish() {},
  },
});
console.log("finished");
`,
    );
    for (const rerunWithForce of [false, true]) {
      const db = join(dir, `target-${rerunWithForce}.db`);
      const proc = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--config",
          fileURLToPath(new URL("../deno.json", import.meta.url)),
          "--allow-read",
          "--allow-write",
          "--allow-env",
          child,
          file,
          db,
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      let seen = "";
      using _hang = hangGuard(proc, () => seen);
      const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += value;
        const last = [...seen.matchAll(/done (\d+)/g)].at(-1);
        if (last && Number(last[1]) >= 500) {
          proc.kill("SIGKILL");
          break;
        }
      }
      reader.releaseLock();
      await proc.stdout.cancel().catch(() => {});
      const status = await exitOf(proc);
      const errors = await new Response(proc.stderr).text();
      assert.equal(
        status.signal,
        "SIGKILL",
        `the child was killed mid-restore (stdout: ${seen}; stderr: ${errors})`,
      );
      assert.doesNotMatch(seen, /finished/);

      await using target = await openStore({ plugin: "sqlite", path: db }, { home: dir });
      const marker = await target.get<RestoreMarker>(RESTORE_MARKER_KEY);
      assert.ok(marker !== null, "the marker says the restore is unfinished");
      assert.ok(marker.value.done >= 500 && marker.value.done < 4000, `done ${marker.value.done}`);
      assert.ok((await target.count()) < 4000);

      const result = await restoreBackup(target, file, { force: rerunWithForce, batchSize: 500 });
      assert.equal(result.cancelled, false);
      if (rerunWithForce) {
        assert.equal(result.resumedFrom, 0);
        assert.ok(result.cleared > 0);
      } else {
        assert.equal(result.resumedFrom, marker.value.done);
        assert.equal(result.restored, 4000 - marker.value.done);
      }
      assert.equal(await target.get(RESTORE_MARKER_KEY), null);
      assert.deepEqual(await content(target), expected);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("restore job resuming a killed restore records the killed run as failed", async () => {
  await withEnv(async (env) => {
    const src = await env.rt.store("src");
    await seed(src, 10);
    const file = await backupOf(env, "src");
    const { sha256 } = await verifyBackup(file);
    // What a restore job killed before its first batch leaves behind.
    const records = await env.rt.records();
    const killedId = newRunId(env.rt.clock.now());
    await records.startRun({
      id: killedId,
      flowId: "job:restore",
      flowVersion: "job",
      status: "running",
      inputs: {},
      outputs: null,
      startedAt: NOW,
      endedAt: null,
      durationMs: null,
      nodes: {},
      error: null,
    });
    const target = await env.rt.store("mem");
    const marker: RestoreMarker = {
      file,
      sha256,
      entries: 10,
      done: 0,
      startedAt: new Date(NOW).toISOString(),
      runId: killedId,
    };
    await target.set(RESTORE_MARKER_KEY, marker as unknown as JsonValue);

    const run = await restoreInto(env, file, "mem");
    assert.equal(run.status, "succeeded", run.error?.message);
    assert.equal(run.outputs?.interruptedRunId, killedId);
    assert.deepEqual(await content(target), await content(src));
    const killed = await records.getRun(killedId);
    assert.equal(killed?.status, "failed");
    assert.equal(
      killed?.error?.message,
      `interrupted before it finished; completed by run ${run.id}`,
    );
  });
});

Deno.test("backup and restore keep escaped object keys as written, despite V8's JSON.parse bug", async () => {
  // nodejs/node#63785: after a native parse of `{"st":1,"a\\":1}`, `{"st":1,"a\n":2}` parsed as
  // `{ st: 1, "a\\": 2 }`; restore parses every backup line.
  const values: JsonValue[] = [
    { st: 1, "a\\": 1 },
    { st: 1, "a\n": 2 },
    { st: 1, "\\": 3, inner: [{ st: 1, "\n": 4 }] },
  ];
  await withEnv(async (env) => {
    const src = await env.rt.store("src");
    for (const [i, value] of values.entries()) await src.set(["esc", String(i)], value);
    const file = await backupOf(env, "src");
    for (const value of values) JSON.parse(JSON.stringify(value));
    const restored = await restoreInto(env, file, "json");
    assert.equal(restored.status, "succeeded", restored.error?.message);
    const target = await env.rt.store("json");
    for (const [i, value] of values.entries()) {
      for (const v of values) JSON.parse(JSON.stringify(v));
      const entry = await target.get(["esc", String(i)]);
      assert.equal(JSON.stringify(entry?.value), JSON.stringify(value), `esc/${i}`);
    }
  });
});

Deno.test("restoreBackup() commits big values a few at a time: a batch holds about 32 MiB, not batchSize entries", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "blobs.fsbackup");
    const mib = "x".repeat(1024 * 1024);
    {
      await using source = await openStore({ plugin: "memory" }, { name: "blobs" });
      for (let i = 0; i < 80; i++) await source.set(["blob", String(i).padStart(3, "0")], mib);
      await backupStore(source, file);
    }
    // The values of 1 MiB each commit sets.
    const commits: number[] = [];
    await using target = withHooks(await openStore({ plugin: "memory" }, { name: "copy" }), {
      beforeCommit(mutations) {
        commits.push(mutations.filter((m) => m.type === "set" && m.key[0] === "blob").length);
      },
    });
    const result = await restoreBackup(target, file, { batchSize: 500 });
    assert.equal(result.restored, 80);
    assert.equal(await target.count(), 80);
    const big = commits.filter((n) => n > 0);
    assert.ok(big.length >= 3 && big.every((n) => n <= 32), `commits: ${commits.join(", ")}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a restore whose store another restore took over and finished says so, not 'run the same restore again'", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "src.fsbackup");
    {
      await using source = await openStore({ plugin: "memory" }, { name: "src" });
      for (let i = 0; i < 50; i++) await source.set(["k", String(i).padStart(2, "0")], i);
      await backupStore(source, file);
    }
    await using target = await openStore({ plugin: "memory" }, { name: "copy" });
    // The first restore's second batch: meanwhile another process restores the same file into
    // the store (it resumes the first's marker and finishes).
    let commits = 0;
    const first = withHooks(target, {
      async beforeCommit() {
        if (++commits === 3) await restoreBackup(target, file, { batchSize: 10 });
      },
    });
    const err = await restoreBackup(first, file, { batchSize: 10 }).then(() => null, (e) => e);
    assert.ok(err instanceof Error, "the first restore stopped");
    assert.match(
      err.message,
      /the restore marker changed under it: another restore into this store took it over; this one stopped \(see how that one ended: flowstate runs ls --flow job:restore\)$/,
    );
    assert.doesNotMatch(err.message, /run the same restore again/);
    assert.equal(await target.count(), 50);
    assert.equal(await target.get(RESTORE_MARKER_KEY), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
