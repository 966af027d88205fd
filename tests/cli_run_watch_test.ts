/**
 * `flowstate run --watch` as a subprocess: it runs, waits, and runs again
 * when the flow file, a sub-flow, a node module (or a file it imports) it uses
 * changes; an invalid edit is reported and watching goes on; a change during
 * a run cancels it (recorded `cancelled`) and starts the next; SIGTERM stops
 * it with 143 and no run left `running`. Every wait is for a line it prints.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, runCli } from "./_cli_sandbox.ts";
import { Watched } from "./_watched.ts";
import { outputOf } from "./_deadline.ts";

const MOD = JSON.stringify(new URL("../mod.ts", import.meta.url).href);

/** A project folder with `files` written in it, removed afterwards. */
async function withProject(
  files: Record<string, string>,
  fn: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-watch-" });
  try {
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(join(dir, name), text);
    }
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `flowstate run --watch <args>` in `dir`, its output watched. */
function watch(dir: string, ...args: string[]): Watched {
  return watchWith({}, dir, ...args);
}

/** {@linkcode watch} with `env` added to the child's environment. */
function watchWith(env: Record<string, string>, dir: string, ...args: string[]): Watched {
  return new Watched(cliCommand(dir, ["run", "--watch", ...args], { env }));
}

/** Waits for the `n`th "waiting" line of `child`. */
function waiting(child: Watched, n: number): Promise<void> {
  return child.until(
    new RegExp(`(?:watch: waiting for changes to \\d+ files?\\n[^]*){${n}}`),
    "stderr",
  );
}

/**
 * Replaces the file as an editor that saves by renaming a new file over it
 * does: one change, never a half-written file seen between two events.
 */
async function replace(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(`${path}.tmp`, text);
  await Deno.rename(`${path}.tmp`, path);
}

/** The runs recorded in `dir`'s home. */
async function runs(dir: string): Promise<{ id: string; status: string }[]> {
  const ls = await runCli(dir, ["runs", "ls", "--json"]);
  assert.equal(ls.code, 0, ls.stderr);
  return JSON.parse(ls.stdout);
}

const flow = (message: string) =>
  `id: watched
nodes:
  - { id: say, type: log, with: { message: "${message}" } }
`;

Deno.test("cli: run --watch runs again on an edit, reports an invalid one and keeps watching; SIGTERM exits 143", async () => {
  await withProject({ "flow.yaml": flow("hello one") }, async (dir) => {
    await using child = watch(dir, "flow.yaml");
    await waiting(child, 1);
    assert.match(child.stderr, /^\[say\] hello one$/m);
    // The flow file and the config file (flowstate.yaml, not there: watched for its creation).
    assert.match(child.stderr, /^watch: waiting for changes to 2 files$/m);
    assert.match(child.stdout, /^status: +succeeded$/m);

    await replace(join(dir, "flow.yaml"), flow("hello two"));
    await waiting(child, 2);
    assert.match(
      child.stderr,
      /^watch: flow\.yaml changed, running again \(Ctrl-C to stop\)\nRunning flow "watched" \(run \w+\)\n\[say\] hello two$/m,
    );

    // Invalid: the error with its place, as run prints it, and the process keeps watching.
    await replace(
      join(dir, "flow.yaml"),
      "id: watched\nnodes:\n  - { id: say, type: nope }\n",
    );
    await waiting(child, 3);
    assert.match(child.stderr, /^error: flow\.yaml:3:\d+: nodes\[0\]\.type: /m);

    // A fix runs it again.
    await replace(join(dir, "flow.yaml"), flow("hello three"));
    await waiting(child, 4);
    assert.match(child.stderr, /^\[say\] hello three$/m);

    child.kill("SIGTERM");
    assert.equal(await child.code(), 143, child.stderr);
    const recorded = await runs(dir);
    assert.equal(recorded.length, 3);
    assert.deepEqual(recorded.map((r) => r.status), ["succeeded", "succeeded", "succeeded"]);
  });
});

const NODE = `import { defineNode } from ${MOD};
import { z } from "zod";
import { word } from "./lib.ts";
export default defineNode({
  optionsSchema: z.strictObject({}),
  run(ctx) {
    ctx.log("module says " + word);
    return word;
  },
});
`;

Deno.test("cli: run --watch runs again when a node module's import or a sub-flow changes, not for other files", async () => {
  await withProject({
    "main.flow.yaml": `id: main
nodes:
  - { id: custom, type: ./node.ts }
  - { id: sub, type: flow, with: { flow: ./sub.flow.yaml } }
`,
    "sub.flow.yaml": flow("sub one").replace("id: watched", "id: sub"),
    "node.ts": NODE,
    "lib.ts": `export const word = "alpha";\n`,
    "other.txt": "not used\n",
  }, async (dir) => {
    await using child = watch(dir, "main.flow.yaml");
    await waiting(child, 1);
    assert.match(child.stderr, /^\[custom\] module says alpha$/m);
    assert.match(child.stderr, /^\[sub\/say\] sub one$/m);
    // main, sub, node.ts, lib.ts and flowstate.yaml.
    assert.match(child.stderr, /^watch: waiting for changes to 5 files$/m);

    // A file it does not use: nothing; then the module's import: run again.
    await Deno.writeTextFile(join(dir, "other.txt"), "still not used\n");
    await replace(join(dir, "lib.ts"), `export const word = "beta";\n`);
    await waiting(child, 2);
    assert.match(child.stderr, /^watch: lib\.ts changed, running again/m);
    assert.match(child.stderr, /^\[custom\] module says beta$/m);
    assert.doesNotMatch(child.stderr, /other\.txt/);

    await replace(join(dir, "sub.flow.yaml"), flow("sub two").replace("id: watched", "id: sub"));
    await waiting(child, 3);
    assert.match(child.stderr, /^watch: sub\.flow\.yaml changed, running again/m);
    assert.match(child.stderr, /^\[sub\/say\] sub two$/m);
    assert.equal((child.stderr.match(/running again/g) ?? []).length, 2, child.stderr);

    child.kill("SIGINT");
    assert.equal(await child.code(), 130, child.stderr);
  });
});

/** A node that logs "started" and then waits until its run is cancelled. */
const HANG = `import { defineNode } from ${MOD};
import { z } from "zod";
export default defineNode({
  optionsSchema: z.strictObject({ n: z.number() }),
  run(ctx, { n }) {
    ctx.log("started " + n);
    return new Promise((_, reject) => {
      ctx.signal.addEventListener("abort", () => reject(new Error("stopped")), { once: true });
    });
  },
});
`;

const hanging = (n: number) =>
  `id: hanging
nodes:
  - { id: hang, type: ./hang.ts, with: { n: ${n} } }
`;

Deno.test("cli: run --watch cancels a run in progress on a change, and SIGTERM leaves no run running", async () => {
  await withProject({ "flow.yaml": hanging(1), "hang.ts": HANG }, async (dir) => {
    await using child = watch(dir, "flow.yaml");
    await child.until(/^\[hang\] started 1$/m, "stderr");
    // Changed mid-run: that run is cancelled (its end recorded), the next one starts.
    await replace(join(dir, "flow.yaml"), hanging(2));
    await child.until(/^\[hang\] started 2$/m, "stderr");
    assert.match(child.stderr, /^watch: flow\.yaml changed, running again/m);
    assert.match(child.stdout, /^status: +cancelled$/m);

    child.kill("SIGTERM");
    assert.equal(await child.code(), 143, child.stderr);
    const recorded = await runs(dir);
    assert.equal(recorded.length, 2);
    assert.deepEqual(recorded.map((r) => r.status), ["cancelled", "cancelled"]);
  });
});

Deno.test("cli: run --watch sees an edit of a node module made during the first run (it cancels that run and runs again)", async () => {
  await withProject({ "flow.yaml": hanging(1), "hang.ts": HANG }, async (dir) => {
    await using child = watch(dir, "flow.yaml");
    // The first run loaded hang.ts and hangs in it: an edit now is one the run did not see.
    await child.until(/^\[hang\] started 1$/m, "stderr");
    await replace(join(dir, "hang.ts"), HANG.replace('"started "', '"edited "'));
    await child.until(/^\[hang\] edited 1$/m, "stderr");
    assert.match(child.stderr, /^watch: hang\.ts changed, running again/m);
    assert.match(child.stdout, /^status: +cancelled$/m);
    child.kill("SIGTERM");
    assert.equal(await child.code(), 143, child.stderr);
  });
});

Deno.test("cli: run --watch --json prints one record per run; --inputs - is refused", async () => {
  await withProject({ "flow.yaml": flow("json one"), "in.json": "{}" }, async (dir) => {
    await using child = watch(dir, "flow.yaml", "--json", "--inputs", "in.json");
    await waiting(child, 1);
    // flow.yaml, flowstate.yaml, in.json
    assert.match(child.stderr, /^watch: waiting for changes to 3 files$/m);
    await replace(join(dir, "in.json"), "{ }\n");
    await waiting(child, 2);
    assert.match(child.stderr, /^watch: in\.json changed, running again/m);
    child.kill("SIGTERM");
    assert.equal(await child.code(), 143, child.stderr);
    const records = child.stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(records.map((r) => r.status), ["succeeded", "succeeded"]);

    const stdin = await runCli(dir, ["run", "--watch", "flow.yaml", "--inputs", "-"]);
    assert.equal(stdin.code, 2, stdin.stderr);
    assert.match(stdin.stderr, /^error: --watch cannot read --inputs from stdin/);
  });
});

/**
 * A symlinked flow file's target edited, and a sub-flow's folder removed and
 * made again, each run the flow again (`env` for the child: the watch mode).
 */
async function symlinkAndFolder(env: Record<string, string>): Promise<void> {
  await withProject({ "main.flow.yaml": "" }, async (dir) => {
    // The flow is a link to a file elsewhere (a dotfiles repository); edits go to the target.
    const elsewhere = await Deno.makeTempDir({ prefix: "flowstate-watch-target-" });
    try {
      const target = join(elsewhere, "real.flow.yaml");
      await Deno.writeTextFile(target, flow("linked one"));
      await Deno.symlink(target, join(dir, "link.flow.yaml"));
      await Deno.mkdir(join(dir, "sub"));
      await Deno.writeTextFile(join(dir, "sub", "s.flow.yaml"), flow("sub one"));
      await Deno.writeTextFile(
        join(dir, "main.flow.yaml"),
        "id: main\nnodes:\n  - { id: s, type: flow, with: { flow: ./sub/s.flow.yaml } }\n",
      );

      await using linked = watchWith(env, dir, "link.flow.yaml");
      await waiting(linked, 1);
      assert.match(linked.stderr, /^\[say\] linked one$/m);
      if (env.FLOWSTATE_WATCH === "poll") {
        assert.match(
          linked.stderr,
          /^watch: comparing the files' status every 100 ms \(no file events\)$/m,
        );
      }
      await replace(target, flow("linked two"));
      await waiting(linked, 2);
      assert.match(linked.stderr, /^\[say\] linked two$/m);
      linked.kill("SIGTERM");
      assert.equal(await linked.code(), 143, linked.stderr);

      await using main = watchWith(env, dir, "main.flow.yaml");
      await waiting(main, 1);
      assert.match(main.stderr, /^\[watched\/say\] sub one$/m);
      // Removed (a checkout of another branch): its run says the sub-flow is missing.
      await Deno.remove(join(dir, "sub"), { recursive: true });
      await waiting(main, 2);
      // Made again: the new folder is watched, not the old one's dead watch.
      await Deno.mkdir(join(dir, "sub"));
      await Deno.writeTextFile(join(dir, "sub", "s.flow.yaml"), flow("sub two"));
      await waiting(main, 3);
      assert.match(main.stderr, /^\[watched\/say\] sub two$/m);
      await replace(join(dir, "sub", "s.flow.yaml"), flow("sub three"));
      await waiting(main, 4);
      assert.match(main.stderr, /^\[watched\/say\] sub three$/m);
      main.kill("SIGTERM");
      assert.equal(await main.code(), 143, main.stderr);
    } finally {
      await Deno.remove(elsewhere, { recursive: true });
    }
  });
}

Deno.test("cli: run --watch follows a symlinked flow file to its target, and a folder removed and made again", async () => {
  await symlinkAndFolder({});
});

Deno.test("cli: run --watch with FLOWSTATE_WATCH=poll (no file events) sees the same changes by comparing the files' status", async () => {
  // What a file system that sends no events (a network share) gets, and what
  // catches a change whose event Deno dropped (at most 16 unread per watcher).
  await symlinkAndFolder({ FLOWSTATE_WATCH: "poll", FLOWSTATE_WATCH_POLL_MS: "100" });
});

Deno.test("cli: run --watch refuses a bad FLOWSTATE_WATCH or FLOWSTATE_WATCH_POLL_MS with exit 2 before running", async () => {
  await withProject({ "flow.yaml": flow("never") }, async (dir) => {
    for (
      const [env, problem] of [
        [
          { FLOWSTATE_WATCH: "inotify" },
          /FLOWSTATE_WATCH="inotify" is not a watch mode: write FLOWSTATE_WATCH=poll/,
        ],
        [
          { FLOWSTATE_WATCH_POLL_MS: "1s" },
          /FLOWSTATE_WATCH_POLL_MS="1s" is not a period from 50 to 3600000 milliseconds/,
        ],
        [{ FLOWSTATE_WATCH_POLL_MS: "10" }, /FLOWSTATE_WATCH_POLL_MS="10" is not a period/],
      ] as const
    ) {
      const out = await outputOf(cliCommand(dir, ["run", "--watch", "flow.yaml"], { env }));
      const stderr = out.stderr;
      assert.equal(out.code, 2, stderr);
      assert.match(stderr, problem);
      assert.doesNotMatch(stderr, /\[say\] never/);
    }
    assert.deepEqual(await runs(dir), []);
  });
});
