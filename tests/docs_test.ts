/**
 * The code in README.md and docs/*.md is real. A TypeScript block without
 * `ignore` is run by `deno test --doc` (the root test task runs Markdown too).
 * Every other block that starts with a comment naming a file of this
 * repository (`// examples/plugin-template/mod.ts`, `# docs/examples/flowstate.yaml`)
 * is an excerpt of that file: its text, split at lines `// …` or `# …`,
 * must appear in the file in that order, so the doc shows what the tests run.
 * A block marked `ts ignore` must be such an excerpt.
 *
 * Beside the code: every `yaml` block parses, and one that is a whole flow (an
 * `id` and `nodes`) or a whole `flowstate.yaml` is valid as one; every
 * relative link and `#anchor` resolves; every
 * `flowstate` command line of a `sh` block (and every `$ ` line of a `text`
 * block) names commands and `--flags` the CLI defines; the README's test
 * command is the one `.ci/run` runs. The `sh offline` blocks are run by
 * `docs_commands_test.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { dirname, join, normalize } from "node:path";
import { parse as parseYaml } from "yaml";
import { parseFlow } from "../flow.ts";
import { parseConfigText } from "../src/config_file.ts";
import { TOP_LEVEL_FIELDS } from "../src/config_schema.ts";
import { buildProgram } from "../src/cli/program.ts";
import { allBlocks, type Block, blocks, commandLines, docFiles } from "./_doc_blocks.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** The file a block says it is taken from, if it says so. */
function sourceOf(block: Block): string | undefined {
  return /^(?:\/\/|#) ((?:examples|docs|plugins|src|tests)\/[\w./-]+)$/.exec(block.lines[0] ?? "")
    ?.[1];
}

/** The excerpt's fragments: the text between `// …` / `# …` lines. */
function fragments(lines: string[]): string[] {
  const out: string[][] = [[]];
  for (const line of lines) {
    if (/^\s*(\/\/|#) …$/.test(line)) out.push([]);
    else out[out.length - 1].push(line);
  }
  return out.map((f) => f.join("\n").trim()).filter((f) => f !== "");
}

Deno.test("every excerpt in README.md and docs/ is text of the file it names, in order", async () => {
  const excerpts = (await allBlocks()).filter((b) => sourceOf(b) !== undefined);
  assert.ok(excerpts.length >= 10, `found ${excerpts.length} excerpts`);
  for (const block of excerpts) {
    const where = `${block.doc}:${block.line}`;
    const file = sourceOf(block)!;
    const text = await Deno.readTextFile(`${ROOT}${file}`);
    let from = 0;
    for (const fragment of fragments(block.lines.slice(1))) {
      const at = text.indexOf(fragment, from);
      assert.ok(
        at >= 0,
        `${where}: this part of the excerpt is not in ${file} (after offset ${from}):\n${fragment}`,
      );
      from = at + fragment.length;
    }
  }
});

Deno.test("a ```ts block in README.md or docs/ either runs under --doc or is an excerpt (ts ignore)", async () => {
  for (const block of await allBlocks()) {
    const where = `${block.doc}:${block.line}`;
    const [lang, ...attrs] = block.info.split(/\s+/);
    if (lang !== "ts" && lang !== "typescript") continue;
    const ignored = attrs.includes("ignore");
    const excerpt = sourceOf(block) !== undefined;
    assert.equal(
      ignored,
      excerpt,
      ignored
        ? `${where}: a \`ts ignore\` block must start with // <the file it is taken from>`
        : `${where}: an excerpt must be \`ts ignore\` (it is checked against its file, not run)`,
    );
  }
});

Deno.test("the excerpt check can fail", () => {
  const [block] = blocks(
    "x.md",
    "```ts ignore\n// examples/plugin-template/mod.ts\na\n// …\nb\n```",
  );
  assert.equal(sourceOf(block), "examples/plugin-template/mod.ts");
  assert.deepEqual(fragments(block.lines.slice(1)), ["a", "b"]);
});

// --- Links -------------------------------------------------------------------------------------

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes. */
export function anchorOf(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}_\- ]/gu, "").replaceAll(" ", "-");
}

/** The anchors of a Markdown text: its headings outside code blocks (a repeat gets `-1`, `-2`…). */
export function anchorsOf(text: string): Set<string> {
  const found = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of text.split("\n")) {
    if (line.startsWith("```")) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6} (.*)$/.exec(line);
    if (!heading) continue;
    const anchor = anchorOf(heading[1]);
    const n = seen.get(anchor) ?? 0;
    seen.set(anchor, n + 1);
    found.add(n === 0 ? anchor : `${anchor}-${n}`);
  }
  return found;
}

/** The links of a Markdown text outside code blocks and code spans: `[text](target)`. */
export function linksOf(text: string): { line: number; target: string }[] {
  const links: { line: number; target: string }[] = [];
  let fenced = false;
  text.split("\n").forEach((line, i) => {
    if (line.startsWith("```")) fenced = !fenced;
    if (fenced) return;
    const prose = line.replace(/`[^`]*`/g, "``");
    for (const m of prose.matchAll(/\]\(([^)\s]+)\)/g)) links.push({ line: i + 1, target: m[1] });
  });
  return links;
}

Deno.test("every relative link and #anchor of README.md and docs/ resolves", async () => {
  const problems: string[] = [];
  const anchors = new Map<string, Set<string>>();
  const anchorsIn = async (file: string) => {
    if (!anchors.has(file)) anchors.set(file, anchorsOf(await Deno.readTextFile(join(ROOT, file))));
    return anchors.get(file)!;
  };
  let checked = 0;
  for (const doc of await docFiles()) {
    for (const { line, target } of linksOf(await Deno.readTextFile(join(ROOT, doc)))) {
      if (/^[a-z]+:/.test(target)) continue;
      checked++;
      const [path, anchor] = target.split("#");
      const file = path === "" ? doc : normalize(join(dirname(doc), path));
      try {
        await Deno.stat(join(ROOT, file));
      } catch {
        problems.push(`${doc}:${line}: ${target}: ${file} does not exist`);
        continue;
      }
      if (anchor !== undefined && file.endsWith(".md") && !(await anchorsIn(file)).has(anchor)) {
        problems.push(`${doc}:${line}: ${target}: no heading of ${file} has the anchor #${anchor}`);
      }
    }
  }
  assert.ok(checked >= 50, `checked ${checked} links`);
  assert.deepEqual(problems, []);
});

Deno.test("the link check can fail", () => {
  assert.ok(anchorsOf("# Security: what a flow may do\n").has("security-what-a-flow-may-do"));
  assert.ok(anchorsOf("## Live events: `GET /api/events`").has("live-events-get-apievents"));
  assert.ok(!anchorsOf("```sh\n# not a heading\n```\n").has("not-a-heading"));
  assert.deepEqual(linksOf("[a](b.md#c) `[x](y)`").map((l) => l.target), ["b.md#c"]);
});

// --- Command lines ----------------------------------------------------------------------------

type Cmd = ReturnType<typeof buildProgram>["commands"][number];

/** What is wrong with a command line: an unknown command or an unknown flag, or `undefined`. */
export function commandLineProblem(args: readonly string[]): string | undefined {
  const program = buildProgram(() => {});
  let command: Cmd = program as unknown as Cmd;
  const chain: Cmd[] = [command];
  let i = 0;
  for (; i < args.length && !args[i].startsWith("-"); i++) {
    const sub = command.commands.find((c) => c.name() === args[i] || c.aliases().includes(args[i]));
    if (sub === undefined) {
      if (command.commands.length > 0 && command.registeredArguments.length === 0) {
        return `"${args.slice(0, i + 1).join(" ")}" is not a command`;
      }
      break;
    }
    command = sub;
    chain.push(sub);
  }
  for (const arg of args.slice(i)) {
    if (!arg.startsWith("--")) continue;
    const flag = arg.split("=")[0];
    if (flag === "--help" || flag === "--version") continue;
    const known = chain.some((c) =>
      c.options.some((o) => o.long === flag || (o.negate && o.long === flag))
    );
    if (!known) return `"${args.slice(0, i).join(" ")}" has no option ${flag}`;
  }
  return undefined;
}

Deno.test("every flowstate command line of README.md and docs/ names commands and flags that exist", async () => {
  const lines = (await allBlocks()).flatMap(commandLines);
  assert.ok(lines.length >= 80, `found ${lines.length} command lines`);
  const problems = lines.flatMap(({ doc, line, args }) => {
    const problem = commandLineProblem(args);
    return problem === undefined ? [] : [`${doc}:${line}: flowstate ${args.join(" ")}: ${problem}`];
  });
  assert.deepEqual(problems, []);
});

Deno.test("the command line check can fail", () => {
  const [block] = blocks(
    "x.md",
    "```sh\ndeno task flowstate runs ls --flow x --since 1d  # newest first\n" +
      "flowstate state get 'a b' --at '#42' && echo done\n```",
  );
  assert.deepEqual(commandLines(block).map((c) => [c.args, c.rest]), [
    [["runs", "ls", "--flow", "x", "--since", "1d"], []],
    [["state", "get", "a b", "--at", "#42"], ["&&", "echo", "done"]],
  ]);
  assert.equal(commandLineProblem(["runs", "ls", "--flow", "x"]), undefined);
  assert.equal(commandLineProblem(["serve", "--no-worker"]), undefined);
  assert.match(commandLineProblem(["runs", "lst"]) ?? "", /"runs lst" is not a command/);
  assert.match(commandLineProblem(["runs", "ls", "--flw", "x"]) ?? "", /has no option --flw/);
});

// --- The README's test command ------------------------------------------------------------------

Deno.test("the README's test command is the one .ci/run runs", async () => {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  const ci = await Deno.readTextFile(join(ROOT, ".ci/run"));
  const shown = blocks("README.md", readme)
    .filter((b) => b.info === "sh")
    .map((b) => b.lines.join("\n").replaceAll("\\\n", " ").replace(/\s+/g, " ").trim())
    .find((b) => b.endsWith("deno task test --frozen"));
  assert.ok(shown, "the README shows the full test command");
  const env = Object.fromEntries(
    [...shown.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], m[2]]),
  );
  // .ci/run: the same services' defaults, the same task and flags.
  for (const name of ["FLOWSTATE_TEST_POSTGRES_URL", "FLOWSTATE_TEST_REDIS_URL"]) {
    const fallback = new RegExp(`export ${name}="\\$\\{${name}:-([^}]+)\\}"`).exec(ci)?.[1];
    assert.equal(env[name], fallback, `${name} in the README and in .ci/run`);
  }
  assert.match(ci, /export FLOWSTATE_TEST_CHROMIUM=\/usr\/bin\/chromium/);
  assert.equal(env.FLOWSTATE_TEST_CHROMIUM, "/usr/bin/chromium");
  assert.match(ci, /"\$\{DENO\[@\]\}" task test --frozen/);
  assert.match(ci, /"\$\{DENO\[@\]\}" install --frozen/);
  assert.match(ci, /"\$\{DENO\[@\]\}" task check/);
  assert.match(readme, /after `deno install --frozen` and `deno task check`/);
});

// --- YAML ----------------------------------------------------------------------------------------

const CONFIG_KEYS = new Set(TOP_LEVEL_FIELDS);

/** What a yaml block is: a whole flow, a whole config, or a fragment of either. */
function yamlKind(value: unknown): "flow" | "config" | "fragment" {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "fragment";
  if ("id" in value && "nodes" in value) return "flow";
  return Object.keys(value).every((k) => CONFIG_KEYS.has(k)) ? "config" : "fragment";
}

Deno.test("every yaml block of README.md and docs/ parses; a whole flow or config is valid", async () => {
  // A project folder as the docs describe one: its deno.json maps the plugin package they name.
  const dir = await Deno.makeTempDir({ prefix: "flowstate-docs-yaml-" });
  await Deno.writeTextFile(
    join(dir, "deno.json"),
    JSON.stringify({ imports: { "@flowstate/redis": "jsr:@flowstate/redis@^0.5" } }),
  );
  // Every variable set, none of them also as NAME_FILE (both set is an error).
  const env = (name: string) =>
    name.endsWith("_FILE") ? undefined : name.includes("KEY") ? btoa("k".repeat(32)) : "x";
  const problems: string[] = [];
  const kinds: string[] = [];
  try {
    for (const block of await allBlocks()) {
      if (block.info.split(/\s+/)[0] !== "yaml") continue;
      const where = `${block.doc}:${block.line}`;
      const text = block.lines.join("\n");
      try {
        const kind = yamlKind(parseYaml(text));
        kinds.push(kind);
        if (kind === "flow") parseFlow(text, { file: where });
        if (kind === "config") {
          parseConfigText(text, { file: join(dir, "flowstate.yaml"), cwd: dir, env });
        }
      } catch (err) {
        problems.push(`${where}: ${err instanceof Error ? err.message : err}`);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.deepEqual(problems, []);
  const count = (kind: string) => kinds.filter((k) => k === kind).length;
  assert.ok(count("flow") >= 5 && count("config") >= 8, kinds.join(" "));
});

Deno.test("the yaml check tells flows, configs and fragments apart", () => {
  assert.equal(yamlKind(parseYaml("id: a\nnodes: []")), "flow");
  assert.equal(yamlKind(parseYaml("stores: {}\njobs: {}")), "config");
  assert.equal(yamlKind(parseYaml("with: { a: 1 }")), "fragment");
  assert.throws(() => parseFlow("id: a\ndescripton: x\nnodes: []", { file: "x" }), /descripton/);
});
