/**
 * `flowstate run` keeps validated flow files under `<home>/cache/flows`
 * (src/flow_disk_cache.ts): a run of the same bytes neither loads the YAML
 * parser nor parses; an edit, a corrupt entry or a home it cannot write are
 * handled as if there were no cache.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { flowDiskCacheStats, loadFlowFileCached } from "../src/flow_disk_cache.ts";
import { FlowValidationError, parseFlow } from "../src/flow/parse.ts";
import { loadFlowIn } from "../src/flow/load.ts";

const CLI = fromFileUrl(new URL("../cli.ts", import.meta.url));
const EXAMPLES = fromFileUrl(new URL("../examples/", import.meta.url));
const COUNTER = await Deno.readTextFile(join(EXAMPLES, "counter.flow.yaml"));

/** `deno task run`'s permissions, plus `extra`, in `cwd` (of `script`: the CLI's entry). */
async function run(cwd: string, args: string[], extra: string[] = [], script = CLI) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--unstable-worker-options",
      "--allow-read",
      "--allow-write=.flowstate",
      "--allow-env",
      "--allow-net",
      "--allow-sys=hostname",
      ...extra,
      script,
      "run",
      ...args,
    ],
    cwd,
    env: { NO_COLOR: "1" },
    clearEnv: false,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function entries(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(join(dir, ".flowstate/cache/flows"))) names.push(e.name);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return names.sort();
}

// The YAML parser reads LOG_TOKENS and LOG_STREAM: a run denied them can only
// succeed when it does not parse the YAML (a cache hit).
const NO_YAML = ["--deny-env=LOG_TOKENS,LOG_STREAM"];

Deno.test("run: a second run of the same file is a cache hit that parses no YAML", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "counter.flow.yaml"), COUNTER);
    // Without an entry, the run must parse: denied the parser's variables, it fails.
    const miss = await run(dir, ["counter.flow.yaml"], NO_YAML);
    assert.equal(miss.code, 1, miss.stderr);
    assert.match(miss.stderr, /LOG_TOKENS/);
    assert.deepEqual(await entries(dir), []);

    const first = await run(dir, ["counter.flow.yaml"]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /count: 1/);
    assert.equal((await entries(dir)).length, 1);

    const hit = await run(dir, ["counter.flow.yaml", "--input", "by=2"], NO_YAML);
    assert.equal(hit.code, 0, hit.stderr);
    assert.match(hit.stdout, /count: 3/);
    // Same flow version as the parsed run: the definition is the same.
    assert.equal(
      /version (\w+)/.exec(hit.stdout)?.[1],
      /version (\w+)/.exec(first.stdout)?.[1],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("run: a cache hit of a flow with templated built-in options does not load zod", async () => {
  const dir = await Deno.makeTempDir();
  const probe = fromFileUrl(new URL("./fixtures/zod_probe.ts", import.meta.url));
  try {
    // The counter's `by: "${{ inputs.by }}"`: its keys are checked against the zod schema once.
    await Deno.writeTextFile(join(dir, "counter.flow.yaml"), COUNTER);
    const first = await run(dir, ["counter.flow.yaml", "--input", "by=1"], [], probe);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /zodLoaded=true/, "a miss checks the templated keys with zod");
    const hit = await run(dir, ["counter.flow.yaml", "--input", "by=2"], [], probe);
    assert.equal(hit.code, 0, hit.stderr);
    assert.match(hit.stdout, /count: 3/);
    assert.match(hit.stderr, /zodLoaded=false/, hit.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("run: an edited file is validated again; an invalid one fails as without a cache", async () => {
  const dir = await Deno.makeTempDir();
  const fresh = await Deno.makeTempDir();
  try {
    const file = join(dir, "counter.flow.yaml");
    await Deno.writeTextFile(file, COUNTER);
    assert.equal((await run(dir, ["counter.flow.yaml"])).code, 0);
    // Invalid now: a typo in a node's needs.
    const bad = COUNTER.replace("needs: [bump]", "needs: [bmup]");
    await Deno.writeTextFile(file, bad);
    const failed = await run(dir, ["counter.flow.yaml"]);
    assert.equal(failed.code, 2, failed.stderr);
    assert.match(failed.stderr, /counter\.flow\.yaml:14:\d+: nodes\[1\]\.needs\[0\]: .*"bmup"/);
    // The same message as a home that never saw the file.
    await Deno.writeTextFile(join(fresh, "counter.flow.yaml"), bad);
    assert.equal((await run(fresh, ["counter.flow.yaml"])).stderr, failed.stderr);
    assert.equal((await entries(dir)).length, 1); // the invalid text was not cached
    // Valid again, with another value: a new entry, used by the next run.
    await Deno.writeTextFile(file, COUNTER.replace("default: 1", "default: 10"));
    const edited = await run(dir, ["counter.flow.yaml"]);
    assert.equal(edited.code, 0, edited.stderr);
    assert.match(edited.stdout, /count: 11/);
    assert.equal((await entries(dir)).length, 2);
    const hit = await run(dir, ["counter.flow.yaml"], NO_YAML);
    assert.match(hit.stdout, /count: 21/);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(fresh, { recursive: true });
  }
});

Deno.test("run: a corrupt, truncated or foreign cache entry is ignored and written again", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "counter.flow.yaml"), COUNTER);
    assert.equal((await run(dir, ["counter.flow.yaml"])).code, 0);
    const [name] = await entries(dir);
    const entry = join(dir, ".flowstate/cache/flows", name);
    const good = await Deno.readTextFile(entry);
    const [sum, body] = [good.slice(0, good.indexOf("\n")), good.slice(good.indexOf("\n") + 1)];
    const forged = body.replace('"id":"counter"', '"id":"forged"');
    for (
      const broken of [
        "not json at all",
        good.slice(0, good.length - 20), // truncated
        `${sum}\n${forged}`, // changed without its checksum
        "",
      ]
    ) {
      await Deno.writeTextFile(entry, broken);
      // Denied the parser's variables, the run fails: the entry was not trusted.
      const denied = await run(dir, ["counter.flow.yaml"], NO_YAML);
      assert.equal(denied.code, 1, denied.stderr);
      const again = await run(dir, ["counter.flow.yaml", "--json"]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(JSON.parse(again.stdout).flowId, "counter");
      assert.equal(await Deno.readTextFile(entry), good); // rewritten
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("run: a home whose cache cannot be written runs without a cache, silently", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "counter.flow.yaml"), COUNTER);
    const deny = ["--deny-write=.flowstate/cache"];
    for (const n of [1, 2]) {
      const out = await run(dir, ["counter.flow.yaml"], deny);
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stdout, new RegExp(`count: ${n}`));
      assert.doesNotMatch(out.stderr, /cache|warning/i);
    }
    assert.deepEqual(await entries(dir), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("run: a flow refused when prepared is not cached, and writes nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Valid as a file; the unknown store is found when the flow is prepared.
    await Deno.writeTextFile(
      join(dir, "f.flow.yaml"),
      "id: f\nnodes:\n  - id: a\n    type: state.get\n    with: { key: k, store: nope }\n",
    );
    for (const _ of [1, 2]) {
      const out = await run(dir, ["f.flow.yaml"]);
      assert.equal(out.code, 2, out.stderr);
      assert.match(out.stderr, /f\.flow\.yaml:5:\d+: .*nope/);
    }
    await assert.rejects(Deno.stat(join(dir, ".flowstate")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadFlowFileCached(): errors found while preparing a hit say file:line:column", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "f.flow.yaml");
    await Deno.writeTextFile(
      path,
      "id: f\nnodes:\n  - id: a\n    type: state.get\n    with: { key: k, store: nope }\n",
    );
    const cacheDir = join(dir, "cache");
    const miss = await loadFlowFileCached(path, { displayPath: "f.flow.yaml", cacheDir });
    assert.equal(miss.hit, false);
    await miss.save();
    const hit = await loadFlowFileCached(path, { displayPath: "f.flow.yaml", cacheDir });
    assert.equal(hit.hit, true);
    const messages = [];
    for (const { parsed } of [miss, hit]) {
      const err = await loadFlowIn(parsed, { stores: ["main"] }).catch((e) => e);
      assert.ok(err instanceof FlowValidationError, String(err));
      messages.push(err.message);
    }
    assert.match(messages[0], /f\.flow\.yaml:5:\d+: nodes\[0\]\.with\.store: .*"nope"/);
    assert.equal(messages[1], messages[0]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadFlowFileCached(): a hit locates every path as the parser does", async () => {
  const cacheDir = await Deno.makeTempDir();
  try {
    for await (const e of Deno.readDir(EXAMPLES)) {
      if (!e.name.endsWith(".flow.yaml")) continue;
      const path = join(EXAMPLES, e.name);
      const parsed = parseFlow(await Deno.readTextFile(path), { file: e.name });
      const before = { ...flowDiskCacheStats };
      const { parsed: miss, save } = await loadFlowFileCached(path, {
        displayPath: e.name,
        cacheDir,
      });
      await save();
      const { parsed: hit } = await loadFlowFileCached(path, { displayPath: e.name, cacheDir });
      assert.equal(flowDiskCacheStats.misses, before.misses + 1, e.name);
      assert.equal(flowDiskCacheStats.hits, before.hits + 1, e.name);
      assert.deepEqual(hit.definition, parsed.definition);
      assert.deepEqual(miss.definition, parsed.definition);
      assert.equal(hit.file, e.name);
      assert.equal(hit.source, parsed.source);
      const paths: (string | number)[][] = [];
      const walk = (v: unknown, p: (string | number)[]) => {
        paths.push(p, [...p, "missing"], [...p, 99, "x"]);
        if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...p, i]));
        else if (typeof v === "object" && v !== null) {
          for (const [k, x] of Object.entries(v)) walk(x, [...p, k]);
        }
      };
      walk(parsed.definition, []);
      for (const p of paths) assert.deepEqual(hit.locate(p), parsed.locate(p), `${e.name} ${p}`);
    }
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("the run path's static imports hold neither the YAML parser nor the flow schema", async () => {
  // `flowstate run` loads cli.ts, then run.ts (a dynamic import of main.ts).
  const seen = new Set<string>();
  for (const root of [CLI, fromFileUrl(new URL("../src/cli/run.ts", import.meta.url))]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", root],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    assert.equal(out.code, 0);
    const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      roots: string[];
      modules: {
        specifier: string;
        dependencies?: { isDynamic?: boolean; code?: { specifier?: string } }[];
      }[];
    };
    const bySpec = new Map(graph.modules.map((m) => [m.specifier, m]));
    const queue = [...graph.roots];
    for (const r of queue) seen.add(r);
    while (queue.length > 0) {
      for (const dep of bySpec.get(queue.pop()!)?.dependencies ?? []) {
        const spec = dep.code?.specifier;
        if (dep.isDynamic || spec === undefined || seen.has(spec)) continue;
        seen.add(spec);
        queue.push(spec);
      }
    }
  }
  const loaded = [...seen];
  assert.ok(loaded.some((s) => s.endsWith("/src/cli/run.ts")), "the graph holds run.ts");
  for (const absent of [/npm:.*\byaml@/, /\/src\/flow\/parse\.ts$/, /\/src\/flow\/schema\.ts$/]) {
    assert.deepEqual(loaded.filter((s) => absent.test(s)), [], String(absent));
  }
});
