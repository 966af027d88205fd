/**
 * What `ArchiveReader.flows()` and `listVersions()` read: the flows from the
 * indexes alone (no flow versions file), and a flow's versions from the
 * versions files of the periods its runs ran in, newest first, only while a
 * version is not found yet; a damaged versions file is handed to `onDamaged`
 * (or thrown) and its versions left out.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime, runJob } from "../../mod.ts";
import { ArchiveReader } from "./_archive_read.ts";
import { StoreCorruptError } from "../errors.ts";

const DAY = 86_400_000;
const flow = (id: string, message: string) => ({
  id,
  nodes: [{ id: "say", type: "log" as const, with: { message } }],
});

Deno.test("ArchiveReader: flows from the indexes, a flow's versions from the versions files it needs", async () => {
  const home = await Deno.makeTempDir({ prefix: "flowstate-archive-read-" });
  try {
    let now = Date.UTC(2026, 0, 10);
    const hashes: Record<string, string> = {};
    {
      await using rt = await openRuntime({
        home,
        config: { stores: { main: { plugin: "memory" } } },
        clock: { now: () => now },
      });
      hashes.f1 = (await rt.runFlow(flow("f", "one"))).flowVersion;
      hashes.g = (await rt.runFlow(flow("g", "only in January"))).flowVersion;
      now = Date.UTC(2026, 1, 10);
      assert.equal((await rt.runFlow(flow("f", "one"))).flowVersion, hashes.f1);
      hashes.f2 = (await rt.runFlow(flow("f", "two"))).flowVersion;
      now += 60 * DAY;
      const archived = await runJob(rt, "archive", { options: { period: "month" } });
      assert.equal(archived.outputs?.archived, 4, JSON.stringify(archived.outputs));
    }
    const dir = join(home, "archive");
    // January's flow versions file is damaged: only a listing that needs it reads it.
    await Deno.writeTextFile(join(dir, "runs-2026-01.versions.ndjson.gz"), "not gzip");

    const reader = new ArchiveReader(home);
    const flows = await reader.flows();
    assert.deepEqual([...flows.keys()].sort(), ["f", "g"]);
    assert.deepEqual([...flows.get("f")!.versions].sort(), [hashes.f1, hashes.f2].sort());
    assert.equal(flows.get("f")!.newest.archive, "runs-2026-02.ndjson.gz");
    assert.equal(flows.get("g")!.newest.archive, "runs-2026-01.ndjson.gz");

    // f's versions are all in February's file: January's is not read.
    const f = await reader.listVersions("f");
    assert.deepEqual(
      f.map((v) => [v.version.hash, v.archive]).sort(),
      [[hashes.f1, "runs-2026-02.ndjson.gz"], [hashes.f2, "runs-2026-02.ndjson.gz"]].sort(),
    );
    // g ran only in January: its file is read, and its damage met.
    await assert.rejects(() => reader.listVersions("g"), StoreCorruptError);
    const damaged: StoreCorruptError[] = [];
    assert.deepEqual(await reader.listVersions("g", (err) => damaged.push(err)), []);
    assert.equal(damaged.length, 1);
    assert.match(damaged[0].message, /runs-2026-01\.versions\.ndjson\.gz is damaged/);
    // A version the caller has already (recorded) is not looked for.
    assert.deepEqual(await reader.listVersions("g", undefined, new Set([hashes.g])), []);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
