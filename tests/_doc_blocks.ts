/**
 * The code blocks of README.md and docs/*.md, and the CLI command lines in
 * them: what `docs_test.ts` checks and `docs_commands_test.ts` runs.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

export interface Block {
  doc: string;
  line: number;
  info: string;
  lines: string[];
}

export function blocks(doc: string, text: string): Block[] {
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

/** README.md and every docs/*.md, as paths relative to the repository's root. */
export async function docFiles(): Promise<string[]> {
  const files = ["README.md"];
  for await (const entry of Deno.readDir(`${ROOT}docs/`)) {
    if (entry.isFile && entry.name.endsWith(".md")) files.push(`docs/${entry.name}`);
  }
  return files.sort();
}

export async function allBlocks(): Promise<Block[]> {
  const all: Block[] = [];
  for (const doc of await docFiles()) {
    all.push(...blocks(doc, await Deno.readTextFile(`${ROOT}${doc}`)));
  }
  return all;
}

/** Words of a shell line as the shell splits them (quotes, no expansion), up to a comment. */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === "'" || c === '"') {
      const end = line.indexOf(c, i + 1);
      word = (word ?? "") + line.slice(i + 1, end < 0 ? undefined : end);
      i = end < 0 ? line.length : end;
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === "#" && word === undefined) {
      break;
    } else {
      word = (word ?? "") + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

export interface CommandLine {
  doc: string;
  line: number;
  /** The block's info string (`sh`, `sh offline`, `text`). */
  info: string;
  /** The arguments given to the CLI (`["runs", "ls", "--flow", "counter"]`). */
  args: string[];
  /** Text after the arguments on the same shell line: `> file`, `| jq`, `&& …`. */
  rest: string[];
}

const SHELL_OPERATORS = new Set(["&&", "||", "|", ";", ">", ">>", "<", "2>&1"]);

/**
 * The CLI command lines of the shell blocks of a doc: `deno task flowstate …`,
 * `deno task run …` (= `flowstate run …`), `flowstate …` at the start of a
 * line, and `… cli.ts …` / `…/cli …` (a `deno run` of the CLI's module). In a
 * `text` block only lines starting with `$ ` count; a line ending in `\` goes
 * on on the next.
 */
export function commandLines(block: Block): CommandLine[] {
  const lang = block.info.split(/\s+/)[0];
  if (lang !== "sh" && lang !== "text") return [];
  const found: CommandLine[] = [];
  const joined: { line: number; text: string }[] = [];
  block.lines.forEach((text, i) => {
    const last = joined.at(-1);
    if (last?.text.endsWith("\\")) last.text = last.text.slice(0, -1) + " " + text.trim();
    else joined.push({ line: block.line + 1 + i, text });
  });
  for (let { line, text } of joined) {
    if (lang === "text") {
      if (!text.startsWith("$ ")) continue;
      text = text.slice(2);
    }
    const words = shellWords(text);
    for (let i = 0; i < words.length; i++) {
      let start = -1;
      let args: string[] = [];
      if (words[i] === "task" && words[i + 1] === "flowstate") start = i + 2;
      else if (words[i] === "task" && words[i + 1] === "run") (start = i + 2), (args = ["run"]);
      else if (words[i] === "flowstate" && i === 0) start = 1;
      else if (/(^|\/)cli(\.ts)?$/.test(words[i]) && i > 0) start = i + 1;
      if (start < 0) continue;
      let end = start;
      while (end < words.length && !SHELL_OPERATORS.has(words[end]) && words[end] !== "deno") end++;
      args = [...args, ...words.slice(start, end)];
      found.push({ doc: block.doc, line, info: block.info, args, rest: words.slice(end) });
      i = end - 1;
    }
  }
  return found;
}
