import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore, StoreCorruptError } from "@flowstate/core";
import { testStore } from "@flowstate/core/testing";

// The plugin is named by its module specifier, as a config file would name it.
const plugin = import.meta.resolve("./mapfile.ts");
const dir = await Deno.makeTempDir({ prefix: "flowstate-mapfile-test-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

// One file per case id: the same id reopens the same file.
testStore(
  "mapfile",
  (ctx) =>
    openStore({
      plugin,
      path: `${ctx.id}.json`,
      indexes: ctx.indexes,
      search: ctx.search,
      changes: ctx.changes,
    }, { clock: ctx.clock, baseDir: dir }),
);

Deno.test("mapfile plugin rejects a damaged file and leaves it in place", async () => {
  const path = join(dir, "damaged.json");
  await Deno.writeTextFile(path, '{"format": "flowstate.mapfile/1", "entries": [[["a"], 1, "v"]]}');
  const err = await openStore({ plugin, path }, { name: "main" }).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof StoreCorruptError, `expected StoreCorruptError, got ${err}`);
  assert.match(err.message, /^Cannot open store "main": .*damaged\.json is not a mapfile store/);
  assert.equal(err.path, path);
  assert.equal(err.movedTo, null);
  assert.ok((await Deno.stat(path)).isFile, "the damaged file is still there");
});

Deno.test("mapfile plugin reports a bad option by name", async () => {
  await assert.rejects(
    () => openStore({ plugin, path: "x.json", pth: "typo" }, { name: "main", baseDir: dir }),
    /unknown option "pth"/,
  );
});
