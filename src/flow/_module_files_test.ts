import assert from "node:assert/strict";
import { join } from "node:path";
import { isFlowstateCode, moduleFiles, unchanged } from "./_module_files.ts";

Deno.test("moduleFiles() follows local static, re-exported and literal dynamic imports, not bare or remote ones", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "lib"));
    await Deno.writeTextFile(
      join(dir, "node.ts"),
      [
        'import { a } from "./lib/a.ts";',
        "import {\n  b,\n} from './lib/b.js';",
        'import "./lib/side.ts";',
        'const c = await import("./lib/c.mjs");',
        'import data from "./lib/data.json" with { type: "json" };',
        'import x from "npm:x@1"; import y from "@scope/y"; import z from "https://example.com/z.ts";',
      ].join("\n"),
    );
    for (const name of ["a.ts", "b.js", "side.ts", "c.mjs", "data.json"]) {
      await Deno.writeTextFile(
        join(dir, "lib", name),
        name === "a.ts" ? 'export * from "./deep.ts";\n' : "",
      );
    }
    await Deno.writeTextFile(join(dir, "lib", "deep.ts"), "export const a = 1;\n");
    const files = moduleFiles(join(dir, "node.ts"));
    assert.deepEqual(
      files.map(([path]) => path.slice(dir.length + 1)).sort(),
      [
        "lib/a.ts",
        "lib/b.js",
        "lib/c.mjs",
        "lib/data.json",
        "lib/deep.ts",
        "lib/side.ts",
        "node.ts",
      ],
    );
    assert.ok(unchanged(files));
    await Deno.writeTextFile(join(dir, "lib", "deep.ts"), "export const a = 22;\n");
    assert.ok(!unchanged(files), "an edit two imports down is a change");
    // Flowstate's own files are not followed.
    const skipped = moduleFiles(
      join(dir, "node.ts"),
      (path) => isFlowstateCode(path, join(dir, "lib")),
    );
    assert.deepEqual(skipped.map(([path]) => path), [join(dir, "node.ts")]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
