/**
 * Paths given on the command line, and what to say when one does not exist:
 * `deno task` runs a command in the folder of its `deno.json`, not in the
 * folder it was typed in (which it passes on as `INIT_CWD`), so a path typed
 * from a subfolder is looked for in the wrong place. And a flow file run from
 * outside its project, whose `flowstate.yaml` is then not read.
 *
 * @module
 */
import { CONFIG_FILE_NAME, type ResolvedConfig } from "../config.ts";
import { FlowValidationError } from "../errors.ts";
import { dirname, isAbsolute, join, relative, resolve } from "../_path.ts";

/** The folder `deno task` was typed in, when it is not the working directory. */
function taskOrigin(env: (name: string) => string | undefined): string | undefined {
  let origin: string | undefined;
  try {
    origin = env("INIT_CWD");
  } catch {
    return undefined; // no permission to read it: nothing to add
  }
  if (origin === undefined || origin === "") return undefined;
  const from = resolve(origin);
  const cwd = resolve(Deno.cwd());
  // `deno task` runs in the folder of the deno.json it found from there upwards: a folder above.
  // (An INIT_CWD elsewhere was inherited from some other `deno task`, e.g. a test runner's.)
  return from.startsWith(cwd.endsWith("/") ? cwd : `${cwd}/`) ? from : undefined;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/**
 * What to add to "no such file" for a relative `file` given on the command
 * line when `deno task` ran the command from another folder: where relative
 * paths are taken from, and the path from there to the file meant, when it
 * exists there. `""` otherwise.
 *
 * @example
 * ```ts
 * import { taskCwdHint } from "./paths.ts";
 * import assert from "node:assert/strict";
 * // Typed in a subfolder of the project, whose deno.json is in the working directory:
 * const from = await Deno.makeTempDir({ dir: Deno.cwd() });
 * await Deno.writeTextFile(`${from}/hello.flow.yaml`, "");
 * const hint = await taskCwdHint("hello.flow.yaml", () => from);
 * assert.match(hint, /did you mean .*hello\.flow\.yaml\?/);
 * assert.equal(await taskCwdHint("hello.flow.yaml", () => undefined), "");
 * await Deno.remove(from, { recursive: true });
 * ```
 */
export async function taskCwdHint(
  file: string,
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): Promise<string> {
  const origin = taskOrigin(env);
  if (origin === undefined || isAbsolute(file)) return "";
  const cwd = Deno.cwd();
  const meant = resolve(origin, file);
  const where = `relative paths are taken from ${cwd}, where \`deno task\` runs the command, ` +
    `not from ${origin}, where it was typed`;
  return await isFile(meant) ? `; ${where}: did you mean ${relative(cwd, meant)}?` : `; ${where}`;
}

/**
 * Run `load` (which loads the flow file `file`); a "no such file" it throws
 * gets {@linkcode taskCwdHint}'s hint added.
 */
export async function withTaskCwdHint<T>(file: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    if (
      !(err instanceof FlowValidationError) || !(err.cause instanceof Deno.errors.NotFound) ||
      err.problems.length !== 1
    ) {
      throw err;
    }
    const hint = await taskCwdHint(file);
    if (hint === "") throw err;
    const [problem] = err.problems;
    // One suggestion: the file meant from where the command was typed comes first.
    const message = hint.includes("did you mean")
      ? problem.message.replace(/ \(did you mean [^)]*\)$/, "")
      : problem.message;
    throw new FlowValidationError(
      [{ ...problem, message: `${message}${hint}` }],
      err.file,
      { cause: err.cause },
    );
  }
}

/**
 * When no config file was found (no `--config`, no `$FLOWSTATE_CONFIG`, no
 * `./flowstate.yaml`) but a `flowstate.yaml` sits in the folder of the flow
 * file `file` or above it: a warning that says which store this command
 * uses instead of the project's, and how to use the project's. `undefined`
 * otherwise (a config file was read, or the flow has no project).
 *
 * @example
 * ```ts
 * import { projectElsewhereWarning } from "./paths.ts";
 * import { loadConfig } from "../config.ts";
 * import assert from "node:assert/strict";
 * const project = await Deno.makeTempDir();
 * await Deno.mkdir(`${project}/flows`);
 * await Deno.writeTextFile(`${project}/flowstate.yaml`, "stores:\n  main: { plugin: memory }\n");
 * const elsewhere = await Deno.makeTempDir();
 * const config = await loadConfig({ cwd: elsewhere, home: `${elsewhere}/.flowstate` });
 * const warning = await projectElsewhereWarning(`${project}/flows/a.flow.yaml`, config);
 * assert.match(warning!, /run it from .*--config .*flowstate\.yaml/);
 * await Deno.remove(project, { recursive: true });
 * await Deno.remove(elsewhere, { recursive: true });
 * ```
 */
export async function projectElsewhereWarning(
  file: string,
  config: ResolvedConfig,
): Promise<string | undefined> {
  if (config.file !== null) return undefined;
  const found = await configAbove(dirname(resolve(file)));
  if (found === undefined) return undefined;
  const spec = config.stores[config.records] as { plugin?: unknown; path?: unknown } | undefined;
  const store = typeof spec?.path === "string" ? ` ${spec.path}` : "";
  return `no ${CONFIG_FILE_NAME} in ${config.baseDir}: this uses the default store${store}, ` +
    `not the stores of the flow's project, ${found}; run it from ${dirname(found)}, or ` +
    `with --config ${found} from here`;
}

/** The nearest `flowstate.yaml` in `dir` or a folder above it. */
async function configAbove(dir: string): Promise<string | undefined> {
  for (let at = dir;; at = dirname(at)) {
    if (await isFile(join(at, CONFIG_FILE_NAME))) return join(at, CONFIG_FILE_NAME);
    if (dirname(at) === at) return undefined;
  }
}
