/**
 * The change feed on the command line: `flowstate changes`, `state history`,
 * `state get --at`, run as subprocesses in a temporary project.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore } from "../mod.ts";
import { cliCommand, cliOk, type ProjectCli, withCliProject } from "./_cli_sandbox.ts";
import { exitOf, hangGuard } from "./_deadline.ts";

const CONFIG = `
stores:
  main: { plugin: sqlite, path: data/main.db, changes: { keep: 30d } }
  plain: { plugin: sqlite, path: data/plain.db }
scopes: { global: main, flow: main, node: main }
`;

const withProject = (fn: (run: ProjectCli, dir: string) => Promise<void>) =>
  withCliProject(CONFIG, fn, {
    prefix: "flowstate-changes-",
    env: { FLOWSTATE_ACTOR: "cli-tester" },
  });
const ok = cliOk;

const lines = (text: string) => text.trim().split("\n").filter((l) => l !== "");

Deno.test("flowstate changes, state history and state get --at read a store's change feed", async () => {
  await withProject(async (run) => {
    await ok(run, "state", "set", "greeting", '"hello"');
    await ok(run, "state", "set", "greeting", '"bonjour"');
    await ok(run, "state", "set", "cfg/other", "1");
    await ok(run, "state", "rm", "greeting");

    const all = lines(await ok(run, "changes", "--json")).map((l) => JSON.parse(l));
    assert.deepEqual(
      all.map((c) => [c.seq, c.op, c.key, c.value]),
      [
        [1, "set", ["greeting"], "hello"],
        [2, "set", ["greeting"], "bonjour"],
        [3, "set", ["cfg", "other"], 1],
        [4, "delete", ["greeting"], undefined],
      ],
    );
    assert.ok(all.every((c) => c.by.actor === "cli-tester"), "FLOWSTATE_ACTOR names who wrote");
    assert.deepEqual(
      lines(await ok(run, "changes", "--since", "2", "--json")).map((l) => JSON.parse(l).seq),
      [3, 4],
    );
    const table = await ok(run, "changes", "--prefix", "cfg");
    assert.match(table, /^#3\t.*\tset\tcfg\/other\tcli-tester\t1$/m);

    const history = lines(await ok(run, "state", "history", "greeting", "--json"))
      .map((l) => JSON.parse(l));
    assert.deepEqual(history.map((c) => c.seq), [1, 2, 4]);
    assert.match(
      await ok(run, "state", "history", "greeting"),
      /#2\t.*\tset\tgreeting\tcli-tester\t"bonjour"/,
    );

    assert.equal(JSON.parse(await ok(run, "state", "get", "greeting", "--at", "#1")), "hello");
    assert.equal(JSON.parse(await ok(run, "state", "get", "greeting", "--at", "#3")), "bonjour");
    const gone = await run("state", "get", "greeting", "--at", "#4");
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /absent .* at #4/);
    const at = all[1].at as number;
    assert.equal(
      JSON.parse(await ok(run, "state", "get", "greeting", "--at", new Date(at).toISOString())),
      "bonjour",
    );
    // --limit N prints N at most; 0 prints nothing (and no "no changes" note).
    for (
      const args of [["changes"], ["state", "history", "greeting"]]
    ) {
      assert.equal(lines(await ok(run, ...args, "--limit", "2", "--json")).length, 2);
      const none = await run(...args, "--limit", "0");
      assert.deepEqual([none.code, none.stdout, none.stderr], [0, "", ""], args.join(" "));
    }
    // How long ago, as restore --at takes it: 0s is now.
    assert.equal(JSON.parse(await ok(run, "state", "get", "cfg/other", "--at", "0s")), 1);
    await ok(run, "backup", "--store", "main", "--out", "x.fsbackup");
    // Only what the help says: no guessing of "Dec 5" (2001) or "5.12.2026" (12 May), no seconds
    // taken for ms, no hexadecimal sequence numbers.
    for (
      const [point, said] of [
        ["Dec 5", /expected #<sequence number>/],
        ["5.12.2026", /expected #<sequence number>/],
        ["1700000000", /ms since the epoch .*for seconds add 000/],
        ["#0x10", /after "#" comes a sequence number/],
      ] as const
    ) {
      for (
        const args of [["state", "get", "greeting"], ["restore", "x.fsbackup", "--into", "plain"]]
      ) {
        const out = await run(...args, "--at", point);
        assert.equal(out.code, 2, `${args[0]} --at ${point}: ${out.stderr}`);
        assert.match(out.stderr, said);
      }
    }
    const bad = await run("state", "get", "greeting", "--at", "yesterday-ish");
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /expected #<sequence number>/);
    // A point the feed does not reach: a usage error saying how far it goes, no --debug hint.
    const beyond: [string, RegExp][] = [
      ["2000-01-01T00:00:00Z", /reaches back to/],
      ["#99", /no change #99 yet/],
    ];
    for (const [point, said] of beyond) {
      const out = await run("state", "get", "greeting", "--at", point);
      assert.equal(out.code, 2, out.stderr);
      assert.match(out.stderr, said);
      assert.doesNotMatch(out.stderr, /--debug/);
    }
  });
});

Deno.test("state history on an encrypted store prints the values, as changes and state get --at do", async () => {
  const config = `
stores:
  main: { plugin: sqlite, path: data/main.db }
  enc:
    plugin: sqlite
    path: data/enc.db
    changes: { keep: 30d }
    encrypt: { key: "\${env.FLOWSTATE_KEY}" }
scopes: { global: main, flow: main, node: main }
`;
  await withCliProject(config, async (run, dir) => {
    const open = { card: "SECRET4242", status: "open" };
    await ok(run, "state", "set", "--store", "enc", "s/1", JSON.stringify(open));
    await ok(run, "state", "set", "--store", "enc", "s/1", '"paid"');
    const json = lines(await ok(run, "state", "history", "--store", "enc", "s/1", "--json"))
      .map((l) => JSON.parse(l));
    assert.deepEqual(json.map((c) => [c.seq, c.op, c.key, c.value]), [
      [1, "set", ["s", "1"], open],
      [2, "set", ["s", "1"], "paid"],
    ]);
    const changes = lines(await ok(run, "changes", "--store", "enc", "--json"))
      .map((l) => JSON.parse(l));
    assert.deepEqual(changes, json, "history gives each change as `changes` does");
    const table = lines(await ok(run, "state", "history", "--store", "enc", "s/1"));
    assert.equal(table.length, 2, table.join("\n"));
    assert.match(table[0], /^#1\t.*\tset\ts\/1\t[^\t]+\t\{"card":"SECRET4242","status":"open"\}$/);
    assert.match(table[1], /^#2\t.*\tset\ts\/1\t[^\t]+\t"paid"$/);
    assert.doesNotMatch(table.join("\n"), /\$sealed/);
    assert.deepEqual(
      JSON.parse(await ok(run, "state", "get", "--store", "enc", "s/1", "--at", "#1")),
      open,
    );
    // The file holds them sealed (the feed's rows too).
    for await (const f of Deno.readDir(join(dir, "data"))) {
      if (!f.name.startsWith("enc.db")) continue;
      const file = new TextDecoder("latin1").decode(await Deno.readFile(join(dir, "data", f.name)));
      assert.ok(!file.includes("SECRET4242"), `${f.name} holds a value in the clear`);
    }
  }, { prefix: "flowstate-changes-enc-", env: { FLOWSTATE_KEY: "33".repeat(32) } });
});

Deno.test("flowstate changes on a store without a feed says which config to add", async () => {
  await withProject(async (run) => {
    await ok(run, "state", "set", "--store", "plain", "a", "1");
    for (
      const args of [
        ["changes", "--store", "plain"],
        ["state", "history", "a", "--store", "plain"],
        ["state", "get", "a", "--at", "#1", "--store", "plain"],
      ]
    ) {
      const r = await run(...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /add `changes: \{ keep: 30d \}` to stores\.plain in flowstate\.yaml/);
    }
  });
});

Deno.test("flowstate changes --follow prints changes another process commits", async () => {
  await withProject(async (run, dir) => {
    await ok(run, "state", "set", "before", "0");
    const child = cliCommand(dir, ["changes", "--follow", "--json"], {
      env: { FLOWSTATE_ACTOR: "cli-tester" },
    }).spawn();
    let text = "";
    const reading = (async () => {
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) text += chunk;
    })();
    // The follower prints nothing before the first change: write until a line arrives (for up
    // to two minutes: a loaded machine starts the follower late, never a failure by itself).
    for (let i = 0; !text.includes("\n") && i < 240; i++) {
      await ok(run, "state", "set", "live", String(i));
      await new Promise((r) => setTimeout(r, 500));
    }
    child.kill("SIGINT");
    await exitOf(child);
    await reading;
    const first = JSON.parse(text.split("\n")[0]);
    assert.deepEqual(first.key, ["live"]);
    assert.ok(first.seq > 1, "only changes after the follower started");
  });
});

Deno.test("output piped into a reader that stops early (| head) ends quietly with exit 0", async () => {
  await withProject(async (_run, dir) => {
    {
      await using store = await openStore({
        plugin: "sqlite",
        path: join(dir, "data", "main.db"),
        changes: { keep: "30d" },
      });
      const tx = store.atomic();
      for (let i = 0; i < 400; i++) tx.set(["big", String(i)], "x".repeat(1000));
      await tx.commit();
    }
    for (const args of [["changes"], ["changes", "--json"], ["state", "ls", "--json"]]) {
      const child = cliCommand(dir, args).spawn();
      using _hang = hangGuard(child);
      const reader = child.stdout.getReader();
      await reader.read(); // the first chunk, then the reader goes away
      await reader.cancel();
      const stderr = await new Response(child.stderr).text();
      const { code } = await exitOf(child);
      assert.equal(code, 0, `${args.join(" ")}: ${stderr}`);
      assert.doesNotMatch(stderr, /error/, args.join(" "));
    }
  });
});

Deno.test("state and change commands given --flow with a typo say so with a suggestion; a known flow with nothing is no error", async () => {
  const config = `${CONFIG}flows: flows/\n`;
  await withCliProject(config, async (run, dir) => {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(
      join(dir, "flows", "counter.flow.yaml"),
      "id: counter\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n",
    );
    // A flow known only from its records (a file outside flows:, run once).
    await Deno.writeTextFile(
      join(dir, "other.flow.yaml"),
      "id: elsewhere\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n",
    );
    await ok(run, "run", "other.flow.yaml");
    const typo = (flow: string, near: string) =>
      new RegExp(`^error: .*Flow "${flow}" has no recorded state \\(did you mean "${near}"\\?\\)`);
    for (
      const args of [
        ["state", "ls", "--flow", "countr"],
        ["state", "ls", "--flow", "countr", "--json"],
        ["state", "get", "k", "--flow", "countr"],
        ["state", "get", "k", "--flow", "countr", "--at", "#1"],
        ["state", "history", "k", "--flow", "countr"],
        ["changes", "--flow", "countr"],
      ]
    ) {
      const result = await run(...args);
      assert.equal(result.code, 1, `${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, typo("countr", "counter"), args.join(" "));
      assert.match(result.stderr, /the known flows are counter, elsewhere/, args.join(" "));
    }
    assert.match(
      (await run("state", "ls", "--flow", "elsewher")).stderr,
      typo("elsewher", "elsewhere"),
    );
    // Known flows with no state: an empty listing, exit 0 (a flow file's, a recorded one's).
    for (const flow of ["counter", "elsewhere"]) {
      const empty = await run("state", "ls", "--flow", flow);
      assert.equal(empty.code, 0, empty.stderr);
      assert.equal(empty.stderr, `No entries in flow scope of "${flow}" (store "main")\n`);
      assert.equal((await run("changes", "--flow", flow)).code, 0);
      assert.equal((await run("state", "history", "k", "--flow", flow)).code, 0);
    }
    const missing = await run("state", "get", "k", "--flow", "counter");
    assert.equal(missing.code, 1);
    assert.equal(
      missing.stderr,
      `error: Key k not found in flow scope of "counter" (store "main")\n`,
    );
    // A listing with entries is no typo, whatever the files say.
    await ok(run, "state", "set", "k", "1", "--flow", "nofile");
    assert.equal((await run("state", "ls", "--flow", "nofile")).code, 0);
  });
});
