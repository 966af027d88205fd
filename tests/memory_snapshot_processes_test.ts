/**
 * A memory store with a snapshot keeps its entries in its process's memory
 * and writes them all on close: a second process with the same snapshot open
 * would overwrite the first one's writes (or have its own overwritten), after
 * both said they wrote. The store holds an OS lock on `<snapshot>.lock` from
 * open to close: another process waits for it, and fails naming the holder
 * when it does not close in time; no write it acknowledged is lost.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { withCliProject } from "./_cli_sandbox.ts";
import { Watched } from "./_watched.ts";

const MOD = new URL("../mod.ts", import.meta.url).href;
const DENO_JSON = new URL("../deno.json", import.meta.url).pathname;

Deno.test("a memory snapshot open in one process: flowstate state set in another waits, then fails naming it, and loses nothing", async () => {
  await withCliProject(
    "stores:\n  default: { plugin: memory, snapshot: mem.json }\n",
    async (run, dir) => {
      const snapshot = join(dir, "mem.json");
      const release = join(dir, "release");
      // Another program has the store open (a daemon, a script) and wrote a key.
      const script = `
        import { openStore } from ${JSON.stringify(MOD)};
        const store = await openStore({ plugin: "memory", snapshot: ${
        JSON.stringify(snapshot)
      } }, { name: "default" });
        await store.set(["a"], "from the holder");
        console.log("open");
        for (;;) {
          try { await Deno.stat(${JSON.stringify(release)}); break; } catch { /* not yet */ }
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await store.close();
        console.log("closed");
      `;
      await using holder = new Watched(
        new Deno.Command(Deno.execPath(), {
          args: ["eval", "--config", DENO_JSON, "--no-check", script],
          cwd: dir,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
          env: { NO_COLOR: "1" },
        }),
      );
      await holder.until(/open/);

      const meanwhile = await run("state", "set", "b", '"from the CLI"');
      assert.equal(meanwhile.code, 1, meanwhile.stdout + meanwhile.stderr);
      assert.doesNotMatch(meanwhile.stdout, /Set b/);
      assert.match(meanwhile.stderr, /its memory snapshot .*mem\.json is open in process \d+/);
      assert.match(meanwhile.stderr, /one process's at a time/);
      assert.match(meanwhile.stderr, /use a jsonfile or sqlite store/);

      await Deno.writeTextFile(release, "");
      await holder.until(/closed/);
      assert.equal(await holder.code(), 0, holder.stderr);

      const after = await run("state", "set", "c", '"after it closed"');
      assert.equal(after.code, 0, after.stderr);
      const ls = await run("state", "ls");
      assert.equal(ls.code, 0, ls.stderr);
      assert.deepEqual(ls.stdout.trim().split("\n"), [
        'a\t"from the holder"',
        'c\t"after it closed"',
      ]);
    },
  );
});

Deno.test("memory snapshot: flowstate state set in several processes at once keeps every write", async () => {
  await withCliProject(
    "stores:\n  default: { plugin: memory, snapshot: mem.json }\n",
    async (run) => {
      const keys = ["k1", "k2", "k3", "k4"];
      const results = await Promise.all(keys.map((k) => run("state", "set", k, "1")));
      for (const r of results) assert.equal(r.code, 0, r.stderr);
      const ls = await run("state", "ls");
      assert.equal(ls.code, 0, ls.stderr);
      assert.deepEqual(ls.stdout.trim().split("\n"), keys.map((k) => `${k}\t1`));
    },
  );
});
