/**
 * `flowstate validate`, `flowstate flows ls|versions` and `flowstate schema`:
 * check flow files, list the flows and versions recorded in the records
 * store or kept in the archive, and print the flow format as JSON Schema.
 *
 * `--json` output (one JSON document on stdout, stable):
 * - `flows ls`: `[{ "id", "head", "versions", "prunedVersions", "lastRunAt", "lastStatus",
 *   "description", "lastRunArchive" }]` in id order (`head` is the full hash; `versions` counts
 *   every version created, `prunedVersions` those the retention job deleted; `lastRunAt` ms
 *   since the epoch or `null`: when the newest run, recorded or archived, started (a run that
 *   went through the queue: its last attempt's claim, its enqueue time while it has not
 *   started, `lastStatus` "queued"); `lastRunArchive` the
 *   archive file under `<home>/archive/` when that run is one the archive job moved there,
 *   else `null`), and `"archived": true` on a flow known only from the archive (the records
 *   store holds nothing of it: `head` is the version its newest archived run ran, `versions`
 *   the versions its archived runs ran); listed too when there is no records store
 * - `flows versions <id>`: `[{ "flowId", "hash", "parent", "seq", "createdAt" }]`,
 *   newest first (`parent` is `null` for the first version), the versions the archive keeps
 *   that the records store no longer holds included, with `"archived": true` and `"archive"`
 *   (the archive file whose runs ran it); `null` (exit 1) for an unknown flow
 * - `validate`: `[{ "file", "ok", "problems": [{ "file", "line", "column", "path", "message" }],
 *   "env", "warnings", "nodes": [{ "id", "type", "runs", "permissions", "withEnv", "stateEnv",
 *   "stateEnvWriters", "subFlows" }] }]`
 *   (`line` and `column` `null` when not known; `nodes` empty when not `ok`; `env` the flow's
 *   `env:` list; `warnings` texts; `runs` is `builtin`, `trusted` or `worker`, `permissions` what
 *   a `worker` node may do, paths resolved, or `null`; `withEnv` the `env:` variables whose
 *   values reach the node through its `with:`; `stateEnv` those that other nodes of the flow
 *   may write to state it can read (a custom node's), `stateEnvWriters` those nodes' ids;
 *   `subFlows` how it may start sub-flows:
 *   `literal`, `computed`, `capped`, `any` or `null`)
 *
 * @module
 */
import { FlowValidationError, loadFlowFile, type ParsedFlow } from "../flow/parse.ts";
import { loadFlow } from "../flow/load.ts";
import type { PreparedFlow } from "../flow/executor.ts";
import {
  envThroughState,
  envThroughWith,
  type GuardedPath,
  type SubFlowStart,
  subFlowStart,
  unsetEnvHere,
  writeOverlaps,
} from "../flow/reach.ts";
import { basename, dirname, fromFileUrl, join, resolve } from "../_path.ts";
import { moduleUrl, projectConfigFile } from "../loader.ts";
import type { ResolvedConfig } from "../config.ts";
import { flowFiles, flowIdsByFile, sharedIdWarning } from "../flow_files.ts";
import { builtinNodes } from "../flow/nodes.ts";
import { flowJsonSchema } from "../flow/schema.ts";
import { literalSecrets } from "../flow/_http.ts";
import { KILL_PROGRAM } from "../flow/_exec.ts";
import { loadConfig } from "../config.ts";
import { ConfigError, formatPath } from "../errors.ts";
import { describePermissions } from "../flow/sub_flows.ts";
import type { FlowQueueLimits } from "../flow/types.ts";
import { parseRate } from "../rate.ts";
import { dstSkipProblem } from "../cron.ts";
import { scheduleEntries } from "../flow/_schedule_entries.ts";
import { formatDurationExactly } from "../duration.ts";
import {
  formatTime,
  printable,
  printErrorLines,
  printTable,
  shortHash,
  unknownFlowMessage,
} from "./format.ts";
import {
  type GlobalOptions,
  notFound,
  openForReading,
  printWarning,
  unlessMissing,
} from "./common.ts";
import { projectElsewhereWarning, withTaskCwdHint } from "./paths.ts";
import { UsageError } from "./input.ts";
import type { Runtime } from "../runtime.ts";
import { archiveReaderOf } from "../records/_archive_read.ts";
import type { Records } from "../records/records.ts";
import type { FlowSummary } from "../records/flow_version.ts";
import {
  type RecordsArchive,
  withArchivedFlows,
  withArchivedVersions,
} from "../records/_archived.ts";

/** One problem of `validate --json`. */
export interface ValidateProblem {
  /** The file the problem is in (a sub-flow's file when it is there). */
  file: string;
  /** 1-based line, or `null` when not known. */
  line: number | null;
  /** 1-based column, or `null` when not known. */
  column: number | null;
  /** Where in the document, as text (`nodes[1].needs[0]`); `""` for the whole of it. */
  path: string;
  /** What is wrong. */
  message: string;
}

/** One file of `validate --json`. */
export interface ValidateResult {
  /** The file as given. */
  file: string;
  /** Whether it is a valid flow. */
  ok: boolean;
  /** Its problems (empty when `ok`). */
  problems: ValidateProblem[];
  /** Its nodes, where each runs and what each may do (empty when not `ok`). */
  nodes: ValidateNode[];
  /** The flow's `env:` list: runner variables its templates may read (empty when not `ok`). */
  env: string[];
  /** What a reviewer should know that is not a problem (a shared flow id, a risky `write:`). */
  warnings: string[];
}

/** One node of `validate --json`: where it runs and what it may do. */
export interface ValidateNode {
  /** The node's id. */
  id: string;
  /** Its type as written. */
  type: string;
  /** `builtin` and `trusted` run in-process; `worker` in a Worker with `permissions`. */
  runs: "builtin" | "trusted" | "worker";
  /** A `worker` node's permissions (Deno's names, paths resolved), else `null`. */
  permissions: Record<string, boolean | string[]> | null;
  /**
   * The flow's `env:` variables whose values reach the node through its
   * `with:` templates (directly, or through the outputs of nodes it reads),
   * whatever its `permissions:` say.
   */
  withEnv: string[];
  /**
   * For a custom node, the flow's `env:` variables whose values other nodes
   * of the flow receive through `with:` and may write to state, which it can
   * read (beside `withEnv`).
   */
  stateEnv: string[];
  /** The nodes that may write `stateEnv` to state. */
  stateEnvWriters: string[];
  /**
   * How it may start sub-flows: `literal` (a `flow` node, as written),
   * `computed` (a `flow` node's path computed at run time: a flow file in its
   * folder or under `flows:`), `capped` (a sandboxed node: such flow files
   * only, every node within its permissions), `any` (trusted), or `null`.
   */
  subFlows: SubFlowStart;
}

/**
 * The flow files `validate` checks: each argument that is a directory
 * stands for its `*.flow.yaml` files (as under `flows:`; one that has none
 * is a usage error), a file for itself; no argument, the config's `flows:`.
 */
async function flowArguments(files: readonly string[], config: ResolvedConfig): Promise<string[]> {
  if (files.length === 0) {
    if (config.flows.length === 0) {
      throw new UsageError(
        "validate: give flow files or folders, or list them under flows: in flowstate.yaml " +
          "(flows: [./flows]) and run it without arguments",
      );
    }
    return await flowFiles(config);
  }
  const out: string[] = [];
  for (const file of files) {
    let directory = false;
    try {
      directory = (await Deno.stat(file)).isDirectory;
    } catch {
      // Not there: loading it says so, as a problem of that file.
    }
    if (!directory) {
      out.push(file);
      continue;
    }
    const inside: string[] = [];
    for await (const item of Deno.readDir(file)) {
      if (item.isFile && item.name.endsWith(".flow.yaml")) inside.push(join(file, item.name));
    }
    if (inside.length === 0) {
      throw new UsageError(
        `validate: ${file} is a folder with no *.flow.yaml file (a folder stands for its ` +
          "*.flow.yaml files, as under flows:)",
      );
    }
    out.push(...inside.sort());
  }
  return [...new Set(out)];
}

/**
 * `validate [flow]… [--json]`: parse and prepare each flow (node types,
 * module nodes, static options, store names against the config's stores,
 * sub-flow files) without opening a store or writing anything. Prints
 * `ok <file>` per valid file and every problem of the others as `error:`
 * lines, or with `json` one array of {@linkcode ValidateResult}; exit 2 if
 * any is invalid (or if the config is).
 */
/**
 * A flow's `queue:` limits in words, for `validate`: `at most 10 started per
 * 1m, at most 1 running at once, per value of ${{ inputs.customer }}, across
 * every worker (retries count)`.
 */
function describeQueueLimits(queue: FlowQueueLimits): string {
  const parts: string[] = [];
  if (queue.rate !== undefined) {
    const rate = parseRate(queue.rate, "queue.rate");
    parts.push(`at most ${rate.limit} started per ${formatDurationExactly(rate.perMs)}`);
  }
  if (queue.concurrency !== undefined) {
    parts.push(`at most ${queue.concurrency} running at once`);
  }
  const scope = queue.by === undefined ? "for all its runs" : `per value of ${queue.by}`;
  return `${parts.join(", ")}, ${scope}, across every worker${
    queue.rate === undefined ? "" : " (retries count against the rate)"
  }`;
}

export async function validateFlows(
  files: readonly string[],
  global: GlobalOptions = {},
  options: { json?: boolean } = {},
): Promise<number> {
  // The config is read for its store names only: no store is opened.
  const config = await loadConfig({ config: global.config });
  const results: ValidateResult[] = [];
  const warned = new Set<string>();
  const guarded = await guardedPaths(config);
  // Without arguments the project is checked: its runs.onFailure flow too.
  const onFailure = files.length === 0 && config.runs.onFailure !== undefined;
  if (onFailure) results.push(await validateOnFailure(config, options.json === true));
  const listed = onFailure && config.flows.length === 0 ? [] : await flowArguments(files, config);
  for (const file of listed) {
    // Outside its project, a flow is checked against the default config: said once per project.
    const elsewhere = await projectElsewhereWarning(file, config);
    if (elsewhere !== undefined && !warned.has(elsewhere)) {
      warned.add(elsewhere);
      console.error(printable(`warning: ${elsewhere}`));
    }
    try {
      const { parsed, prepared } = await checkFlowFile(file, config);
      const withEnv = envThroughWith(prepared);
      const stateEnv = envThroughState(prepared, withEnv);
      const nodes = prepared.nodes.map((n, i): ValidateNode => ({
        id: n.spec.id,
        type: n.spec.type,
        runs: n.runs ?? "builtin",
        permissions: n.permissions ?? null,
        withEnv: withEnv[i],
        stateEnv: stateEnv[i].env,
        stateEnvWriters: stateEnv[i].writers,
        subFlows: subFlowStart(n),
      }));
      const env = [...parsed.definition.env ?? []];
      const warnings = await flowWarnings(file, prepared, guarded);
      warnings.push(
        ...unsetEnvWarnings(prepared),
        ...literalSecretWarnings(prepared),
        ...execShellWarnings(prepared),
        ...lookalikeTemplateWarnings(prepared),
        ...dstSkipWarnings(prepared, config.timezone),
      );
      results.push({ file, ok: true, problems: [], nodes, env, warnings });
      if (!options.json) {
        console.log(`ok ${file}`);
        const queue = parsed.definition.queue;
        if (queue !== undefined) console.log(printable(`  queue: ${describeQueueLimits(queue)}`));
        if (env.length > 0) {
          console.log(
            `  env: ${
              env.join(", ")
            } (read from the runner's environment; templates may pass them into any node's with:)`,
          );
        }
        const secrets = parsed.definition.secrets ?? [];
        if (secrets.length > 0) {
          console.log(
            `  secrets: ${
              secrets.join(", ")
            } (read from the runner's environment; their values are masked as *** in everything runs record)`,
          );
        }
        for (const n of nodes) {
          if (n.runs === "builtin" && n.subFlows !== "computed" && n.permissions === null) continue;
          console.log(`  ${n.id} (${n.type}): ${describeRuns(n)}`);
        }
      }
      for (const warning of warnings) console.error(printable(`warning: ${file}: ${warning}`));
    } catch (err) {
      if (!(err instanceof FlowValidationError)) throw err;
      results.push({
        file,
        ok: false,
        nodes: [],
        env: [],
        warnings: [],
        problems: err.problems.map((p) => ({
          file: err.file ?? file,
          line: p.line ?? null,
          column: p.line === undefined ? null : p.column ?? 1,
          path: formatPath(p.path),
          message: p.message,
        })),
      });
      if (!options.json) printErrorLines(err.message);
    }
  }
  if (options.json) console.log(JSON.stringify(results));
  return results.some((r) => !r.ok) ? 2 : 0;
}

/**
 * Parse and prepare one flow file as `validate` does (node types, module nodes, static
 * options, store names, sub-flow files, a change trigger's store), opening no store:
 * a {@linkcode FlowValidationError} (file:line:column) when it is not valid.
 */
export async function checkFlowFile(
  file: string,
  config: ResolvedConfig,
): Promise<{ parsed: ParsedFlow; prepared: PreparedFlow }> {
  const stores = Object.keys(config.stores);
  const parsed = await withTaskCwdHint(file, () => loadFlowFile(file, { stores }));
  const { prepared } = await loadFlow(parsed, {
    stores,
    trusted: config.nodes.trusted,
    trustedBaseDir: config.baseDir,
  });
  if (parsed.definition.trigger?.changes !== undefined) {
    // A change trigger the daemon would refuse: its store, and the store's feed, as the
    // config declares them (no store is opened).
    const { triggerProblems } = await import("../scheduler/change_triggers.ts");
    const problems = await triggerProblems(
      parsed,
      config,
      (store) => config.stores[store]?.changes !== undefined,
    );
    if (problems.length > 0) throw new FlowValidationError(problems, file);
  }
  return { parsed, prepared };
}

/** `flowstate validate`'s check of the config's `runs.onFailure` flow, as one result. */
async function validateOnFailure(config: ResolvedConfig, json: boolean): Promise<ValidateResult> {
  const { checkOnFailure, openRuntime } = await import("../runtime.ts");
  // No store is opened: the flow is only loaded and checked. Its warnings (an except: entry
  // that names nothing known) go with the result.
  const warnings: string[] = [];
  await using runtime = await openRuntime({
    config: config.file ?? {},
    createStores: false,
    onWarning: (warning) => warnings.push(warning.message),
  });
  const file = config.file ?? "<config>";
  try {
    const checked = await checkOnFailure(runtime);
    if (!json) {
      console.log(printable(`ok runs.onFailure: ${checked?.file}`));
      for (const warning of warnings) console.error(printable(`warning: ${warning}`));
    }
    return { file, ok: true, problems: [], nodes: [], env: [], warnings };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    if (!json) printErrorLines(err.message);
    const at = /:(\d+):(\d+)$/.exec(config.where(["runs", "onFailure", "flow"]) ?? "");
    return {
      file,
      ok: false,
      nodes: [],
      env: [],
      warnings: [],
      problems: err.issues.map((p) => ({
        file,
        line: at === null ? null : Number(at[1]),
        column: at === null ? null : Number(at[2]),
        path: formatPath(p.path),
        message: p.message,
      })),
    };
  }
}

function describeRuns(node: ValidateNode): string {
  let env = node.withEnv.length === 0
    ? ""
    : `; receives env through with: ${node.withEnv.join(", ")}`;
  if (node.stateEnv.length > 0) {
    env += `; may read env through state: ${node.stateEnv.join(", ")} (written by ${
      node.stateEnvWriters.join(", ")
    })`;
  }
  if (node.runs === "builtin" && node.permissions !== null) {
    return `${node.type === "exec" ? "starts programs" : "requests"} from a Worker, permissions: ${
      describePermissions(node.permissions)
    }${env}`;
  }
  if (node.runs === "builtin") {
    return `starts a sub-flow whose path is computed at run time (only a flow file in its flow's folder or under flows: is run)${env}`;
  }
  if (node.runs === "trusted") {
    return `trusted: in-process with every permission of the runner${env}`;
  }
  return `worker, permissions: ${
    describePermissions(node.permissions ?? {})
  }${env}; sub-flows: flow files only, within these permissions`;
}

/**
 * The files and folders whose content decides what nodes may do: the config
 * file, Flowstate's home, trusted node modules, the project's `deno.json`
 * and `deno.lock` (its imports and tasks decide the runner's own code and
 * flags), the modules of the config's store plugins and jobs (they run in the
 * runner), and the `flows:` entries and files (with their ids).
 */
async function guardedPaths(
  config: ResolvedConfig,
): Promise<{ paths: GuardedPath[]; flows: { file: string; id: string }[] }> {
  const paths: GuardedPath[] = [];
  if (config.file !== null) {
    paths.push({ path: config.file, folder: false, what: "the config file" });
  }
  paths.push({ path: config.home, folder: true, what: "Flowstate's home" });
  const modulePath = (name: string) => {
    const url = moduleUrl(name, config.baseDir);
    return url?.startsWith("file:") ? fromFileUrl(url) : undefined;
  };
  for (const name of config.nodes.trusted) {
    const path = modulePath(name);
    if (path !== undefined) paths.push({ path, folder: false, what: "the trusted node module" });
  }
  // The deno.json Deno applies to the runner (the config's project, the working directory's):
  // one that does not exist yet too, since a node that may create it decides as much.
  const projects = new Set([config.baseDir, Deno.cwd()].map(projectConfigFile));
  for (const file of projects) {
    paths.push({
      path: file,
      folder: false,
      what: `the project's ${
        basename(file)
      } (its imports and tasks decide the runner's code and flags)`,
    });
    paths.push({
      path: join(dirname(file), "deno.lock"),
      folder: false,
      what: "the project's deno.lock",
    });
  }
  for (const [store, spec] of Object.entries(config.stores)) {
    const path = typeof spec.plugin === "string" ? modulePath(spec.plugin) : undefined;
    if (path !== undefined) {
      paths.push({ path, folder: false, what: `the plugin module of store ${store}` });
    }
  }
  for (const [job, spec] of Object.entries(config.jobs)) {
    const path = spec.module === undefined ? undefined : modulePath(spec.module);
    if (path !== undefined) paths.push({ path, folder: false, what: `the module of job ${job}` });
  }
  for (const entry of config.flows) {
    const folder = await Deno.stat(entry).then((s) => s.isDirectory, () => false);
    if (folder) paths.push({ path: entry, folder, what: "the flows: folder" });
  }
  const flows = await flowIdsByFile(config).catch(() => []);
  for (const { file, id } of flows) {
    paths.push({ path: file, folder: false, what: `the flow file of flow "${id}"` });
  }
  return { paths, flows };
}

/** A validated flow's warnings: its id declared by another file under `flows:`, risky `write:`s. */
async function flowWarnings(
  file: string,
  prepared: PreparedFlow,
  guarded: { paths: GuardedPath[]; flows: { file: string; id: string }[] },
): Promise<string[]> {
  const own = await realPath(resolve(file));
  const warnings: string[] = [];
  const id = prepared.definition.id;
  const others: string[] = [];
  for (const flow of guarded.flows) {
    if (flow.id === id && await realPath(flow.file) !== own) others.push(flow.file);
  }
  if (others.length > 0) warnings.push(sharedIdWarning(id, [file, ...others]));
  const paths = [
    { path: resolve(file), folder: false, what: "its own flow file" },
    ...guarded.paths.filter((p) => p.path !== resolve(file)),
  ];
  warnings.push(...writeOverlaps(prepared, paths));
  return warnings;
}

/**
 * Schedules that do not run at all on a day within a year because the clocks skip every time
 * they name that day (`*\/15 2 * * *` in Europe/Paris on a spring-forward night).
 */
function dstSkipWarnings(prepared: PreparedFlow, defaultZone: string): string[] {
  const now = Date.now();
  return scheduleEntries(prepared.definition.schedule).flatMap((entry) => {
    const zone = typeof entry.raw === "string" ? undefined : entry.raw.timezone;
    const problem = dstSkipProblem(entry.cron, now, typeof zone === "string" ? zone : defaultZone);
    return problem === undefined ? [] : [`${formatPath(entry.path)}: ${problem}`];
  });
}

/**
 * The flow's needed `env:` variables unset in this process (those it may read:
 * validate runs where the daemon may not, so these are warnings).
 */
function unsetEnvWarnings(prepared: PreparedFlow): string[] {
  return unsetEnvHere(prepared.definition).map((p) =>
    `${p.message} (a run started from this environment would fail before it starts)`
  );
}

/** An http node holding a credential literally: the flow's recorded versions would keep it. */
function literalSecretWarnings(prepared: PreparedFlow): string[] {
  return prepared.nodes.flatMap((node) => {
    if (node.spec.type !== "http" || node.runs !== "builtin") return [];
    const found = literalSecrets(node.spec.with);
    return found.length === 0 ? [] : [
      `node ${node.spec.id} (http) holds ${
        found.join(", ")
      } as written in the flow file, which every recorded version of the flow keeps; pass it from the environment instead, like "Bearer \${{ secrets.API_TOKEN }}" with secrets: [API_TOKEN] (masked as *** in the records)`,
    ];
  });
}

/** `${inputs.x}` or `{{ inputs.x }}`: a template written the way other tools write theirs. */
const LOOKALIKE =
  /(?<!\$)\$\{\s*((?:inputs|nodes|env|secrets|run|item)\b[^{}]*?)\s*\}(?!\})|(?<![$\w])\{\{\s*((?:inputs|nodes|env|secrets|run|item)\b[^{}]*?)\s*\}\}/g;

/**
 * Texts in a node's `with:` or the flow's `outputs:` that look like a template but are not
 * one (`${inputs.name}`, `{{ nodes.a.output }}`): they are passed on as they are written.
 */
function lookalikeTemplateWarnings(prepared: PreparedFlow): string[] {
  const found: string[] = [];
  // An exec node's arguments go to a program, often a shell, whose variables are written
  // `${item}`, `${run}`: a name alone (no dot, which no shell variable holds) is left to it.
  let shell = false;
  const walk = (value: unknown, where: string) => {
    if (typeof value === "string") {
      for (const match of value.matchAll(LOOKALIKE)) {
        if (shell && match[1] !== undefined && /^\w+$/.test(match[1])) continue;
        found.push(
          `${where} holds ${JSON.stringify(match[0])}, which is plain text, not a template: ` +
            `write \${{ ${match[1] ?? match[2]} }}`,
        );
      }
    } else if (Array.isArray(value)) value.forEach((v, i) => walk(v, `${where}[${i}]`));
    else if (typeof value === "object" && value !== null) {
      for (const [k, v] of Object.entries(value)) walk(v, `${where}.${k}`);
    }
  };
  for (const node of prepared.nodes) {
    shell = node.spec.type === "exec";
    walk(node.spec.with, `node ${node.spec.id}: with`);
  }
  shell = false;
  walk(prepared.definition.outputs, "outputs");
  return found;
}

/** Shells: what their scripts start is not stopped with them unless the runner may run kill. */
const SHELLS = new Set(["sh", "bash", "dash", "zsh", "ksh", "ash", "busybox"]);

/**
 * An exec node running a shell while the runner may not run `kill`: a
 * process its script starts would outlive a cancel or a timeout.
 */
function execShellWarnings(prepared: PreparedFlow): string[] {
  if (Deno.permissions.querySync({ name: "run", command: KILL_PROGRAM }).state === "granted") {
    return [];
  }
  return prepared.nodes.flatMap((node) => {
    const command = (node.spec.with as { command?: unknown } | undefined)?.command;
    if (node.spec.type !== "exec" || node.runs !== "builtin" || typeof command !== "string") {
      return [];
    }
    const name = command.split("/").pop()!;
    return SHELLS.has(name)
      ? [
        `node ${node.spec.id} (exec) runs ${name}: stopping it (a cancel, a timeout) stops the shell only, and a process its script starts would run on; add ${KILL_PROGRAM} to the runner's --allow-run (--allow-run=${name},${KILL_PROGRAM}) to stop its whole process group`,
      ]
      : [];
  });
}

async function realPath(path: string): Promise<string> {
  return await Deno.realPath(path).catch(() => path);
}

/**
 * The flows `flows ls` lists: the records' (which read the archive too), or,
 * when the records store does not exist (yet, or any more), those the
 * archive alone knows.
 */
async function listedFlows(runtime: Runtime, records: Records | null): Promise<FlowSummary[]> {
  if (records !== null) return await records.listFlows();
  return await withArchivedFlows([], archiveOf(runtime));
}

/** What the CLI's listings read of the archive: the runtime's reader; warnings on stderr. */
function archiveOf(runtime: Runtime): RecordsArchive {
  return { reader: () => Promise.resolve(archiveReaderOf(runtime)), onWarning: printWarning };
}

/** `flows ls [--json]`. */
export async function listFlows(
  options: { json?: boolean },
  global: GlobalOptions,
): Promise<number> {
  await using runtime = await openForReading(global);
  const records = await unlessMissing(() => runtime.records());
  // A flow whose newest run the archive job moved out still shows it (marked archived), and a
  // flow known only from the archive is listed (marked archived).
  const flows = (await listedFlows(runtime, records)).map((f) => ({
    ...f,
    lastRunArchive: f.lastRunArchive ?? null,
  }));
  if (options.json) {
    console.log(JSON.stringify(flows));
  } else if (flows.length === 0) {
    console.error("No flows recorded yet; run one with: flowstate run <flow.yaml>");
  } else {
    printTable(
      ["ID", "HEAD", "VERSIONS", "LAST RUN", "LAST STATUS"],
      flows.map((f) => [
        f.archived ? `${f.id} (archived)` : f.id,
        shortHash(f.head),
        f.prunedVersions > 0
          ? `${f.versions - f.prunedVersions} (${f.prunedVersions} pruned)`
          : String(f.versions),
        // A queued run has not started: lastRunAt is when it was enqueued.
        f.lastStatus === "queued" ? "-" : formatTime(f.lastRunAt, runtime.config.timezone),
        f.lastStatus === null ? "-" : `${f.lastStatus}${f.lastRunArchive ? " (archived)" : ""}`,
      ]),
    );
    if (flows.some((f) => f.archived)) {
      console.error(
        `(archived): known only from the archive (${runtime.home}/archive): the records store ` +
          "holds nothing of it; its runs: flowstate runs ls --archived --flow <id>",
      );
    }
  }
  return 0;
}

/** `flows versions <id> [--json]`: newest first; exit 1 for an unknown flow. */
export async function listFlowVersions(
  flowId: string,
  options: { json?: boolean },
  global: GlobalOptions,
): Promise<number> {
  await using runtime = await openForReading(global);
  const records = await unlessMissing(() => runtime.records());
  // The versions the archive keeps (deleted from the records store, or all of an archived flow's).
  const versions = records === null
    ? await withArchivedVersions(flowId, [], archiveOf(runtime))
    : await records.listVersions(flowId);
  const flows = await listedFlows(runtime, records);
  if (versions.length === 0) {
    const flow = flows.find((f) => f.id === flowId);
    if (flow?.archived) {
      return notFound(
        options.json,
        `Flow "${flowId}" is known only from the archive, which keeps none of its versions ` +
          "(its runs were archived before archives kept flow versions); its runs: " +
          `flowstate runs ls --archived --flow ${flowId}`,
      );
    }
    return notFound(options.json, unknownFlowMessage(flowId, "versions", flows.map((f) => f.id)));
  }
  if (options.json) {
    console.log(JSON.stringify(versions.map((v) => ({
      flowId: v.flowId,
      hash: v.hash,
      parent: v.parent,
      seq: v.seq,
      createdAt: v.createdAt,
      ...(v.archived ? { archived: true, archive: v.archive } : {}),
    }))));
  } else {
    printTable(
      ["VERSION", "HASH", "PARENT", "CREATED"],
      versions.map((v) => [
        v.archived ? `${v.seq} (archived)` : String(v.seq),
        shortHash(v.hash),
        shortHash(v.parent),
        formatTime(v.createdAt, runtime.config.timezone),
      ]),
    );
    const pruned = flows.find((f) => f.id === flowId)?.prunedVersions ?? 0;
    const archived = versions.filter((v) => v.archived).length;
    if (archived > 0) {
      console.error(
        `(archived): deleted from the records store, kept in the archive (${runtime.home}/archive) ` +
          `beside the runs that ran it: flowstate runs ls --archived --flow ${flowId}`,
      );
    }
    if (pruned > 0) {
      console.error(
        `${pruned} older versions were deleted by the retention job (unused, older than its maxAge)${
          archived > 0 ? ", those marked (archived) among them" : ""
        }; their runs are counted as "pruned" in: flowstate metrics ${flowId}`,
      );
    }
  }
  return 0;
}

/** `schema`: the flow JSON Schema, with the built-in node type names. */
export function printFlowSchema(): number {
  console.log(JSON.stringify(flowJsonSchema({ nodeTypes: builtinNodes.keys() }), null, 2));
  return 0;
}
