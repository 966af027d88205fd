/**
 * The code in docs/*.md is real. A TypeScript block without `ignore` is run
 * by `deno test --doc` (the root test task runs Markdown too). Every other block
 * that starts with a comment naming a file of this repository
 * (`// examples/plugin-template/mod.ts`, `# docs/examples/flowstate.yaml`)
 * is an excerpt of that file: its text, split at lines `// …` or `# …`,
 * must appear in the file in that order, so the doc shows what the tests run.
 * A block marked `ts ignore` must be such an excerpt.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const DOCS = `${ROOT}docs/`;

interface Block {
  doc: string;
  line: number;
  info: string;
  lines: string[];
}

function blocks(doc: string, text: string): Block[] {
  const found: Block[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S.*)?$/.exec(lines[i]);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== "```"; i++) body.push(lines[i]);
    found.push({ doc, line: start + 1, info: open[1] ?? "", lines: body });
  }
  return found;
}

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

async function allBlocks(): Promise<Block[]> {
  const all: Block[] = [];
  for await (const entry of Deno.readDir(DOCS)) {
    if (!entry.isFile || !entry.name.endsWith(".md")) continue;
    all.push(...blocks(`docs/${entry.name}`, await Deno.readTextFile(`${DOCS}${entry.name}`)));
  }
  return all;
}

Deno.test("every excerpt in docs/ is text of the file it names, in order", async () => {
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

Deno.test("a ```ts block in docs/ either runs under --doc or is an excerpt (ts ignore)", async () => {
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
