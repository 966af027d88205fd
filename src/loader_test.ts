import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import {
  importFailure,
  importFoundModule,
  mappingHint,
  moduleUrl,
  namesModule,
  resolveMappedName,
} from "./loader.ts";
import { loadJob } from "./jobs/run.ts";
import { loadPlugin } from "./plugin.ts";
import { prepareFlow } from "./flow/prepare.ts";
import { parseFlow } from "./flow/parse.ts";
import { builtinNodes } from "./flow/nodes.ts";

async function project(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-loader-" });
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(join(dir, path, ".."), { recursive: true });
    await Deno.writeTextFile(join(dir, path), text);
  }
  return dir;
}

const url = (path: string) => pathToFileURL(path).href;

Deno.test("a bare name resolves through the deno.json imports of the project around baseDir", async () => {
  const dir = await project({
    "deno.json": JSON.stringify({
      imports: {
        "@example/redis": "jsr:@example/redis@^1",
        "ioredis": "npm:ioredis@^5",
        "#nodes/": "./src/nodes/",
        "local": "./lib/local.ts",
      },
    }),
    "flows/x.flow.yaml": "",
  });
  try {
    const flows = join(dir, "flows");
    assert.equal(moduleUrl("@example/redis", flows), "jsr:@example/redis@^1");
    // A subpath of a jsr:/npm: mapping, as Deno allows.
    assert.equal(moduleUrl("@example/redis/driver", flows), "jsr:@example/redis@^1/driver");
    assert.equal(moduleUrl("ioredis", flows), "npm:ioredis@^5");
    assert.equal(moduleUrl("#nodes/a/b.ts", flows), url(join(dir, "src/nodes/a/b.ts")));
    assert.equal(moduleUrl("local", flows), url(join(dir, "lib/local.ts")));
    // Paths and specifiers are as before; an unmapped name names no module.
    assert.equal(moduleUrl("./n.ts", flows), url(join(flows, "n.ts")));
    assert.equal(moduleUrl("npm:x@1", flows), "npm:x@1");
    assert.equal(moduleUrl("unmapped", flows), undefined);
    assert.equal(namesModule("@example/redis", flows), true);
    assert.equal(namesModule("log", flows), false);
    assert.deepEqual(resolveMappedName("ioredis", flows), {
      url: "npm:ioredis@^5",
      file: join(dir, "deno.json"),
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno.jsonc with comments, an importMap file, package.json and a workspace root map names too", async () => {
  const dir = await project({
    "deno.json": JSON.stringify({ workspace: ["./app"], imports: { "from-root": "npm:r@1" } }),
    "app/deno.jsonc": `{
      // comments and trailing commas, as deno.jsonc allows
      "importMap": "./map.json", /* a file of its own */
      "imports": { "own": "./own.ts", },
    }`,
    "app/map.json": JSON.stringify({ imports: { "from-map": "../m.ts" } }),
    "app/package.json": JSON.stringify({ dependencies: { "left-pad": "^1.3.0" } }),
  });
  try {
    const app = join(dir, "app");
    assert.equal(moduleUrl("own", app), url(join(app, "own.ts")));
    assert.equal(moduleUrl("from-map", app), url(join(dir, "m.ts")));
    assert.equal(moduleUrl("left-pad", app), "npm:left-pad@^1.3.0");
    assert.equal(moduleUrl("from-root", app), "npm:r@1");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a bare import that no import map resolves says what to add to which deno.json", async () => {
  const dir = await project({
    "deno.json": "{}",
    "plugins/redis/deno.json": JSON.stringify({ imports: { ioredis: "npm:ioredis@^5.4" } }),
  });
  try {
    const from = url(join(dir, "plugins/redis/mod.ts"));
    const err = new Error(
      `\x1b[31mImport "ioredis" not a dependency and not in import map from "${from}"\n  hint: …`,
    );
    assert.equal(
      importFailure(err, dir),
      `${
        join(dir, "plugins/redis/mod.ts")
      } imports "ioredis", which no import map resolves: add "ioredis": "npm:ioredis@^5.4" to the imports of ${
        join(dir, "deno.json")
      }`,
    );
    const relative = new Error(
      `Relative import path "@scope/thing/sub" not prefixed with / or ./ or ../ and not in import map from "${
        url(join(dir, "x.ts"))
      }"`,
    );
    assert.match(
      importFailure(relative, dir),
      /imports "@scope\/thing\/sub", which no import map resolves: add "@scope\/thing": "jsr:@scope\/thing@<version>" to the imports of /,
    );
    assert.equal(importFailure(new Error("Module not found.\nmore")), "Module not found");
    assert.match(
      mappingHint("ioredis", dir),
      /^add "ioredis": "npm:ioredis@<version>" to the imports/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a near miss of a name the project maps is suggested before the mapping to add", async () => {
  const dir = await project({
    "deno.json": JSON.stringify({
      imports: { "@author/flowstate-slowmap": "./slowmap.ts", "#nodes/": "./nodes/" },
    }),
  });
  try {
    assert.equal(
      mappingHint("@author/flowstate-slowmapp", dir),
      `did you mean "@author/flowstate-slowmap" (mapped in ${
        join(dir, "deno.json")
      })? Or add "@author/flowstate-slowmapp": "jsr:@author/flowstate-slowmapp@<version>" to the imports of ${
        join(dir, "deno.json")
      }`,
    );
    // Nothing near: only the mapping to add.
    assert.match(mappingHint("ioredis", dir), /^add "ioredis": "npm:ioredis@<version>"/);
    await assert.rejects(
      () => loadPlugin("@author/flowstate-slowmapp", { baseDir: dir }),
      /Unknown plugin "@author\/flowstate-slowmapp": .*did you mean "@author\/flowstate-slowmap" \(mapped in /,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an import failure Deno locates keeps its place: relative to the working directory, or absolute outside it", () => {
  const inside = join(Deno.cwd(), "nodes", "syn.ts");
  const syntax = new TypeError(
    `SyntaxError: Expression expected\n  |\n2 |   x: 1 + ,\n  |          ~\n    at ${
      url(inside)
    }:2:10`,
  );
  assert.equal(
    importFailure(syntax),
    `SyntaxError: Expression expected at ${join("nodes", "syn.ts")}:2:10: \`x: 1 + ,\``,
  );
  assert.ok(importFoundModule(syntax));
  const outside = new TypeError(
    `Module not found "file:///elsewhere/b.ts".\n    at file:///elsewhere/a.ts:1:8`,
  );
  assert.equal(
    importFailure(outside),
    'Module not found "file:///elsewhere/b.ts" at /elsewhere/a.ts:1:8',
  );
  assert.ok(importFoundModule(outside));
  // The module itself is missing: not found, no location.
  const missing = new TypeError('Module not found "file:///elsewhere/a.ts".');
  assert.equal(importFailure(missing), 'Module not found "file:///elsewhere/a.ts"');
  assert.ok(!importFoundModule(missing));
  // A module that throws as it is evaluated was found.
  assert.ok(importFoundModule(new Error("boom")));
});

Deno.test("plugins, jobs and node types load by their import-map name; built-in names come first", async () => {
  const core = (path: string) => new URL(path, import.meta.url).href;
  const dir = await project({
    "deno.json": JSON.stringify({
      imports: {
        "@mine/store": "./store.ts",
        "@mine/job": "./job.ts",
        "@mine/node": "./node.ts",
        "log": "./node.ts", // never used: log is a built-in node type
      },
    }),
    "store.ts": `export { default } from "${core("../plugins/memory/mod.ts")}";`,
    "job.ts": `import { defineJob } from "${core("./jobs/job.ts")}";
import { z } from "zod";
export default defineJob({ name: "mine", description: "d", optionsSchema: z.object({}), run: () => ({ summary: "ok" }) });`,
    "node.ts": `import { defineNode } from "${core("./flow/node.ts")}";
import { z } from "zod";
export default defineNode({ optionsSchema: z.object({}).passthrough(), run: () => "mine" });`,
  });
  try {
    assert.equal((await loadPlugin("@mine/store", { baseDir: dir })).name, "memory");
    assert.equal((await loadJob("@mine/job", dir)).name, "mine");
    const flow = parseFlow(
      `id: f\nnodes:\n  - { id: a, type: "@mine/node" }\n  - { id: b, type: log, with: { message: hi } }\n`,
      { file: join(dir, "f.flow.yaml"), nodeTypes: new Set(["log"]) },
    );
    // Trusted, so its run() can be called here directly (a sandboxed one needs a run's ctx).
    const prepared = await prepareFlow(flow, { trusted: ["@mine/node"], trustedBaseDir: dir });
    assert.equal(await prepared.nodes[0].type.run({} as never, {} as never), "mine");
    assert.equal(prepared.nodes[1].type, builtinNodes.get("log"));
    // A near miss of a built-in is a typo, not a package to map.
    const typo = await loadPlugin("sqlte", { baseDir: dir }).catch((e) => e);
    assert.match(typo.message, /did you mean "sqlite"/);
    assert.doesNotMatch(typo.message, /package name/);
    const unknown = await loadPlugin("@mine/nothing", { baseDir: dir }).catch((e) => e);
    assert.match(
      unknown.message,
      /add "@mine\/nothing": "jsr:@mine\/nothing@<version>" to the imports of/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
