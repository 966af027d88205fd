/**
 * Every place of the repository that names `jsr:@flowstate/core` or `jsr:@flowstate/redis` by a
 * range names the versions the packages are at (a release that bumps `deno.json` and forgets a
 * fixture or a doc leaves a project that no longer resolves the linked checkout). The stores 0.7
 * wrote (`tests/fixtures/v0.7/`) and the CHANGELOG, which tells of older versions, are left out.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join, relative } from "node:path";
import core from "../deno.json" with { type: "json" };
import redis from "../packages/redis/deno.json" with { type: "json" };

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const SKIP = new Set([".git", "node_modules", ".flowstate", "v0.7"]);
const minor = (version: string) => version.split(".").slice(0, 2).join(".");
const EXPECTED: Record<string, string> = {
  core: minor(core.version),
  redis: minor(redis.version),
};

async function* files(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    if (SKIP.has(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* files(path);
    else if (/(^deno\.json|\.md|\.lock)$/.test(entry.name) && entry.name !== "CHANGELOG.md") {
      yield path;
    }
  }
}

Deno.test("every jsr:@flowstate/core and jsr:@flowstate/redis range in the repository names the packages' versions", async () => {
  const problems: string[] = [];
  let seen = 0;
  for await (const path of files(ROOT)) {
    const text = await Deno.readTextFile(path);
    // `jsr:@flowstate/core@^0.8`, `@^0.8.0`, and the locks' `jsr:@flowstate/core@0.8` / `@0.8.0`.
    for (const m of text.matchAll(/jsr:@flowstate\/(core|redis)@\^?(\d+\.\d+)(?:\.\d+)?/g)) {
      seen++;
      if (m[2] !== EXPECTED[m[1]]) {
        const line = text.slice(0, m.index).split("\n").length;
        problems.push(
          `${relative(ROOT, path)}:${line}: ${m[0]} (the package is at ${EXPECTED[m[1]]})`,
        );
      }
    }
  }
  assert.ok(seen > 10, `found only ${seen} references: is the walk right?`);
  assert.deepEqual(problems, []);
});
