/**
 * Encryption at rest through the CLI and the config: `encrypt:` with
 * `${env.NAME}` keys, state set/get, the rekey job after a rotation, a wrong
 * key and a bad key, each as a subprocess in a temporary working directory.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "./_cli_sandbox.ts";

const OLD_KEY = "11".repeat(32);
const NEW_KEY = "22".repeat(32);
const MARKER = "CLI-PLAINTEXT-MARKER-41c2";

Deno.test("flowstate with an encrypted store: state set/get, rekey after a rotation, wrong and bad keys", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-cli-encrypt-" });
  try {
    const config = (keys: string) =>
      Deno.writeTextFile(
        join(dir, "flowstate.yaml"),
        `stores:\n  main:\n    plugin: sqlite\n    path: data/main.db\n    encrypt:\n      keys: [${keys}]\n`,
      );
    const run = (env: Record<string, string>, ...args: string[]) => runCli(dir, args, { env });
    await config('"${env.KEY_A}"');
    let r = await run({ KEY_A: OLD_KEY }, "state", "set", "--store", "main", "a/b", `"${MARKER}"`);
    assert.equal(r.code, 0, r.stderr);
    r = await run({ KEY_A: OLD_KEY }, "state", "get", "--store", "main", "a/b");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(MARKER));
    const file = new TextDecoder("latin1").decode(await Deno.readFile(join(dir, "data/main.db")));
    assert.ok(!file.includes(MARKER), "the database file holds the value in the clear");

    // A wrong key: a clear error, exit code non-zero, the file unchanged.
    const before = await Deno.readFile(join(dir, "data/main.db"));
    r = await run({ KEY_A: NEW_KEY }, "state", "get", "--store", "main", "a/b");
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /the key is wrong/);
    assert.deepEqual(await Deno.readFile(join(dir, "data/main.db")), before);

    // A bad key: a config error located in flowstate.yaml, without the key.
    r = await run({ KEY_A: "not-a-key" }, "state", "get", "--store", "main", "a/b");
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /flowstate\.yaml:6.*stores\.main\.encrypt\.keys.*not 32 bytes/);
    assert.ok(!r.stderr.includes("not-a-key"));

    // Rotation: the new key first, rekey, then the new key alone reads it.
    await config('"${env.KEY_A}", "${env.KEY_B}"');
    r = await run({ KEY_A: NEW_KEY, KEY_B: OLD_KEY }, "jobs", "run", "rekey");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /"resealed":1/);
    await config('"${env.KEY_A}"');
    r = await run({ KEY_A: NEW_KEY }, "state", "get", "--store", "main", "a/b");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(MARKER));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("flowstate changes / state get --at on a store whose feed predates encryption: readable before rekey, sealed after, readable after a rotation with the old key removed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-cli-encrypt-feed-" });
  try {
    const config = (keys?: string) =>
      Deno.writeTextFile(
        join(dir, "flowstate.yaml"),
        `stores:\n  main:\n    plugin: sqlite\n    path: data/main.db\n    changes: { keep: 30d }\n` +
          (keys === undefined ? "" : `    encrypt:\n      keys: [${keys}]\n`),
      );
    const env = { KEY_A: OLD_KEY, KEY_B: NEW_KEY };
    const run = (...args: string[]) => runCli(dir, args, { env });
    const inFiles = async () => {
      let n = 0;
      for await (const f of Deno.readDir(join(dir, "data"))) {
        const text = new TextDecoder("latin1").decode(
          await Deno.readFile(join(dir, "data", f.name)),
        );
        n += text.split(MARKER).length - 1;
      }
      return n;
    };
    await config();
    let r = await run("state", "set", "--store", "main", "a/1", `"${MARKER} 1"`);
    assert.equal(r.code, 0, r.stderr);
    r = await run("state", "set", "--store", "main", "a/1", `"${MARKER} 2"`);
    assert.equal(r.code, 0, r.stderr);

    // Encryption on, rekey not run yet: the feed's values are history from before it.
    await config('"${env.KEY_A}"');
    r = await run("changes", "--store", "main");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`#1\\t.*${MARKER} 1.*\\(unsealed: from before encryption`));
    r = await run("changes", "--store", "main", "--json", "--limit", "1");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).unsealed, true);
    r = await run("state", "get", "--store", "main", "a/1", "--at", "#1");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`${MARKER} 1`));

    r = await run("jobs", "run", "rekey");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout + r.stderr, /resealed 2 of the \d+ values in the change feed/);
    assert.equal(await inFiles(), 0, "a value in the clear in the database files after rekey");

    // Rotation as docs/store.md says: keys [new, old], rekey, then the old key removed.
    await config('"${env.KEY_B}", "${env.KEY_A}"');
    r = await run("jobs", "run", "rekey");
    assert.equal(r.code, 0, r.stderr);
    await config('"${env.KEY_B}"');
    r = await run("changes", "--store", "main");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`#1\\t.*${MARKER} 1`));
    assert.doesNotMatch(r.stdout, /unsealed/);
    r = await run("state", "get", "--store", "main", "a/1", "--at", "#1");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`${MARKER} 1`));
    r = await run("state", "history", "--store", "main", "a/1");
    assert.equal(r.code, 0, r.stderr);

    // A rotation whose rekey did not run: the history needs the old key, and the error says so.
    await config('"${env.KEY_A}", "${env.KEY_B}"');
    r = await run("state", "set", "--store", "main", "a/1", '"now under A"');
    assert.equal(r.code, 0, r.stderr);
    await config('"${env.KEY_A}"');
    r = await run("changes", "--store", "main");
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /change #1 of \["a","1"\].*sealed with key id [0-9a-f]{16}, which is not a configured key.*configure that key \(keys: \[current, old\]\)/,
    );
    assert.doesNotMatch(r.stderr, /run the rekey job to seal every value/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
