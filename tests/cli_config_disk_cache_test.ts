/**
 * `flowstate run` in a project with a `flowstate.yaml` keeps the validated
 * config under `<home>/cache/config` (src/config_disk_cache.ts): a second cold
 * run of the same file loads neither the YAML parser nor zod, and runs as the
 * first did.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import denoJson from "../deno.json" with { type: "json" };

const MAIN = new URL("../src/cli/main.ts", import.meta.url).href;
const DENO_JSON = fromFileUrl(new URL("../deno.json", import.meta.url));
/** The `run` task's flags (permissions, V8 flags), as deno.json has them. */
const RUN_FLAGS = (denoJson.tasks.run.match(/^deno run (.*) cli\.ts run$/)?.[1] ?? "").split(" ");
const COUNTER = await Deno.readTextFile(new URL("../examples/counter.flow.yaml", import.meta.url));

/** One `flowstate run` in a process of its own, which then says whether zod was loaded. */
const PROBE = `
const { main } = await import(${JSON.stringify(MAIN)});
const code = await main(["run", "counter.flow.yaml", "--json"]);
console.error(JSON.stringify({ code, zodLoaded: "__zod_globalConfig" in globalThis }));
`;

// The YAML parser reads LOG_TOKENS and LOG_STREAM: a run denied them can only
// succeed when it parses no YAML (both caches hit).
const NO_YAML = ["--deny-env=LOG_TOKENS,LOG_STREAM"];

/**
 * Runs `script` (a probe, in `cwd`) with the run task's flags plus `extra`:
 * the run's exit code and whether zod was loaded, its stdout and stderr.
 */
async function probe(cwd: string, script: string, extra: string[] = []) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--config", DENO_JSON, ...RUN_FLAGS, ...extra, join(cwd, script)],
    cwd,
    env: { NO_COLOR: "1", SERVE_TOKEN: "s3cr3t-token" },
    clearEnv: false,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  const said = JSON.parse(stderr.trim().split("\n").at(-1) ?? "") as {
    code: number;
    zodLoaded: boolean;
  };
  return { ...said, stdout: new TextDecoder().decode(out.stdout), stderr };
}

Deno.test("run: a second cold run with the same flowstate.yaml loads neither the YAML parser nor zod", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "flowstate-configcache-" });
  try {
    await Deno.writeTextFile(
      join(cwd, "flowstate.yaml"),
      "stores:\n  default:\n    plugin: sqlite\n    path: .flowstate/state.db\n" +
        'flows: flows/\nserve: { token: "${env.SERVE_TOKEN}" }\n',
    );
    await Deno.writeTextFile(join(cwd, "counter.flow.yaml"), COUNTER);
    await Deno.writeTextFile(join(cwd, "probe.ts"), PROBE);
    // A refused run (an input the flow does not take) writes nothing: no home, no entry.
    await Deno.writeTextFile(
      join(cwd, "bad.ts"),
      PROBE.replace('"--json"]', '"--json", "--input", "nope=1"]'),
    );
    const refused = await probe(cwd, "bad.ts");
    assert.equal(refused.code, 2, refused.stderr);
    await assert.rejects(Deno.stat(join(cwd, ".flowstate")), Deno.errors.NotFound);
    const first = await probe(cwd, "probe.ts");
    assert.equal(first.code, 0);
    assert.equal(first.zodLoaded, true); // the miss validated the config with zod
    const second = await probe(cwd, "probe.ts", NO_YAML);
    assert.equal(second.code, 0);
    assert.equal(second.zodLoaded, false);
    assert.equal(
      JSON.parse(second.stdout).outputs.count,
      JSON.parse(first.stdout).outputs.count + 1,
    );
    // The cache holds the template, never the token.
    for await (const e of Deno.readDir(join(cwd, ".flowstate/cache/config"))) {
      const text = await Deno.readTextFile(join(cwd, ".flowstate/cache/config", e.name));
      assert.ok(text.includes("${env.SERVE_TOKEN}") && !text.includes("s3cr3t-token"));
    }
    // An edited config is parsed again: without the YAML parser's env, it cannot run.
    await Deno.writeTextFile(join(cwd, "flowstate.yaml"), "# edited\n", { append: true });
    const edited = await probe(cwd, "probe.ts", NO_YAML);
    assert.notEqual(edited.code, 0, edited.stderr);
    assert.match(edited.stderr, /LOG_TOKENS|LOG_STREAM/);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});
