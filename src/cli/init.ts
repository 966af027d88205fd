/**
 * `flowstate init [dir]`: a starter project in `dir` (default: the working
 * directory) that uses Flowstate as a package: `deno.json` (the import of
 * `@flowstate/core`, the tasks `run`, `flowstate` (both `--frozen`: after the project's first
 * `deno install`), `test`, `check`, the
 * unstable `worker-options` custom nodes need, and, when init runs from a
 * checkout rather than jsr.io, `links` to that checkout),
 * `flowstate.yaml` (one SQLite store), `flows/hello.flow.yaml`, a custom node
 * in `nodes/`, a test of the flow on the memory store, and `.gitignore`.
 *
 * It never overwrites a file: each file is created only if it does not exist
 * (atomically, `createNew`), and one that exists is reported as kept. A kept
 * `deno.json` only gets the starter's missing `unstable` features added (when
 * it is plain JSON); what else it lacks is printed, to merge by hand.
 *
 * Exit codes: 0 every file written or kept, 1 a file could not be written.
 *
 * @module
 */
import { dirname, join, relative, resolve } from "node:path";
import { fromFileUrl } from "../_path.ts";
import { parseJsonc } from "../_jsonc.ts";
import denoJson from "../../deno.json" with { type: "json" };
import { messageOf } from "../errors.ts";
import { UsageError } from "./input.ts";

/**
 * The flags of the `run` and `flowstate` tasks: read files, write only the
 * home (`.flowstate`, which holds the store and backups), env, network, the
 * host name (it names a daemon in its leases), no --allow-run (nothing in
 * Flowstate spawns processes), and `--unstable-worker-options` (custom nodes
 * run in Workers with only the permissions their flow declares), and
 * `--v8-flags=--no-lazy` (V8's code cache then keeps every function, so a
 * repeated cold run compiles nothing; both tasks carry it: V8 drops a cache
 * made with other flags), and `--no-prompt` (a node's `Deno.permissions.request()`, or
 * anything else missing a permission, fails at once instead of asking on the operator's terminal).
 */
const RUN_PERMISSIONS =
  "--v8-flags=--no-lazy --unstable-worker-options --allow-read --allow-write=.flowstate --allow-env --allow-net --allow-sys=hostname --no-prompt";

/**
 * The `run` and `flowstate` tasks also run with `--frozen`: the project's deno.lock (written by
 * its first `deno install`) is never rewritten by the runner, and a package not in it fails to
 * import. Without it, a custom node with no permissions at all could `import("npm:" + name)`:
 * Deno would download the package and add it to the lock (denoland/deno#29503).
 */
const FROZEN = "--frozen";

/**
 * `jsr:@flowstate/core@^<major>.<minor>` of a version (default: this one).
 *
 * @example
 * ```ts
 * import { coreSpecifier } from "./init.ts";
 * import assert from "node:assert/strict";
 * assert.equal(coreSpecifier("0.3.1"), "jsr:@flowstate/core@^0.3");
 * ```
 */
export function coreSpecifier(version: string = denoJson.version): string {
  const [major, minor] = version.split(".");
  return `jsr:${denoJson.name}@^${major}.${minor}`;
}

/**
 * The `unstable` features of a Flowstate project's deno.json: this repository's own, and
 * `worker-options`, so that every `deno run`/`deno test` of the project (a script using the
 * library too) may start custom nodes' Workers with their permissions; without it Deno stops
 * the process (exit 70) at the first custom node.
 */
const UNSTABLE: readonly string[] = [
  ...new Set([...(denoJson as { unstable?: string[] }).unstable ?? [], "worker-options"]),
];

/**
 * The root of the checkout this `init` runs from, when it runs from files (a clone, or a
 * package linked with `links`), not from jsr.io: the new project links `@flowstate/core` to it.
 *
 * @example
 * ```ts
 * import { checkoutRoot } from "./init.ts";
 * import assert from "node:assert/strict";
 * assert.equal(checkoutRoot("file:///home/me/flowstate/src/cli/init.ts"), "/home/me/flowstate");
 * assert.equal(checkoutRoot("https://jsr.io/@flowstate/core/0.5.0/src/cli/init.ts"), undefined);
 * ```
 */
export function checkoutRoot(moduleUrl: string = import.meta.url): string | undefined {
  if (!moduleUrl.startsWith("file:")) return undefined;
  return fromFileUrl(new URL("../../", moduleUrl)).replace(/[\\/]+$/, "");
}

/** The `npm:zod@^x.y.z` the starter node's options schema uses (this package's own zod). */
function zodSpecifier(): string {
  const pinned = (denoJson.imports as Record<string, string>).zod; // "npm:zod@4.6.7"
  return pinned.replace(/^npm:zod@\^?/, "npm:zod@^");
}

/** The starter project's deno.json, as an object (also compared with a kept one). */
interface StarterDenoJson {
  links?: string[];
  imports: Record<string, string>;
  tasks: Record<string, string>;
  unstable: string[];
}

function starterDenoJson(): StarterDenoJson {
  const cli = `${coreSpecifier()}/cli`;
  const root = checkoutRoot();
  return {
    ...(root === undefined ? {} : { links: [root] }),
    imports: { [denoJson.name]: coreSpecifier(), zod: zodSpecifier() },
    tasks: {
      run: `deno run ${FROZEN} ${RUN_PERMISSIONS} ${cli} run`,
      flowstate: `deno run ${FROZEN} ${RUN_PERMISSIONS} ${cli}`,
      // A node module loads in its Worker by an import Deno does not type-check: the project's
      // modules (nodes/, tests/, and jobs/, plugins/ or scripts a user adds) are checked first, then
      // the tests run unchecked (else `deno test` type-checks each node Worker's generated entry at
      // run time, printing its whole data: URL, once per project).
      test:
        "deno check && deno test --no-check --unstable-worker-options --allow-read --allow-write --allow-env",
      // `deno run` (so `flowstate run` and `validate`) never type-checks a node, job or plugin module.
      check: "deno check",
    },
    // worker-options: custom nodes' Workers (see UNSTABLE). no-legacy-abort: `flowstate serve`'s
    // `?wait=true` stops waiting when its client goes away (request.signal); without it,
    // Deno.serve warns about request.signal's legacy abort on every response.
    unstable: [...UNSTABLE],
  };
}

const FLOWSTATE_YAML = `# Flowstate configuration: https://jsr.io/@flowstate/core
# One SQLite store holds state, run records and flow versions.
stores:
  default:
    plugin: sqlite
    path: .flowstate/state.db

# Flow files (or folders of *.flow.yaml) the daemon reads; flows with a
# schedule: run on it under \`deno task flowstate daemon\`.
flows: flows/
`;

const HELLO_FLOW = `# deno task run flows/hello.flow.yaml --input name=you
id: hello
description: greets someone and counts the greetings (the count is kept between runs)
# To run it on a schedule, uncomment the next line and start: deno task flowstate daemon
# schedule: "*/5 * * * *"
inputs:
  name: { type: string, default: world }
nodes:
  - id: count
    type: state.increment
    with: { scope: flow, key: greetings }
  - id: greet
    type: ../nodes/greet.ts
    needs: [count]
    with: { name: "\${{ inputs.name }}", count: "\${{ nodes.count.output }}" }
outputs:
  greeting: "\${{ nodes.greet.output }}"
  count: "\${{ nodes.count.output }}"
`;

const GREET_NODE = `/**
 * A custom node: flows name it by path (type: ../nodes/greet.ts).
 * Its options are checked against optionsSchema before it runs.
 */
import { defineNode } from "@flowstate/core";
import { z } from "zod";

export default defineNode({
  description: "greets someone and says how many greetings there have been",
  optionsSchema: z.strictObject({ name: z.string(), count: z.number().int() }),
  run(ctx, { name, count }) {
    const greeting = \`Hello, \${name}! (greeting number \${count})\`;
    ctx.log(greeting);
    return greeting;
  },
});
`;

const HELLO_TEST = `import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { openRuntime } from "@flowstate/core";

const flow = fileURLToPath(new URL("../flows/hello.flow.yaml", import.meta.url));

Deno.test("hello counts its greetings", async () => {
  // A memory store: the test leaves nothing behind.
  await using rt = await openRuntime({ config: { stores: { default: { plugin: "memory" } } } });
  const first = await rt.runFlow(flow, { input: { name: "test" } });
  assert.equal(first.status, "succeeded");
  assert.equal(first.outputs?.greeting, "Hello, test! (greeting number 1)");
  const second = await rt.runFlow(flow);
  assert.equal(second.outputs?.greeting, "Hello, world! (greeting number 2)");
});

// A node that calls the outside world (an http or exec node) is replaced in a test by its id,
// so the test needs no network: its with: is still checked, and the record says mocked: true.
//   const run = await rt.runFlow(flow, { mocks: { notify: { status: 200, body: "ok" } } });
`;

const GITIGNORE = `# Flowstate's state, records and temporary files
.flowstate/
`;

/** The starter files, by path relative to the project directory, in the order written. */
function starterFiles(): [path: string, text: string][] {
  return [
    ["deno.json", JSON.stringify(starterDenoJson(), null, 2) + "\n"],
    ["flowstate.yaml", FLOWSTATE_YAML],
    ["flows/hello.flow.yaml", HELLO_FLOW],
    ["nodes/greet.ts", GREET_NODE],
    ["tests/hello_test.ts", HELLO_TEST],
    [".gitignore", GITIGNORE],
  ];
}

/** What `init` did with each file. */
export interface InitResult {
  /** The project directory (absolute). */
  dir: string;
  /** Files created, relative to `dir`. */
  written: string[];
  /** Files that existed and were left as they were. */
  kept: string[];
  /** Files that could not be written, with why. */
  failed: { path: string; error: string }[];
  /**
   * A kept deno.json's missing `unstable` features that were added to it (its own list kept),
   * so that custom nodes run under its tasks and scripts: `["worker-options"]`, or empty.
   */
  addedUnstable: string[];
  /**
   * What a kept deno.json lacks of the starter's (`links`, `imports`, `tasks` by name; `unstable`
   * when it could not be added), to merge by hand; `null` when it lacks nothing.
   */
  toMerge: Partial<StarterDenoJson> | null;
  /**
   * The kept deno.json's tasks that lack flags the starter's task of that name has (an older
   * init's `run` without `--no-prompt`): the starter's line is in `toMerge.tasks`.
   */
  tasksLackingFlags: { task: string; flags: string[] }[];
  /**
   * Where a kept deno.json names a `jsr:@flowstate/core` version range that leaves out this
   * Flowstate's version (an older init's `^0.5`): `where` is `imports["@flowstate/core"]` or
   * `tasks.<name>`, `specifier` what it names. The starter's lines are in `toMerge`.
   */
  olderSpecifiers: { where: string; specifier: string }[];
}

/**
 * Write the starter files into `dir`, never overwriting one.
 *
 * @example
 * ```ts
 * import { initProject } from "./init.ts";
 * import assert from "node:assert/strict";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/flowstate.yaml`, "stores: {}\n");
 * const result = await initProject(dir);
 * assert.ok(result.written.includes("flows/hello.flow.yaml"));
 * assert.deepEqual(result.kept, ["flowstate.yaml"]);
 * assert.equal(await Deno.readTextFile(`${dir}/flowstate.yaml`), "stores: {}\n");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function initProject(dir: string): Promise<InitResult> {
  const result: InitResult = {
    dir: resolve(dir),
    written: [],
    kept: [],
    failed: [],
    addedUnstable: [],
    toMerge: null,
    tasksLackingFlags: [],
    olderSpecifiers: [],
  };
  await checkFolder(dir, result.dir);
  for (const [path, text] of starterFiles()) {
    const file = join(result.dir, path);
    try {
      await Deno.mkdir(join(file, ".."), { recursive: true });
      await Deno.writeTextFile(file, text, { createNew: true });
      result.written.push(path);
    } catch (err) {
      if (err instanceof Deno.errors.AlreadyExists) result.kept.push(path);
      else result.failed.push({ path, error: writeProblem(err) });
    }
  }
  if (result.kept.includes("deno.json")) {
    try {
      await mergeKeptDenoJson(join(result.dir, "deno.json"), result);
    } catch (err) {
      result.failed.push({ path: "deno.json", error: writeProblem(err) });
    }
  }
  return result;
}

/**
 * The flags of the `starter` task line that `kept` lacks, by name (`--allow-write` covers
 * `--allow-write=.flowstate`; `-A` covers every `--allow-*`).
 */
function flagsLacking(kept: string, starter: string): string[] {
  const names = (line: string) =>
    new Set(line.split(/\s+/).filter((t) => t.startsWith("-")).map((t) => t.split("=")[0]));
  const have = names(kept);
  const all = have.has("-A") || have.has("--allow-all");
  return [...names(starter)].filter((flag) =>
    !have.has(flag) && !(all && flag.startsWith("--allow-"))
  );
}

/**
 * The `jsr:@flowstate/core@<range>` named in `text` when that range leaves out this Flowstate's
 * version (`^0.5` for 0.6.0), else `undefined`. Ranges this cannot read (`*`, `>=0.5 <2`, a tag)
 * are not judged.
 */
function olderSpecifier(text: string, version: string = denoJson.version): string | undefined {
  const found = text.match(/jsr:@flowstate\/core@([^\s/"']+)/);
  if (found === null) return undefined;
  const range = found[1].match(/^([~^]?)(\d+)(?:\.(\d+))?(?:\.(\d+))?$/);
  if (range === null) return undefined;
  const [op, a, b, c] = [range[1], Number(range[2]), range[3], range[4]];
  const [x, y, z] = version.split(/[.-]/).map(Number);
  const cmp = (p: number[], q: number[]) => p[0] - q[0] || p[1] - q[1] || p[2] - q[2];
  const at = [x, y, z];
  // The first version past the range: ^1.2 → 2.0.0, ^0.5 → 0.6.0, ~0.5.1 → 0.6.0, 0.5 → 0.6.0,
  // 0.5.1 (exact) → 0.5.2.
  const past = op === "^"
    ? (a > 0 || b === undefined ? [a + 1, 0, 0] : [0, Number(b) + 1, 0])
    : op === "~" || c === undefined
    ? (b === undefined ? [a + 1, 0, 0] : [a, Number(b) + 1, 0])
    : [a, Number(b), Number(c) + 1];
  return cmp(at, past) >= 0 ? `jsr:@flowstate/core@${found[1]}` : undefined;
}

/**
 * A kept deno.json: add the starter's missing `unstable` features to it when it is plain JSON
 * (rewritten with its other keys as they were), and note what else it lacks in `toMerge`.
 */
async function mergeKeptDenoJson(file: string, result: InitResult): Promise<void> {
  const starter = starterDenoJson();
  const text = await Deno.readTextFile(file);
  let json: Record<string, unknown> | undefined;
  try {
    const parsed = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) json = parsed;
  } catch {
    json = undefined; // deno.jsonc-style comments: not rewritten, everything is said instead
  }
  const kept = json ?? (parseJsonc(text) as Record<string, unknown> | undefined) ?? {};
  const own = (key: string): Record<string, unknown> => {
    const value = kept[key];
    return typeof value === "object" && value !== null ? value as Record<string, unknown> : {};
  };
  const toMerge: Partial<StarterDenoJson> = {};
  const links = Array.isArray(kept.links) ? kept.links : [];
  const missingLinks = (starter.links ?? []).filter((l) => !links.includes(l));
  if (missingLinks.length > 0) toMerge.links = missingLinks;
  for (const key of ["imports", "tasks"] as const) {
    const missing = Object.entries(starter[key]).filter(([name]) => !(name in own(key)));
    if (missing.length > 0) toMerge[key] = Object.fromEntries(missing);
  }
  const keptImport = own("imports")[denoJson.name];
  const older = typeof keptImport === "string" ? olderSpecifier(keptImport) : undefined;
  if (older !== undefined) {
    result.olderSpecifiers.push({ where: `imports["${denoJson.name}"]`, specifier: older });
    toMerge.imports = { ...toMerge.imports, [denoJson.name]: starter.imports[denoJson.name] };
  }
  for (const [task, line] of Object.entries(starter.tasks)) {
    const keptLine = own("tasks")[task];
    // Only a task that runs Flowstate (an older init's): the user's own tasks are theirs.
    if (typeof keptLine !== "string" || !/@flowstate\/core|\bcli\.ts\b/.test(keptLine)) continue;
    const flags = flagsLacking(keptLine, line);
    const olderHere = olderSpecifier(keptLine);
    if (olderHere !== undefined) {
      result.olderSpecifiers.push({ where: `tasks.${task}`, specifier: olderHere });
    }
    if (flags.length === 0 && olderHere === undefined) continue;
    if (flags.length > 0) result.tasksLackingFlags.push({ task, flags });
    toMerge.tasks = { ...toMerge.tasks, [task]: line };
  }
  const unstable = Array.isArray(kept.unstable) ? kept.unstable : [];
  const missingUnstable = starter.unstable.filter((u) => !unstable.includes(u));
  if (missingUnstable.length > 0 && json !== undefined) {
    json.unstable = [...unstable, ...missingUnstable];
    const indent = text.match(/^[{[]\r?\n([ \t]+)/)?.[1] ?? 2;
    const tmp = `${file}.init-${crypto.randomUUID()}`;
    await Deno.writeTextFile(tmp, JSON.stringify(json, null, indent) + "\n");
    await Deno.rename(tmp, file);
    result.addedUnstable = missingUnstable;
  } else if (missingUnstable.length > 0) toMerge.unstable = missingUnstable;
  result.toMerge = Object.keys(toMerge).length === 0 ? null : toMerge;
}

/**
 * What a failed write says in words, without the system call and path Deno's
 * message ends with (`(os error 2): mkdir '/proc/x'`): the path is said by
 * the line it goes on.
 */
function writeProblem(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  if (code === "EPERM") return "the file system does not allow it (operation not permitted)";
  if (err instanceof Deno.errors.PermissionDenied) {
    return "permission denied (the folder's owner or mode: chmod u+w, or run as a user who may write it)";
  }
  if (err instanceof Error && err.name === "NotCapable") {
    // Deno names the flag: --allow-write, or --allow-all for /proc, /dev and /sys.
    const flag = err.message.match(/run again with the (--[\w-]+) flag/)?.[1] ?? "--allow-write";
    return `this process may not write there; Deno allows it with ${flag}`;
  }
  // mkdir in a folder that lists only what it makes itself (/proc, /sys).
  if (err instanceof Deno.errors.NotFound) {
    return "the file system does not let a folder be made there";
  }
  if (code === "EROFS") return "the file system is read-only";
  if (code === "ENOSPC") return "the disk is full";
  return messageOf(err).replace(/ \(os error \d+\)(: \w+ '.*')?$/, "");
}

/**
 * Throw a {@linkcode UsageError} when `dir` (or the nearest part of its path
 * that exists) is a file: nothing could be written in it.
 */
async function checkFolder(given: string, dir: string): Promise<void> {
  for (let at = dir;; at = dirname(at)) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(at);
    } catch (err) {
      const missing = err instanceof Deno.errors.NotFound ||
        err instanceof Deno.errors.NotADirectory;
      if (missing && dirname(at) !== at) continue;
      return; // Whatever else it is, writing the files says so, file by file.
    }
    if (info.isDirectory) return;
    const shown = at === dir ? given : relative(Deno.cwd(), at) || at;
    throw new UsageError(
      `${shown} is a file, not a folder: give init a folder (new or existing)`,
    );
  }
}

/** `init [dir] [--json]`: exit 0 when every file was written or kept, 1 when one could not be written. */
export async function initCommand(
  dir: string | undefined,
  options: { json?: boolean },
): Promise<number> {
  if (dir !== undefined && dir.trim() === "") {
    // `init "$NAME"` with NAME unset: the working directory is not what was meant.
    throw new UsageError(
      `init was given an empty folder name (${
        JSON.stringify(dir)
      }): name the project's folder (init my-flows), or leave it out for the working directory`,
    );
  }
  const result = await initProject(dir ?? ".");
  const exitCode = result.failed.length > 0 ? 1 : 0;
  if (options.json) {
    console.log(JSON.stringify(result, null, 2));
    return exitCode;
  }
  // As given when it leaves the working directory (`../../proc/x` names nothing a person typed).
  const near = relative(Deno.cwd(), result.dir) || ".";
  const shownDir = near.startsWith("..") && dir !== undefined ? dir : near;
  if (result.written.length === 0 && result.kept.length === 0 && result.failed.length > 0) {
    // Every file failed, most likely for one reason (a read-only folder): say it once.
    console.error(
      `error: cannot write the project into ${shownDir}, nothing was written: ${
        result.failed[0].error
      }; give init a folder this process may write`,
    );
    return exitCode;
  }
  const lines: string[] = [];
  if (result.written.length > 0) {
    lines.push(`Created in ${shownDir}:`, ...result.written.map((p) => `  ${p}`));
  }
  if (result.kept.length > 0) {
    lines.push(
      `Kept (already there, not changed):`,
      ...result.kept.map((p) => `  ${p}`),
    );
  }
  if (result.written.includes("deno.json") && checkoutRoot() !== undefined) {
    lines.push(
      "",
      `deno.json links @flowstate/core to the checkout init ran from (links: ["${checkoutRoot()}"]),`,
      "so it resolves offline, without jsr.io; remove links to use the published package.",
    );
  }
  if (result.addedUnstable.length > 0) {
    lines.push(
      "",
      `deno.json was kept; added to its unstable list: ${
        result.addedUnstable.join(", ")
      } (custom nodes run in Workers that need it)`,
    );
  }
  for (const { task, flags } of result.tasksLackingFlags) {
    lines.push(
      "",
      `deno.json was kept: its task "${task}" lacks ${
        flags.join(" ")
      } (the starter's ${task} task, below, has ${flags.length === 1 ? "it" : "them"}; merge ${
        flags.length === 1 ? "it" : "them"
      } into yours${
        flags.includes(FROZEN) ? `; ${FROZEN} needs the project's deno.lock: deno install` : ""
      })`,
    );
  }
  if (result.olderSpecifiers.length > 0) {
    const names = [...new Set(result.olderSpecifiers.map((o) => o.specifier))].join(", ");
    lines.push(
      "",
      `deno.json was kept: it names ${names} (${
        result.olderSpecifiers.map((o) => o.where).join(", ")
      }), which leaves out this Flowstate, ${denoJson.version}: to upgrade, put ${coreSpecifier()} there (the lines to merge are below), run deno install, and read the "Upgrading from" sections of Flowstate's CHANGELOG`,
    );
  }
  if (result.toMerge !== null) {
    lines.push(
      "",
      `deno.json was kept: merge what it lacks into it (${
        Object.keys(result.toMerge).join(", ")
      }):`,
      JSON.stringify(result.toMerge, null, 2),
    );
  }
  console.log(lines.join("\n"));
  for (const { path, error } of result.failed) {
    console.error(`error: cannot write ${join(shownDir, path)}: ${error}`);
  }
  if (exitCode === 0) {
    console.log(
      [
        "",
        "Next:",
        ...(shownDir === "."
          ? []
          : [`  cd ${/\s/.test(shownDir) ? JSON.stringify(shownDir) : shownDir}`]),
        "  deno install                             # once: writes deno.lock (run and flowstate use it --frozen)",
        "  deno task run flows/hello.flow.yaml      # run the flow (run it twice: the count goes up)",
        "  deno task test                           # test it on a memory store",
        "  deno task check                          # type-check the project's modules (run does not)",
        "  deno task flowstate --help               # every command",
        "  deno task flowstate daemon               # run flows with a schedule: on it",
      ].join("\n"),
    );
  }
  return exitCode;
}
