/**
 * The project's rule: every exported symbol has JSDoc with a runnable example.
 * This script runs `deno doc --json` over the public entry points (the ones
 * `deno task check` lints, read from its command in `deno.json`), and prints every exported symbol whose declaration
 * has no `@example`, one per declaration (a symbol re-exported by several entry
 * points is listed once, at the file and line that declares it: document it
 * there). Exits 1 if any is missing, 0 if none.
 *
 * ```sh
 * deno run --allow-read --allow-run tools/doc_examples.ts
 * ```
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/**
 * The entry points `deno task check` runs `deno doc --lint` over, read from
 * the `check` task of `deno.json` in `root`, so that this list and the
 * task's never drift apart.
 */
export async function entryPoints(root: string): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(`${root}/deno.json`));
  const files = /deno doc --lint ([^&]+)&&/.exec(config.tasks?.check ?? "")?.[1].trim().split(
    /\s+/,
  );
  if (files === undefined || files.length === 0) {
    throw new Error(
      `${root}/deno.json: the check task has no "deno doc --lint <files> &&": ` +
        "say there which entry points to check",
    );
  }
  return files;
}

/** An exported symbol without an example. */
export interface Missing {
  /** The exported name (`default` for a default export). */
  name: string;
  /** `function`, `class`, `interface`, `typeAlias`, `variable`… */
  kind: string;
  /** Where it is declared, relative to the repository: `src/runtime.ts:42`. */
  at: string;
  /** The entry points that export it. */
  entries: string[];
}

interface DocTag {
  kind: string;
}
interface DocDeclaration {
  location: { filename: string; line: number; col?: number };
  kind: string;
  def?: { target?: { filename: string; line: number; col?: number } };
  jsDoc?: { doc?: string; tags?: DocTag[] };
}
interface DocSymbol {
  name: string;
  declarations: DocDeclaration[];
}
interface DocJson {
  nodes: Record<string, { symbols: DocSymbol[] }>;
}

/**
 * The exported symbols of the entry points (paths relative to `root`) that
 * have no `@example` on any of their declarations, sorted by file and line.
 */
export async function missingExamples(
  root: string,
  entries?: readonly string[],
): Promise<Missing[]> {
  entries ??= await entryPoints(root);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", ...entries],
    cwd: root,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`deno doc --json failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
  const doc = JSON.parse(new TextDecoder().decode(out.stdout)) as DocJson;
  const rootUrl = new URL(`file://${root.endsWith("/") ? root : `${root}/`}`).href;
  const relative = (url: string) => url.startsWith(rootUrl) ? url.slice(rootUrl.length) : url;
  // A re-export (`export { X } from "./src/x.ts"`) appears as a `reference`
  // to the declaration; the JSDoc that counts is the declaration's.
  type Loc = { filename: string; line: number; col?: number };
  const idOf = (l: Loc) => `${l.filename}:${l.line}:${l.col ?? 0}`;
  const declared = new Map<string, { name: string; kind: string; example: boolean }>();
  for (const node of Object.values(doc.nodes)) {
    for (const symbol of node.symbols) {
      for (const d of symbol.declarations) {
        if (d.kind === "reference") continue;
        declared.set(idOf(d.location), {
          name: symbol.name,
          kind: d.kind,
          example: symbol.declarations.some((x) =>
            x.jsDoc?.tags?.some((t) => t.kind === "example")
          ),
        });
      }
    }
  }
  const found = new Map<string, Missing>();
  for (const [entryUrl, node] of Object.entries(doc.nodes)) {
    const entry = relative(entryUrl);
    for (const symbol of node.symbols) {
      const first = symbol.declarations[0];
      if (!first) continue;
      const loc: Loc = first.kind === "reference" && first.def?.target
        ? first.def.target
        : first.location;
      const target = declared.get(idOf(loc));
      const hasExample = target?.example ??
        symbol.declarations.some((d) => d.jsDoc?.tags?.some((t) => t.kind === "example"));
      if (hasExample) continue;
      const id = idOf(loc);
      const known = found.get(id);
      if (known) {
        if (!known.entries.includes(entry)) known.entries.push(entry);
      } else {
        found.set(id, {
          name: target?.name ?? symbol.name,
          kind: target?.kind ?? first.kind,
          at: `${relative(loc.filename)}:${loc.line}`,
          entries: [entry],
        });
      }
    }
  }
  return [...found.values()].sort((a, b) =>
    a.at.localeCompare(b.at, "en", { numeric: true }) || a.name.localeCompare(b.name)
  );
}

if (import.meta.main) {
  const root = fileURLToPath(new URL("../", import.meta.url));
  const missing = await missingExamples(root);
  for (const m of missing) {
    console.log(`${m.at}  ${m.kind} ${m.name}  (exported by ${m.entries.join(", ")})`);
  }
  if (missing.length > 0) {
    console.log(
      `\n${missing.length} exported symbol(s) have no @example in their JSDoc. ` +
        "Add a runnable ```ts example (deno test --doc runs it) at the declaration shown.",
    );
    Deno.exit(1);
  }
  console.log("Every exported symbol has an @example.");
}
