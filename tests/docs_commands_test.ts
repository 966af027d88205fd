/**
 * The `sh offline` and `text offline` blocks of README.md and docs/*.md are
 * run, command by command, as a reader would copy them: each doc's commands
 * in a fresh folder holding a copy of `examples/` and `docs/examples/`, with
 * exactly the `flowstate` task's permissions, one process per doc. Every
 * command must exit 0; in a `text offline` block, the output shown under a
 * `$ ` line must appear in what the command prints (run ids, durations and
 * the project's folder masked). Commands that serve until stopped (`serve`,
 * `daemon`, `worker`) are not run; `docs_test.ts` checks their flags.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { allBlocks, type CommandLine, commandLines } from "./_doc_blocks.ts";
import { taskCommand } from "./_task_flags.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const SERVES_UNTIL_STOPPED = new Set(["serve", "daemon", "worker"]);

async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    if (entry.isDirectory) await copyDir(join(from, entry.name), join(to, entry.name));
    else if (entry.isFile) await Deno.copyFile(join(from, entry.name), join(to, entry.name));
  }
}

/** `examples/*.flow.yaml` as the shell expands it, in `dir`. */
async function expand(dir: string, arg: string): Promise<string[]> {
  const m = /^(.*\/)?([^/]*\*[^/]*)$/.exec(arg);
  if (!m) return [arg];
  const pattern = new RegExp(`^${m[2].replace(/[.]/g, "\\.").replace(/\*/g, ".*")}$`);
  const names: string[] = [];
  for await (const entry of Deno.readDir(join(dir, m[1] ?? "."))) {
    if (pattern.test(entry.name)) names.push(`${m[1] ?? ""}${entry.name}`);
  }
  return names.sort();
}

/** The output a `text offline` block shows under each `$ ` line, by the line's number. */
function shownOutput(lines: string[], first: number): Map<number, string[]> {
  const shown = new Map<number, string[]>();
  let current: string[] | undefined;
  lines.forEach((line, i) => {
    if (line.startsWith("$ ")) shown.set(first + i, current = []);
    else current?.push(line);
  });
  return shown;
}

function masked(text: string, dir: string): string {
  return text.replaceAll(dir, "/home/you/flowstate")
    .replace(/\b0m[0-9a-z]{18}\b/g, "<run>")
    .replace(/\b\d+ms\b/g, "<ms>");
}

/** The environment of a reader's shell: no FLOWSTATE_* setting of the test run's. */
function readerEnv(): Record<string, string> {
  const env = Deno.env.toObject();
  for (const name of Object.keys(env)) if (name.startsWith("FLOWSTATE_")) delete env[name];
  return { ...env, NO_COLOR: "1", RUST_BACKTRACE: "0" };
}

interface Outcome {
  code: number;
  stdout: string[];
  stderr: string[];
}

function split(text: string, count: number): { code: number; lines: string[] }[] {
  const out = Array.from({ length: count }, () => ({ code: -1, lines: [] as string[] }));
  let at = -1;
  for (const line of text.split("\n")) {
    const start = /^::doc-command start (\d+)$/.exec(line);
    const end = /^::doc-command end (\d+) (\d+)$/.exec(line);
    if (start) at = Number(start[1]);
    else if (end) (out[Number(end[1])].code = Number(end[2])), (at = -1);
    else if (at >= 0) out[at].lines.push(line);
  }
  return out;
}

async function runAll(dir: string, commands: string[][]): Promise<Outcome[]> {
  const out = await taskCommand(
    dir,
    join(ROOT, "tests/_doc_commands.ts"),
    [JSON.stringify(commands)],
    { env: readerEnv(), clearEnv: true },
  ).output();
  const text = new TextDecoder();
  const stdout = split(text.decode(out.stdout), commands.length);
  const stderr = split(text.decode(out.stderr), commands.length);
  assert.equal(out.code, 0, `the commands' process failed:\n${text.decode(out.stderr)}`);
  return stdout.map((o, i) => ({ code: o.code, stdout: o.lines, stderr: stderr[i].lines }));
}

const offline = (await allBlocks()).filter((b) => b.info.split(/\s+/).includes("offline"));
const docs = [...new Set(offline.map((b) => b.doc))];

Deno.test("the docs have offline blocks to run", () => {
  for (const doc of ["README.md", "docs/flows.md", "docs/cli.md", "docs/maintenance.md"]) {
    assert.ok(docs.includes(doc), `${doc} has no sh offline block`);
  }
});

for (const doc of docs) {
  Deno.test(`the offline commands of ${doc} run as shown`, async () => {
    const blocks = offline.filter((b) => b.doc === doc);
    const lines: CommandLine[] = blocks.flatMap(commandLines)
      .filter((c) => !SERVES_UNTIL_STOPPED.has(c.args[0]));
    const shown = new Map(blocks.flatMap((b) => [...shownOutput(b.lines, b.line + 1)]));
    const dir = await Deno.makeTempDir({ prefix: "flowstate-docs-" });
    try {
      await copyDir(join(ROOT, "examples"), join(dir, "examples"));
      await copyDir(join(ROOT, "docs/examples"), join(dir, "docs/examples"));
      const commands = await Promise.all(
        lines.map(async (c) => (await Promise.all(c.args.map((a) => expand(dir, a)))).flat()),
      );
      const outcomes = await runAll(dir, commands);
      lines.forEach(({ line, args }, i) => {
        const { code, stdout, stderr } = outcomes[i];
        const where = `${doc}:${line}: flowstate ${args.join(" ")}`;
        assert.equal(code, 0, `${where} exited ${code}:\n${[...stdout, ...stderr].join("\n")}`);
        const expected = shown.get(line);
        if (expected === undefined) return;
        const streams = [stdout, stderr].map((s) => s.map((l) => masked(l, dir)));
        const from = [0, 0];
        for (const want of expected.map((l) => masked(l, dir))) {
          const found = streams.map((s, k) => s.indexOf(want, from[k]));
          const k = found.findIndex((at) => at >= 0);
          assert.ok(
            k >= 0,
            `${where}: the doc shows "${want}", which it no longer prints:\n` +
              streams.flat().join("\n"),
          );
          from[k] = found[k] + 1;
        }
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
