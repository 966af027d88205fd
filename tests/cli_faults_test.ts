/**
 * Odd inputs through the CLI, found by a hostile review: flow and config
 * files that are pipes, empty arguments, and stores that cannot be what a
 * store is. Each gets a clear answer and the right exit code.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore } from "../mod.ts";
import { cliCommand, withSandbox } from "./_cli_sandbox.ts";
import { exitOf, outputOf } from "./_deadline.ts";

const FLOW = `id: piped
inputs:
  n: { type: number, default: 1 }
nodes:
  - id: bump
    type: state.increment
    with: { scope: flow, key: count, by: "\${{ inputs.n }}" }
outputs:
  count: "\${{ nodes.bump.output }}"
`;

/** A FIFO at `path` (mkfifo). */
async function mkfifo(path: string): Promise<void> {
  const made = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert.ok(made.success, new TextDecoder().decode(made.stderr));
}

/** Run `flowstate <args>` in `dir` while `text` is written into the FIFO `fifo`. */
async function runFeeding(dir: string, fifo: string, text: string, args: string[]) {
  const child = cliCommand(dir, args).spawn();
  await Deno.writeTextFile(fifo, text); // opens when the CLI opens it for reading
  return await outputOf(child);
}

const SQLITE_CONFIG = "stores:\n  default: { plugin: sqlite, path: state.db }\n";

Deno.test("a flow or config read from a pipe (run <(…), a FIFO) is read whole", async () => {
  await withSandbox(async ({ dir }) => {
    const fifo = join(dir, "flow.pipe");
    await mkfifo(fifo);
    const run = await runFeeding(dir, fifo, FLOW, ["run", "--json", fifo, "--input", "n=5"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).outputs.count, 5);

    // A flow of more than one read's worth (64 KiB) of bytes, through the same pipe.
    const long = FLOW + `# ${"padding ".repeat(20_000)}\n`;
    const again = await runFeeding(dir, fifo, long, ["run", "--json", fifo]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).outputs.count, 6);

    const config = await runFeeding(
      dir,
      fifo,
      `stores:\n  piped: { plugin: memory }\n`,
      ["--config", fifo, "stores", "--json"],
    );
    assert.equal(config.code, 0, config.stderr);
    assert.deepEqual(
      (JSON.parse(config.stdout) as { name: string }[]).map((s) => s.name),
      ["piped"],
    );
  });
});

Deno.test("an empty argument or option value (an unset shell variable) is a usage error naming it, not the working directory", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      SQLITE_CONFIG,
    );
    for (
      const [args, name] of [
        [["--config", "", "stores"], "-c, --config <path>"],
        [["run", ""], "flow"],
        [["validate", ""], "flow"],
        [["runs", "show", ""], "run-id"],
        [["runs", "ls", "--flow", ""], "--flow <id>"],
        [["backup", "--since", ""], "--since <file>"],
        [["migrate", "data", "up", "--dir", ""], "--dir <dir>"],
      ] as const
    ) {
      const r = await run(...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.ok(r.stderr.includes(`'${name}'`), `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /It is empty; give a value/);
    }
    // Nothing ran: no job (migrate, backup) was recorded.
    const runs = await run("runs", "ls", "--json");
    assert.equal(runs.code, 0, runs.stderr);
    assert.deepEqual(JSON.parse(runs.stdout), []);
  });
});

Deno.test("a store path that is a FIFO is refused at its place in the config (exit 2), not waited on forever", async () => {
  for (const [plugin, file] of [["sqlite", "state.db"], ["jsonfile", "state.json"]]) {
    await withSandbox(async ({ dir, run }) => {
      await Deno.writeTextFile(
        join(dir, "flowstate.yaml"),
        `stores:\n  default: { plugin: ${plugin}, path: ${file} }\n`,
      );
      await mkfifo(join(dir, file));
      const r = await run("state", "ls");
      assert.equal(r.code, 2, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(`flowstate.yaml:2:\\d+: .*${file} is a FIFO \\(named pipe\\), not a store file`),
      );
      assert.ok((await Deno.lstat(join(dir, file))).isFifo, "left as it is");
    });
  }
});

Deno.test("runs ls and runs show tell a run whose process was killed (no heartbeat) from a running one", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      SQLITE_CONFIG,
    );
    await Deno.writeTextFile(
      join(dir, "slow.flow.yaml"),
      "id: slow\nnodes:\n  - { id: wait, type: delay, with: { for: 60s } }\n",
    );
    // kill -9 once the run is recorded (its id is printed when it starts).
    const child = cliCommand(dir, ["run", "slow.flow.yaml"]).spawn();
    let seen = "";
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) {
      seen += decoder.decode(chunk);
      if (/\(run [0-9a-z]+\)/.test(seen)) break;
    }
    child.kill("SIGKILL");
    await exitOf(child);
    await child.stdout.cancel();
    const id = /\(run ([0-9a-z]+)\)/.exec(seen)![1];

    // Its process is known dead on this machine: abandoned at once, whatever its heartbeat.
    const fresh = await run("runs", "ls");
    assert.equal(fresh.code, 0, fresh.stderr);
    assert.match(fresh.stdout, new RegExp(`${id}  slow  abandoned `), "its process is gone");
    assert.match(fresh.stderr, /its process is gone from this machine/);

    // A record without its owner (an older version's): a fresh heartbeat reads running.
    const stored = async (change: Record<string, unknown>) => {
      await using store = await openStore({ plugin: "sqlite", path: join(dir, "state.db") });
      const record = await store.get<Record<string, unknown>>(["flowstate", "runs", id]);
      assert.equal(record?.value.status, "running");
      const { owner: _owner, ...value } = record!.value;
      await store.set(["flowstate", "runs", id], { ...value, ...change });
    };
    await stored({});
    const beating = await run("runs", "ls");
    assert.match(beating.stdout, new RegExp(`${id}  slow  running `), "a fresh heartbeat: running");
    assert.doesNotMatch(beating.stderr, /running\?/);

    // Its last heartbeat, a minute ago (as it is a minute after the kill).
    await stored({ heartbeatAt: Date.now() - 60_000 });
    const stale = await run("runs", "ls");
    assert.equal(stale.code, 0, stale.stderr);
    assert.match(stale.stdout, new RegExp(`${id}  slow  running\\? `));
    assert.match(
      stale.stderr,
      /its process has written no heartbeat for over 20 s: it is gone.*`flowstate jobs run gc`/,
    );
    const shown = await run("runs", "show", id);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /status: {3}running \(no heartbeat since .*: its process is gone/);
  });
});

Deno.test("stores repair runs SQLite's integrity check: a file that opens but is damaged is reported (exit 1), not called clean nor moved", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), SQLITE_CONFIG);
    for (let i = 0; i < 3; i++) {
      assert.equal((await run("state", "set", `k/${i}`, `"${"v".repeat(2000)}"`)).code, 0);
    }
    const clean = await run("stores", "repair", "default");
    assert.equal(clean.code, 0, clean.stderr);
    assert.match(clean.stdout, /opens cleanly: nothing to repair/);

    // Page 2 (the pointer map of an auto-vacuum database) overwritten: every command still
    // opens the file, but SQLite's own check fails.
    const path = join(dir, "state.db");
    {
      await using file = await Deno.open(path, { write: true });
      await file.seek(4096, Deno.SeekMode.Start);
      await file.write(new Uint8Array(256).fill(0xde));
    }
    assert.equal((await run("state", "get", "k/0")).code, 0, "it still opens");
    const damaged = await run("stores", "repair", "default");
    assert.equal(damaged.code, 1, damaged.stderr);
    assert.match(
      damaged.stderr,
      /^error: Store "default": .*state\.db opens, but SQLite's integrity check finds it damaged \(.+\)\. What it still reads can be saved: `flowstate backup --store default --out <file>`/,
    );
    const json = await run("stores", "repair", "default", "--json");
    assert.equal(json.code, 1, json.stderr);
    assert.deepEqual(
      { ...JSON.parse(json.stdout), error: undefined },
      { store: "default", path, movedTo: null, reason: "damaged", error: undefined },
    );
    // Left where it is, for the backup the message asks for.
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.startsWith("state.db")),
      ["state.db"],
    );
  });
});

Deno.test("worker exits 1 when its records store cannot open, instead of idling until a signal", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), SQLITE_CONFIG);
    await Deno.writeTextFile(join(dir, "state.db"), "not a database\n".repeat(100));
    const r = await run("worker");
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /the worker cannot start: .*state\.db is not a SQLite database/);
    assert.doesNotMatch(r.stdout, /Received/);
  });
});
