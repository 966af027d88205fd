/**
 * `deno run --seed N` seeds `Math.random` and `crypto.getRandomValues`: two
 * processes started with the same seed must still make different run ids,
 * version tokens and worker ids (they share stores, and a repeated version
 * would pass another process's compare-and-set).
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("./fixtures/seeded_ids.ts", import.meta.url));
const DENO_JSON = fileURLToPath(new URL("../deno.json", import.meta.url));

interface Made {
  runId: string;
  version: string;
  workerId: string;
}

async function madeWithSeed(seed: number, flags: string[]): Promise<Made> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--seed", String(seed), "--config", DENO_JSON, "-A", ...flags, SCRIPT],
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

// Where the bytes come from: /dev/urandom, or node:crypto when it may not be read.
for (
  const [source, flags] of [["", []], [" (no read permission)", [
    "--deny-read=/dev/urandom",
  ]]] as const
) {
  Deno.test(`two processes started with the same --seed make different run ids, version tokens and worker ids${source}`, async () => {
    const [a, b] = await Promise.all([madeWithSeed(42, [...flags]), madeWithSeed(42, [...flags])]);
    // Run ids: 9 digits of time (which may be equal), then 11 random ones.
    assert.notEqual(a.runId.slice(9), b.runId.slice(9), `${a.runId} vs ${b.runId}`);
    // Versions: time, a per-process counter (equal), then the process's random tag.
    const tag = (version: string) => version.split(".").at(-1);
    assert.notEqual(tag(a.version), tag(b.version), `${a.version} vs ${b.version}`);
    // Worker ids: host and pid, then a random part (pids may repeat across containers).
    assert.notEqual(a.workerId.split(":").at(-1), b.workerId.split(":").at(-1));
  });
}
