/**
 * The flow files a config names under `flows:` (files, or directories of
 * `*.flow.yaml`), and finding one of them by its flow id: what the daemon's
 * schedules and the queue (`enqueue <flow id>`) share.
 *
 * @module
 */
import { isAbsolute, join, relative, resolve } from "./_path.ts";
import type { ResolvedConfig } from "./config.ts";
import { ConfigError, FlowValidationError, NotFoundError } from "./errors.ts";
import { isFlowPath } from "./flow/load.ts";
import { readYamlFile } from "./_yaml_file.ts";

/** Where a config field is written, as a message prefix (`flowstate.yaml:4:3: flows[0]: `). */
function locate(config: ResolvedConfig, path: (string | number)[]): string {
  const at = config.where(path);
  const field = path.map((p, i) => typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)
    .join("");
  return `${at === undefined ? "" : `${at}: `}${field}: `;
}

/** The `*.flow.yaml` files the config's `flows:` names, in order, without duplicates. */
export async function flowFiles(config: ResolvedConfig): Promise<string[]> {
  const files: string[] = [];
  for (const [i, entry] of config.flows.entries()) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(entry);
    } catch (err) {
      const reason = err instanceof Deno.errors.NotFound
        ? "no such file or directory"
        : (err as Error).message;
      throw new ConfigError(`${locate(config, ["flows", i])}cannot read ${entry}: ${reason}`, {
        cause: err,
      });
    }
    if (info.isDirectory) {
      const inside: string[] = [];
      for await (const item of Deno.readDir(entry)) {
        if (item.isFile && item.name.endsWith(".flow.yaml")) inside.push(join(entry, item.name));
      }
      files.push(...inside.sort());
    } else {
      files.push(entry);
    }
  }
  return [...new Set(files)];
}

export { isFlowPath } from "./flow/load.ts";

/**
 * The file of a flow given by id (searched among the config's `flows:`) or
 * by path (relative to `cwd`). Throws a `NotFoundError` naming the flow ids
 * found when there is no flow with that id (a `ConfigError` when two files have it).
 */
export async function findFlowFile(
  config: ResolvedConfig,
  flow: string,
  cwd: string,
): Promise<string> {
  if (typeof flow !== "string" || flow === "") {
    throw new TypeError("Cannot find the flow: expected a flow id or a path to a flow file");
  }
  if (isFlowPath(flow)) return resolve(cwd, flow);
  const ids: string[] = [];
  const found: string[] = [];
  for (const file of await flowFiles(config)) {
    const id = await flowIdOf(file);
    if (id === flow) found.push(file);
    else if (id !== undefined) ids.push(id);
  }
  if (found.length > 1) throw new ConfigError(twoFilesOneId(`Cannot find flow "${flow}"`, found));
  if (found.length === 1) return found[0];
  throw new NotFoundError(
    `Cannot find flow "${flow}": no file under the config's flows: has that id (${
      ids.length === 0
        ? "no flows are configured: add flows: [./flows] to flowstate.yaml"
        : `found: ${ids.join(", ")}`
    }); or pass a path to the flow file`,
    { kind: "flow", id: flow },
  );
}

/**
 * Rethrow `err`, a failure to load `flow` as a file: as it is, or, when
 * `flow` is no file but the id of a flow under the config's `flows:` (which
 * `enqueue` takes), with that file named: a path is what `runFlow` and
 * `flowstate run` take.
 */
export async function rethrowWithFlowIdHint(
  err: unknown,
  flow: unknown,
  config: ResolvedConfig,
  cwd: string,
): Promise<never> {
  if (
    typeof flow !== "string" || flow === "" || isFlowPath(flow) ||
    !(err instanceof FlowValidationError) || !(err.cause instanceof Deno.errors.NotFound) ||
    err.problems.length !== 1
  ) throw err;
  let file: string;
  try {
    file = await findFlowFile(config, flow, cwd);
  } catch {
    throw err; // No flow has that id either.
  }
  const rel = relative(cwd, file);
  const path = rel.startsWith("..") || isAbsolute(rel) ? file : rel;
  const [problem] = err.problems;
  throw new FlowValidationError(
    [{
      ...problem,
      message: `${problem.message}; ${
        JSON.stringify(flow)
      } is the id of the flow in ${path} (under the config's flows:): run that file`,
    }],
    err.file,
    { cause: err.cause },
  );
}

/**
 * The flow files under the config's `flows:` with their ids (a file whose id
 * cannot be read is left out). Throws a `ConfigError` as {@linkcode flowFiles} does.
 */
export async function flowIdsByFile(
  config: ResolvedConfig,
): Promise<{ file: string; id: string }[]> {
  const found: { file: string; id: string }[] = [];
  for (const file of await flowFiles(config)) {
    const id = await flowIdOf(file);
    if (id !== undefined) found.push({ file, id });
  }
  return found;
}

/**
 * A warning for every flow id that two or more files under the config's
 * `flows:` declare: the id alone decides which flow and node state a run uses
 * (and whose run history it joins), so each of those files reaches the
 * others' state. Nothing when `flows:` cannot be read (that error comes where
 * the files are used).
 */
export async function sharedFlowIdWarnings(config: ResolvedConfig): Promise<string[]> {
  let files: { file: string; id: string }[];
  try {
    files = await flowIdsByFile(config);
  } catch {
    return [];
  }
  const byId = new Map<string, string[]>();
  for (const { file, id } of files) byId.set(id, [...byId.get(id) ?? [], file]);
  return [...byId].filter(([, same]) => same.length > 1).map(([id, same]) =>
    sharedIdWarning(id, same)
  );
}

/** The warning for flow `id`, declared by every file of `files`. */
export function sharedIdWarning(id: string, files: readonly string[]): string {
  const named = files.length === 2
    ? files.join(" and ")
    : `${files.slice(0, -1).join(", ")} and ${files.at(-1)}`;
  return `flow id "${id}" is declared by ${named}: a flow's id decides which flow and node state its runs use, so each of these files reads and writes the others' state; give each flow its own id`;
}

/**
 * The flow ids the config's flow files declare, in file order (a file whose
 * id cannot be read is left out). Throws a `ConfigError` as {@linkcode flowFiles} does.
 */
export async function declaredFlowIds(config: ResolvedConfig): Promise<string[]> {
  return (await flowIdsByFile(config)).map((f) => f.id);
}

/**
 * `<what>: both A and B define it; flow ids must be unique`, as the daemon
 * says it (a run, its versions and its state go by the id).
 */
export function twoFilesOneId(what: string, files: readonly string[]): string {
  return `${what}: both ${files[0]} and ${files[1]} define it; flow ids must be unique`;
}

/**
 * Why flow `id` cannot be scheduled: several files declare it (`places`:
 * each file, with `:line:column` of its `id:` when known), and how to fix
 * it. `holder`: the file that had the schedule before and keeps it.
 */
export function sharedFlowIdMessage(
  id: string,
  places: readonly string[],
  holder?: string,
): string {
  const named = places.length === 2
    ? places.join(" and at ")
    : `${places.slice(0, -1).join(", at ")} and at ${places.at(-1)}`;
  return `Cannot schedule flow "${id}": its id is declared at ${named}; flow ids must be unique ` +
    `(the id decides which state a run uses and whose history it joins): give each of these ` +
    `flows its own id${
      holder === undefined
        ? ""
        : `; until then only ${holder}, which had the schedule first, keeps it`
    }`;
}

async function flowIdOf(file: string): Promise<string | undefined> {
  try {
    const { loadFlowFile } = await import("./flow/parse.ts");
    return (await loadFlowFile(file)).definition.id;
  } catch {
    // An invalid file: its id, if it has one, is read from the YAML alone.
    const id = (await rawFlowData(file))?.id;
    return typeof id === "string" ? id : undefined;
  }
}

/**
 * The data of a flow file as its YAML reads, without any check (for an
 * invalid flow: its `id`, its `trigger`), or `undefined` when it is not a
 * readable YAML mapping.
 */
export async function rawFlowData(file: string): Promise<Record<string, unknown> | undefined> {
  const read = await readYamlFile(file).catch(() => null);
  if (read === null || !("text" in read)) return undefined;
  // Loaded here, not at the top: the run path must not load the YAML parser.
  const { YamlSource } = await import("./yaml_source.ts");
  const source = new YamlSource(read.text, { logLevel: "silent" });
  if (source.syntaxErrors.length > 0) return undefined;
  const data = source.toData();
  if (!("data" in data)) return undefined;
  const value = data.data;
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : undefined;
}

/** A top-level `nodes:` key: what makes a YAML file look like a flow. */
const LOOKS_LIKE_FLOW = /^nodes[ \t]*:/m;

/**
 * Warnings for the files in the config's `flows:` directories that look like
 * flows (YAML with a top-level `nodes:`) but are not read as flows, their
 * names not ending in `.flow.yaml` (`hello.yaml`, `hello.flow.yml`): the
 * daemon would silently never schedule them. Files named directly under
 * `flows:` are read whatever their name. A directory that cannot be read
 * gives none (listing the flows says why).
 */
export async function lookalikeFlowWarnings(config: ResolvedConfig): Promise<string[]> {
  const warnings: string[] = [];
  for (const entry of config.flows) {
    try {
      if (!(await Deno.stat(entry)).isDirectory) continue;
      const names: string[] = [];
      for await (const item of Deno.readDir(entry)) {
        if (!item.isFile || item.name.endsWith(".flow.yaml")) continue;
        if (/\.ya?ml$/i.test(item.name)) names.push(item.name);
      }
      for (const name of names.sort()) {
        const file = join(entry, name);
        let text: string;
        try {
          using f = await Deno.open(file);
          const head = new Uint8Array(64 * 1024);
          const n = await f.read(head);
          text = new TextDecoder().decode(head.subarray(0, n ?? 0));
        } catch {
          continue;
        }
        if (!LOOKS_LIKE_FLOW.test(text)) continue;
        const flowName = name.replace(/(\.flow)?\.ya?ml$/i, ".flow.yaml");
        warnings.push(
          `${file} looks like a flow but is not read as one: only *.flow.yaml files of a flows: directory are; rename it to ${flowName}`,
        );
      }
    } catch {
      continue;
    }
  }
  return warnings;
}
