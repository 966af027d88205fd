/**
 * Configuration: `flowstate.yaml` (or a file named with `--config`, or an
 * object) resolved into named store specs, a scope → store mapping and a home
 * directory.
 *
 * ```yaml
 * # flowstate.yaml
 * home: ./.flowstate            # optional; relative to this file
 * stores:
 *   default: { plugin: sqlite, path: state.db }
 *   shared:
 *     plugin: postgres
 *     url: ${env.DATABASE_URL}  # substituted from the environment; $${...} is a literal ${...}
 * scopes:
 *   global: shared              # default for every scope: the store named "default", else the first
 * flows: [./flows, ./other.flow.yaml]  # files or directories (their *.flow.yaml); `schedule:` ones run in the daemon
 * timezone: Europe/Paris        # default IANA zone of schedules (default UTC)
 * runs: { abortGrace: 5s, maxSubRuns: 1000 }  # the defaults: see RunsConfig
 * jobs:
 *   retention: { schedule: "0 3 * * *", options: { maxAge: 30d }, overlap: skip, missed: run-once, jitter: 30s }
 *   gc: {}                      # scheduled at the job's defaultSchedule
 *   nightly-report: { module: ./jobs/report.ts, schedule: "@daily", timezone: America/New_York }
 *   backup: { enabled: false }
 * ```
 *
 * The built-in jobs `retention` and `gc` are scheduled (at their
 * `defaultSchedule`) even when `jobs:` is absent, unless `enabled: false`.
 * Cron expressions and time zones are checked here; job options are checked
 * when a job is loaded (`flowstate daemon`, `flowstate jobs run`).
 *
 * Every relative path written in a config file resolves against the file's
 * folder, wherever the command runs: `home` (default: `.flowstate` there),
 * store files, plugin, job and trusted node modules, `flows:`, and the path
 * options of jobs (`jobs.backup.options.out`; see `JobDefinition.pathOptions`).
 * For a config object, that folder is `cwd`.
 *
 * Every error is a {@linkcode ConfigError} whose message starts with
 * `file:line:column: field.path:` when the config came from a file.
 *
 * @module
 */
import { deniedReading } from "./_fs.ts";
import { EnvFileError, envOrFile } from "./_env_file.ts";
import { dirname, isAbsolute, join, relative, resolve } from "./_path.ts";
import { ConfigError, type Problem } from "./errors.ts";
import { didYouMean } from "./_suggest.ts";
import { withWritten } from "./_written.ts";
import { durationProblem, formatDurationExactly, parseDuration } from "./duration.ts";
import { builtinJobNames } from "./jobs/builtin.ts";
import { canonicalTimezone, DEFAULT_TIMEZONE, timezoneProblem } from "./timezone.ts";
import { resolvePluginSpecifier, type StoreSpec } from "./plugin.ts";
import { type ScopeName, SCOPES } from "./state/scopes.ts";
import { isFlowPath } from "./flow/load.ts";
import type {
  AbandonedPolicy,
  ConfigObject,
  FailureKind,
  JobConfigObject,
  MissedPolicy,
  NodesConfigObject,
  OnFailureConfigObject,
  OverlapPolicy,
  RunsConfigObject,
  ServeConfigObject,
} from "./config_schema.ts";
import { DEFAULT_ABORT_GRACE } from "./flow/executor.ts";
import { DEFAULT_CHECK_TIMEOUT_MS, DEFAULT_WORKER_MEMORY_MIB } from "./flow/sandbox.ts";
import { DEFAULT_MAX_SUB_RUNS } from "./run_flow.ts";
import type { YamlSource } from "./yaml_source.ts";
import { readYamlFile } from "./_yaml_file.ts";

/** The file looked for in the working directory when no config is given. */
export const CONFIG_FILE_NAME = "flowstate.yaml";

/** The name of the store used when the config defines none. */
export const DEFAULT_STORE_NAME = "default";

export type {
  AbandonedPolicy,
  ConfigObject,
  FailureKind,
  JobConfigObject,
  MissedPolicy,
  NodesConfigObject,
  OnFailureConfigObject,
  OverlapPolicy,
  RunsConfigObject,
  ServeConfigObject,
};

/**
 * Limits of every flow run (`runs:`), resolved.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadConfig, type RunsConfig } from "@flowstate/core";
 *
 * const runs: RunsConfig = (await loadConfig({ config: {} })).runs;
 * assert.deepEqual(runs, { abortGraceMs: 5_000, maxSubRuns: 1_000, eventFormat: 2 }); // the defaults
 * ```
 */
export interface RunsConfig {
  /**
   * How long (ms) a cancelled or timed-out run waits for its node attempts to
   * stop and its sub-runs to record their end; a timed-out attempt gets as
   * long before its node is failed without a retry. Default 5000.
   */
  readonly abortGraceMs: number;
  /** The most sub-runs one root run may start, at every level. Default 1000. */
  readonly maxSubRuns: number;
  /**
   * How long (ms) a run of a flow without a `timeout:` of its own may take
   * before it is recorded `timed-out` (`runs.timeout`); absent: no limit.
   */
  readonly timeoutMs?: number;
  /**
   * The form run events are written in (`RecordsOptions.eventFormat`):
   * 2 (compact) by default, 1 while processes of Flowstate 0.4 share the
   * records store.
   */
  readonly eventFormat: 1 | 2;
  /**
   * The form finished runs' node outcomes are written in
   * (`RecordsOptions.nodesFormat`), when the config sets it: by default 2
   * (compact), or 1 with `eventFormat: 1`; 1 while processes of Flowstate 0.5
   * or before share the records store.
   */
  readonly nodesFormat?: 1 | 2;
  /** The flow run when a run ends badly (`runs.onFailure`), when set. */
  readonly onFailure?: OnFailureConfig;
}

/**
 * `runs.onFailure`, resolved: which flow to run when a run ends badly, and for which runs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadConfig, type OnFailureConfig } from "@flowstate/core";
 *
 * const config = await loadConfig({ config: { runs: { onFailure: { flow: "alert", on: ["failed"] } } } });
 * const onFailure: OnFailureConfig | undefined = config.runs.onFailure;
 * assert.deepEqual(onFailure, { flow: "alert", on: ["failed"], except: [] });
 * ```
 */
export interface OnFailureConfig {
  /** The flow as written: an id under `flows:`, or a path. */
  readonly flow: string;
  /** The flow's file (absolute) when `flow` is a path (relative to the config's folder). */
  readonly file?: string;
  /** Which ends fire it. */
  readonly on: readonly FailureKind[];
  /** Flow ids whose runs never fire it. */
  readonly except: readonly string[];
}

/** The ends that fire `runs.onFailure` unless its `on:` says otherwise. */
export const DEFAULT_FAILURE_KINDS: readonly FailureKind[] = ["failed", "timed-out", "abandoned"];

/** The jobs scheduled even when the config does not mention them (unless disabled). */
export const DEFAULT_SCHEDULED_JOBS: readonly string[] = ["retention", "gc"];

/**
 * One job's settings, resolved.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type JobConfig, loadConfig } from "@flowstate/core";
 *
 * const config = await loadConfig({ config: { jobs: { backup: { schedule: "@daily" } } } });
 * const backup: JobConfig = config.jobs.backup;
 * assert.equal(backup.enabled, true);
 * assert.equal(backup.schedule, "@daily");
 * assert.equal(backup.overlap, "skip");
 * ```
 */
export interface JobConfig {
  /** Whether the job is scheduled. */
  readonly enabled: boolean;
  /** The module as written, or `undefined` for the built-in of the job's name. */
  readonly module?: string;
  /** The cron expression as written, or `undefined` for the job's `defaultSchedule`. */
  readonly schedule?: string;
  /** The time zone of the schedule. */
  readonly timezone: string;
  /** Options from the config (not yet validated against the job's schema). */
  readonly options: Readonly<Record<string, unknown>>;
  /** What happens at a tick while the previous run is still running here. */
  readonly overlap: OverlapPolicy;
  /** What happens on start about ticks missed since the last one completed. */
  readonly missed: MissedPolicy;
  /** What happens to a tick whose runner died while running it. */
  readonly abandoned: AbandonedPolicy;
  /** Upper bound of the random delay after each tick, in ms. */
  readonly jitterMs: number;
}

/**
 * A validated configuration with every default filled in.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadConfig, type ResolvedConfig } from "@flowstate/core";
 *
 * const config: ResolvedConfig = await loadConfig({
 *   config: { stores: { main: { plugin: "memory" } } },
 *   home: "/tmp/flowstate-example",
 * });
 * assert.equal(config.file, null); // an object, not a file
 * assert.deepEqual(config.scopes, { global: "main", flow: "main", node: "main" });
 * assert.equal(config.records, "main");
 * assert.ok("gc" in config.jobs); // scheduled by default
 * ```
 */
export interface ResolvedConfig {
  /** The absolute path of the config file, or `null` for an object or the built-in default. */
  readonly file: string | null;
  /**
   * The directory every relative path of the config resolves against: the
   * config file's folder (`cwd` for an object or no file).
   */
  readonly baseDir: string;
  /**
   * Flowstate's home directory (absolute). From `$FLOWSTATE_HOME`, it is read
   * when first asked for (a `ConfigError` saying what to grant when the
   * variable cannot be read).
   */
  readonly home: string;
  /** Store specs by name, in the order they were written. */
  readonly stores: Readonly<Record<string, Readonly<StoreSpec>>>;
  /** The store each scope maps to. */
  readonly scopes: Readonly<Record<ScopeName, string>>;
  /** The store runs, flow versions and metrics are recorded in. */
  readonly records: string;
  /** Flow files and directories (absolute paths), in config order. */
  readonly flows: readonly string[];
  /** Default time zone of schedules. */
  readonly timezone: string;
  /**
   * Job settings by name: every job named under `jobs:`, plus the
   * {@linkcode DEFAULT_SCHEDULED_JOBS} (enabled) when not named.
   */
  readonly jobs: Readonly<Record<string, JobConfig>>;
  /** Limits of every flow run. */
  readonly runs: RunsConfig;
  /** Custom node settings. */
  readonly nodes: {
    /** Node modules that run in-process (as written; paths resolve against `baseDir`). */
    readonly trusted: readonly string[];
    /** How long (ms) a node module's Worker is kept after a run; `undefined` when not set. */
    readonly workerIdleMs: number | undefined;
    /** The heap (MiB) a node's Worker may use while a node runs. Default 512. */
    readonly memoryLimitMiB: number;
    /** How long (ms) a flow's check of one node module may take. Default 30 000. */
    readonly checkTimeoutMs: number;
  };
  /** `flowstate serve` settings (`serve:`), as written (the token after `${env.…}`). */
  readonly serve: {
    /** The port, when set. */
    readonly port?: number;
    /** The address to bind, when set. */
    readonly host?: string;
    /** The token, when set. */
    readonly token?: string;
  };
  /**
   * Where a field is written, as `file:line:column` (the most specific part of
   * `path` that exists), or `undefined` when the config is not from a file.
   */
  where(path: readonly (string | number)[]): string | undefined;
}

/**
 * Options for {@linkcode loadConfig}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { join } from "node:path";
 * import { loadConfig, type LoadConfigOptions } from "@flowstate/core";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(
 *   join(dir, "flowstate.yaml"),
 *   'stores:\n  main: { plugin: postgres, url: "${env.DATABASE_URL}" }\n',
 * );
 * const options: LoadConfigOptions = {
 *   cwd: dir, // finds flowstate.yaml there
 *   env: { DATABASE_URL: "postgres://app@db.internal/app" },
 * };
 * const config = await loadConfig(options);
 * assert.equal(config.stores.main.url, "postgres://app@db.internal/app");
 * assert.equal(config.file, join(dir, "flowstate.yaml"));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface LoadConfigOptions {
  /**
   * A path to a YAML config file (relative to `cwd`), or a config object.
   * Default: `flowstate.yaml` in `cwd` if it exists, else the built-in default
   * (one `sqlite` store named `default` at `<home>/state.db`).
   */
  config?: string | ConfigObject;
  /** The working directory (default: `Deno.cwd()`). */
  cwd?: string;
  /**
   * Flowstate's home directory (relative to `cwd`). Default, first that is
   * set: the config's `home` (relative to the config file's folder),
   * `$FLOWSTATE_HOME` (relative to `cwd`), `.flowstate` in the config file's
   * folder (in `cwd` without a config file, or for a config object).
   */
  home?: string;
  /**
   * Environment lookup for `${env.NAME}` and `FLOWSTATE_HOME`
   * (default: `Deno.env`).
   */
  env?: Readonly<Record<string, string | undefined>>;
}

type Path = readonly (string | number)[];

/**
 * Load and validate a configuration.
 *
 * Substitutes `${env.NAME}` in every string value of a config file (`$${…}` is
 * a literal `${…}`; objects are taken as they are), checks every field, and
 * resolves the home directory and scope → store mapping. Plugin options are
 * checked later, when a store is opened.
 *
 * @example
 * ```ts
 * import { loadConfig } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/flowstate.yaml`, "stores:\n  main:\n    plugin: memory\n");
 * const config = await loadConfig({ cwd: dir });
 * await Deno.remove(dir, { recursive: true });
 * assert.equal(config.scopes.flow, "main");
 * assert.equal(config.records, "main");
 * assert.equal(config.where(["stores", "main", "plugin"]), "flowstate.yaml:3:5");
 * ```
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<ResolvedConfig> {
  return await loadConfigWith(options);
}

/** Where a config file's text came from, for a {@linkcode ConfigTextLoader}. */
export interface ConfigFileContext {
  /** The absolute path of the file. */
  file: string;
  /** The working directory (absolute). */
  cwd: string;
  /** The home directory given (`LoadConfigOptions.home`), as given. */
  home: string | undefined;
  /** The environment lookup. */
  env: (name: string) => string | undefined;
}

/**
 * What was checked of a config file that validated: its data before `${env…}`
 * substitution, the schema's output after it, and the parsed file (internal:
 * for the config disk cache).
 */
export interface ConfigCapture {
  /** The file's data as written (`null` for an empty file). */
  raw: unknown;
  /** The schema's output, with `${env.…}` substituted. */
  checked: ConfigObject;
  /** The parsed file (positions). */
  source: YamlSource;
}

/**
 * What {@linkcode loadConfigWith} does with a config file's text: `parse` is
 * the full path (YAML parser, schema, every check); `capture`, when given,
 * receives what was checked once the config is valid (internal).
 */
export type ConfigTextLoader = (
  text: string,
  context: ConfigFileContext,
  parse: (capture?: (captured: ConfigCapture) => void) => Promise<ResolvedConfig>,
) => Promise<ResolvedConfig>;

/**
 * {@linkcode loadConfig}, with a config file's text handed to `loadText`
 * (internal: `config_disk_cache.ts` looks it up in its cache first). Same
 * results and errors as `loadConfig` when `loadText` returns what `parse` does.
 */
export async function loadConfigWith(
  options: LoadConfigOptions,
  loadText?: ConfigTextLoader,
): Promise<ResolvedConfig> {
  const cwd = resolve(options.cwd ?? Deno.cwd());
  const env = (name: string): string | undefined => readEnv(name, options.env);
  const given = options.config;
  if (given !== undefined && typeof given !== "string") {
    if (typeof given !== "object" || given === null || Array.isArray(given)) {
      throw new TypeError(
        "Cannot load config: expected a file path or an object like { stores: { … } }",
      );
    }
    return resolveConfig(given, { file: null, baseDir: cwd, cwd, home: options.home, env }, {
      schema: await configSchemaFor(given),
    });
  }
  const file = resolve(cwd, given ?? CONFIG_FILE_NAME);
  let text: string;
  try {
    const read = await readYamlFile(file);
    if ("problem" in read) {
      const { line, column, message } = read.problem;
      throw ConfigError.fromIssues([{ path: [], message, line, column }], {
        file: displayPath(file, cwd),
      });
    }
    text = read.text;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    if (err instanceof Deno.errors.NotFound && given === undefined) {
      // A flowstate.yml was meant as the config: the default store would be used without a word.
      if (await Deno.stat(resolve(cwd, "flowstate.yml")).then((s) => s.isFile, () => false)) {
        throw new ConfigError(
          "Cannot load config: there is a flowstate.yml here, and the config file is named " +
            "flowstate.yaml: rename it, or name it with --config flowstate.yml ($FLOWSTATE_CONFIG, " +
            'or openRuntime({ config: "flowstate.yml" }) in a program)',
        );
      }
      // No config file: the defaults, which need no schema (zod is not loaded).
      return resolveConfig({}, { file: null, baseDir: cwd, cwd, home: options.home, env });
    }
    const reason = err instanceof Deno.errors.NotFound
      ? "the file does not exist"
      : err instanceof Deno.errors.IsADirectory
      ? "it is a directory"
      : err instanceof Deno.errors.PermissionDenied
      ? deniedReading(file)
      : (err as Error).message;
    throw new ConfigError(
      `Cannot read config file ${displayPath(file, cwd)}: ${reason}`,
      { cause: err },
    );
  }
  const context: ConfigFileContext = { file, cwd, home: options.home, env };
  const parse = async (capture?: (captured: ConfigCapture) => void) => {
    // The YAML parser is loaded only when there is a config file to parse.
    const [{ YamlSource }, schema] = await Promise.all([
      import("./yaml_source.ts"),
      import("./config_schema.ts"),
    ]);
    return parseConfigTextWith(YamlSource, text, context, schema, capture);
  };
  return loadText === undefined ? await parse() : await loadText(text, context, parse);
}

/**
 * Resolve a config whose shape was checked when it was first loaded, with
 * `${env.…}` already substituted (internal: a config disk cache hit). Runs
 * every check but the schema's and the schedules' (which the caller vouches
 * for: the same values passed them); `locate` says where a path is written
 * (its key, or its nearest ancestor's).
 * Throws a {@linkcode ConfigError} (without positions) for a problem: the
 * caller then takes the full path for the located error.
 */
export function resolveCheckedConfig(
  checked: ConfigObject,
  context: ConfigFileContext & {
    locate: (path: Path) => { line: number; column: number } | undefined;
    /** The config as written (`checked` before `${env.…}` substitution). */
    written: unknown;
  },
  parseEncrypt: ConfigSchemaModule["parseEncryptOptions"] | undefined,
): ResolvedConfig {
  const { file, cwd, home, env, locate, written } = context;
  const shown = displayPath(file, cwd);
  // As YamlSource.where: the start of the text when nothing is written at the path.
  const where = (path: Path): string => {
    const { line, column } = locate(path) ?? { line: 1, column: 1 };
    return `${shown}:${line}:${column}`;
  };
  return resolveConfig(checked, { file, baseDir: dirname(file), cwd, home, env, where, written }, {
    checked: { parseEncryptOptions: parseEncrypt },
  });
}

/** The config schema's module (zod and the schema), loaded only when there is a config to check. */
type ConfigSchemaModule = typeof import("./config_schema.ts");

/** The schema's module for `input`; `undefined` for an empty config (the defaults need none). */
async function configSchemaFor(input: object): Promise<ConfigSchemaModule | undefined> {
  return isEmptyConfig(input) ? undefined : await import("./config_schema.ts");
}

/** A config with no fields at all: what the schema accepts as it is (`{}` in, `{}` out). */
function isEmptyConfig(input: object): boolean {
  return Object.getPrototypeOf(input) === Object.prototype && Reflect.ownKeys(input).length === 0;
}

/**
 * {@linkcode parseConfigText} (in `config_file.ts`, which loads the YAML
 * parser) with the {@linkcode YamlSource} class given (internal).
 */
export function parseConfigTextWith(
  Source: typeof YamlSource,
  text: string,
  options: {
    file: string;
    cwd?: string;
    home?: string;
    env?: (name: string) => string | undefined;
  },
  schema: ConfigSchemaModule,
  capture?: (captured: ConfigCapture) => void,
): ResolvedConfig {
  const cwd = resolve(options.cwd ?? Deno.cwd());
  const file = resolve(cwd, options.file);
  const source = new Source(text, {
    file: displayPath(file, cwd),
    prettyErrors: true,
    aliases: "stop",
    missing: "key",
    empty: "here",
    oneDocument: { file: "a config file" },
    // Problems are reported as ConfigErrors; the YAML library must not also
    // print its warnings (a collection used as a key) on stderr.
    logLevel: "error",
    // Duplicate keys are reported below, naming the key and where it first is.
    uniqueKeys: false,
  });
  if (source.syntaxErrors.length > 0) {
    const issues = source.syntaxErrors.map((err) => ({
      path: [],
      message: `invalid YAML: ${err.message.split("\n")[0]}`,
      line: err.line,
      column: err.column,
    }));
    throw ConfigError.fromIssues(issues, {
      file: source.file,
      cause: source.syntaxErrors[0].error,
    });
  }
  const duplicates = source.duplicateKeys();
  if (duplicates.length > 0) {
    const issues = duplicates.map((dup) => ({
      path: dup.path,
      message:
        `duplicate key "${dup.key}" (first at line ${dup.first.line}, column ${dup.first.column}): keep one of them`,
      ...dup.at,
    }));
    throw ConfigError.fromIssues(issues, { file: source.file });
  }
  const read = source.toData({ maxAliasCount: 1000 });
  if ("problem" in read) {
    throw ConfigError.fromIssues([{ path: [], ...read.problem }], { file: source.file });
  }
  let raw = read.data;
  if (raw === null || raw === undefined) raw = {};
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError(
      `${source.where([], "key")}: the config must be a mapping with fields ${
        schema.TOP_LEVEL_FIELDS.join(", ")
      }, not ${schema.describeValue(raw)}`,
    );
  }
  const fields = raw as Record<string, unknown>;
  if ("nodes" in fields && "id" in fields && !("stores" in fields)) {
    // A flow given as the config (--config flows/x.flow.yaml): its every field is "unknown".
    throw new ConfigError(
      `${source.where([], "key")}: this is a flow (it has id: and nodes:), not a config: ` +
        "run it with flowstate run <file>; --config names a flowstate.yaml (stores:, flows:, …)",
    );
  }
  const env = options.env ?? ((name: string) => readEnv(name, undefined));
  const problems = new ConfigProblems(source);
  const substituted = substituteEnv(raw, [], env, source, problems);
  return resolveConfig(substituted as ConfigObject, {
    file,
    baseDir: dirname(file),
    cwd,
    home: options.home,
    env,
    source,
    written: raw,
  }, {
    schema,
    problems,
    onChecked: capture && ((checked) => capture({ raw: read.data, checked, source })),
  });
}

const JOB_NAME = /^[a-z0-9][a-z0-9_-]*$/;

/** A leading `~` or a `$NAME` part of a path as written (which a shell would expand), if any. */
function unexpandedShellPart(path: string): string | undefined {
  return /^~(?=[\\/]|$)|(?<=^|[\\/])\$[A-Za-z_]\w*(?=[\\/]|$)/.exec(path)?.[0];
}

interface ResolveContext {
  file: string | null;
  baseDir: string;
  cwd: string;
  home: string | undefined;
  env: (name: string) => string | undefined;
  source?: YamlSource;
  /** Where a path is written, when there is no `source` (a cache hit). */
  where?: (path: Path) => string;
  /**
   * A config file's data as written, before `${env.…}` substitution: the checks meant for what
   * the user wrote (`home: $HOME/x`) read it. Absent for a config given as an object.
   */
  written?: unknown;
}

/**
 * `changes: { keep: 30 }` written in a file: 30 ms to the feed's retention (gc
 * would trim the feed to nothing), or 30 changes to whoever wrote it. Refused
 * with both readings (a program passing a number means milliseconds).
 */
function unitlessFeedKeep(
  spec: StoreSpec,
  path: Path,
  where: (path: Path) => string | undefined,
  fail: (path: Path, message: string) => void,
): void {
  const keep = (spec.changes as { keep?: unknown } | undefined)?.keep;
  const [at, value] = typeof keep === "object" && keep !== null
    ? [[...path, "age"], (keep as { age?: unknown }).age]
    : [path, keep];
  if (typeof value !== "number" || where(at) === undefined) return;
  fail(
    at,
    `${value} is a number without a unit, which would mean ${value} milliseconds: write ` +
      `"${formatDurationExactly(value)}" to keep that, "${value}d" for ${value} days, or ` +
      `{ count: ${value} } to keep the last ${value} changes`,
  );
}

function resolveConfig(
  input: ConfigObject,
  ctx: ResolveContext,
  { schema, problems = new ConfigProblems(ctx.source), checked, onChecked }: {
    /** The schema's module: required unless `input` is empty or `checked`. */
    schema?: ConfigSchemaModule;
    problems?: ConfigProblems;
    /**
     * Set when `input` is known to pass the schema (and its schedules to be
     * valid): a cache hit. Its `parseEncryptOptions` checks stores' `encrypt`.
     */
    checked?: { parseEncryptOptions: ConfigSchemaModule["parseEncryptOptions"] | undefined };
    /** Called with the schema's output once the config is valid. */
    onChecked?: (config: ConfigObject) => void;
  } = {},
): ResolvedConfig {
  const where = (path: Path): string | undefined =>
    ctx.where?.(path) ?? ctx.source?.where(path, "key");
  const fail = (path: Path, message: string): void => problems.add(path, message);

  let config: ConfigObject;
  if (checked !== undefined) {
    config = input;
  } else if (schema === undefined) {
    // Only an empty config comes without the schema: it parses to itself.
    if (!isEmptyConfig(input)) throw new Error("internal: a config to check needs its schema");
    config = {};
  } else {
    const parsed = schema.configSchema.safeParse(input, { reportInput: true });
    if (!parsed.success) {
      // Every shape problem at once; the checks below need a well-shaped config.
      for (const issue of parsed.error.issues) {
        const { path, message } = schema.explainIssue(issue);
        problems.add(path, message, schema.issueLocationPath(issue));
      }
      throw problems.error();
    }
    config = parsed.data!;
  }

  // `home: ~/flowstate` made a folder named `~` in the config's folder. What a file says is
  // checked as written: a value from `${env.DIR}` is a folder's real name, `$` or not.
  const writtenHome = ctx.written === undefined
    ? config.home
    : (ctx.written as { home?: unknown } | null)?.home;
  const shellPart = typeof writtenHome === "string" ? unexpandedShellPart(writtenHome) : undefined;
  if (shellPart !== undefined) {
    fail(
      ["home"],
      `holds "${shellPart}", which nothing expands here (no shell reads the config): ` +
        `write \${env.${shellPart === "~" ? "HOME" : shellPart.slice(1)}} for the value of that ` +
        "environment variable",
    );
  }
  // The home, and the one Flowstate up to 0.5 used (`formerHome`), when it differs.
  let homes: { home: string; formerHome?: string } | undefined;
  const homesOf = (): { home: string; formerHome?: string } => {
    if (ctx.home !== undefined) return { home: resolve(ctx.cwd, ctx.home) };
    if (config.home !== undefined) return { home: resolve(ctx.baseDir, config.home) };
    const fromEnv = ctx.env("FLOWSTATE_HOME");
    // Beside the config file, wherever the command runs (the working directory up to 0.5).
    return {
      home: fromEnv ? resolve(ctx.cwd, fromEnv) : defaultHome(ctx.baseDir),
      ...(!fromEnv && ctx.file !== null && ctx.baseDir !== ctx.cwd
        ? { formerHome: join(ctx.cwd, ".flowstate") }
        : {}),
    };
  };
  // $FLOWSTATE_HOME is read when the home is first asked for: a program whose stores need no
  // home (memory ones, files of their own) runs without --allow-env=FLOWSTATE_HOME.
  const homeNow = () => (homes ??= homesOf());

  const stores: Record<string, StoreSpec> = {};
  if (config.stores === undefined) {
    stores[DEFAULT_STORE_NAME] = Object.freeze({
      plugin: "sqlite",
      path: join(homeNow().home, "state.db"),
    });
  } else {
    const names = Object.keys(config.stores);
    if (names.length === 0) {
      fail(
        ["stores"],
        `no stores defined; add one like "default: { plugin: sqlite }", or remove "stores" to use the default SQLite store`,
      );
    }
    for (const name of names) {
      if (name.trim() === "") fail(["stores", name], "a store name must not be empty");
      const spec = config.stores[name] as StoreSpec;
      if (typeof spec.plugin === "string") {
        try {
          resolvePluginSpecifier(spec.plugin, ctx.baseDir);
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
          for (const issue of err.issues) fail(["stores", name, "plugin"], issue.message);
        }
      }
      if (spec.encrypt !== undefined) {
        try {
          // A config with stores: its schema's module was loaded (the encryption options with
          // it), or a cache hit's caller loaded them.
          const parse = checked === undefined
            ? schema!.parseEncryptOptions
            : checked.parseEncryptOptions!;
          parse(spec.encrypt, `store "${name}"`);
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
          for (const issue of err.issues) {
            const path = ["stores", name, ...issue.path];
            // A key whose ${env.…} is not set already has its problem: not "not 32 bytes" too.
            if (!problems.has(path)) fail(path, issue.message);
          }
        }
      }
      unitlessFeedKeep(spec, ["stores", name, "changes", "keep"], where, fail);
      // The options as written go along, for the plugin's checks of what the user wrote.
      const written = (ctx.written as { stores?: Record<string, unknown> } | undefined)?.stores;
      stores[name] = Object.freeze(withWritten({ ...spec }, written?.[name]));
    }
  }

  const names = Object.keys(stores);
  const fallback = Object.hasOwn(stores, DEFAULT_STORE_NAME) ? DEFAULT_STORE_NAME : names[0];
  const scopes = {} as Record<ScopeName, string>;
  for (const scope of SCOPES) {
    const named = config.scopes?.[scope];
    if (named !== undefined && !Object.hasOwn(stores, named)) {
      fail(
        ["scopes", scope],
        `no store named "${named}"${didYouMean(named, names)}; the stores are ${
          names.map((n) => `"${n}"`).join(", ")
        }`,
      );
    }
    scopes[scope] = named ?? fallback;
  }
  if (config.records !== undefined && !Object.hasOwn(stores, config.records)) {
    fail(
      ["records"],
      `no store named "${config.records}"${didYouMean(config.records, names)}; the stores are ${
        names.map((n) => `"${n}"`).join(", ")
      }`,
    );
  }

  let timezone = DEFAULT_TIMEZONE;
  if (config.timezone !== undefined) {
    const problem = timezoneProblem(config.timezone);
    if (problem !== undefined) fail(["timezone"], problem);
    else timezone = canonicalTimezone(config.timezone);
  }

  const flowEntries = config.flows === undefined
    ? []
    : typeof config.flows === "string"
    ? [config.flows]
    : config.flows;
  const flows = flowEntries.map((entry) => resolve(ctx.baseDir, entry));

  const jobs: Record<string, JobConfig> = {};
  const builtins = builtinJobNames();
  for (const [name, raw] of Object.entries(config.jobs ?? {})) {
    const job = (raw ?? {}) as JobConfigObject;
    const at = (field?: string): Path =>
      field === undefined ? ["jobs", name] : ["jobs", name, field];
    if (!JOB_NAME.test(name)) {
      fail(
        at(),
        `a job name must be lowercase letters, digits, "_" and "-", starting with a letter or digit`,
      );
    }
    if (job.module === undefined && !builtins.includes(name)) {
      fail(
        at(),
        `unknown job "${name}"${didYouMean(name, builtins)}; the built-in jobs are ${
          builtins.join(", ")
        }, or give a module, like "${name}: { module: ./jobs/${name}.ts }"`,
      );
    }
    let jobTimezone = timezone;
    if (job.timezone !== undefined) {
      const problem = timezoneProblem(job.timezone);
      if (problem !== undefined) fail(at("timezone"), problem);
      else jobTimezone = canonicalTimezone(job.timezone);
    }
    if (job.schedule !== undefined && checked === undefined) {
      // Only a config with jobs gets here: its schema's module was loaded (croner with it).
      // (A cache hit's schedules and zones are those that passed, not from the environment.)
      const problem = schema!.cronProblem(job.schedule, jobTimezone);
      if (problem !== undefined) fail(at("schedule"), problem);
    }
    let jitterMs = 0;
    if (job.jitter !== undefined) {
      const problem = durationProblem(job.jitter);
      if (problem !== undefined) fail(at("jitter"), problem.message);
      else jitterMs = parseDuration(job.jitter, `jobs.${name}.jitter`);
    }
    jobs[name] = Object.freeze({
      enabled: job.enabled ?? true,
      ...(job.module !== undefined ? { module: job.module } : {}),
      ...(job.schedule !== undefined ? { schedule: job.schedule.trim() } : {}),
      timezone: jobTimezone,
      options: Object.freeze({ ...(job.options ?? {}) }),
      overlap: job.overlap ?? "skip",
      missed: job.missed ?? "skip",
      abandoned: job.abandoned ?? "skip",
      jitterMs,
    });
  }
  for (const name of DEFAULT_SCHEDULED_JOBS) {
    if (Object.hasOwn(jobs, name)) continue;
    jobs[name] = Object.freeze({
      enabled: true,
      timezone,
      options: Object.freeze({}),
      overlap: "skip",
      missed: "skip",
      abandoned: "skip",
      jitterMs: 0,
    });
  }

  let abortGraceMs = DEFAULT_ABORT_GRACE;
  if (config.runs?.abortGrace !== undefined) {
    const problem = durationProblem(config.runs.abortGrace);
    if (problem !== undefined) fail(["runs", "abortGrace"], problem.message);
    else abortGraceMs = parseDuration(config.runs.abortGrace, "runs.abortGrace");
  }
  const positiveDuration = (
    value: number | string | undefined,
    path: [string, string],
    examples: string,
    why: string,
  ): number | undefined => {
    if (value === undefined) return undefined;
    const problem = durationProblem(value);
    if (problem !== undefined) return void fail(path, problem.message);
    const ms = parseDuration(value, path.join("."));
    if (ms > 0) return ms;
    fail(
      path,
      `expected a duration longer than 0, such as ${examples}, got ${JSON.stringify(value)}${why}`,
    );
  };
  const runTimeoutMs = positiveDuration(
    config.runs?.timeout,
    ["runs", "timeout"],
    '"30m" or "2h"',
    " (leave it out for no limit)",
  );
  let workerIdleMs: number | undefined;
  if (config.nodes?.workerIdle !== undefined) {
    const problem = durationProblem(config.nodes.workerIdle);
    if (problem !== undefined) fail(["nodes", "workerIdle"], problem.message);
    else workerIdleMs = parseDuration(config.nodes.workerIdle, "nodes.workerIdle");
  }
  let memoryLimitMiB = DEFAULT_WORKER_MEMORY_MIB;
  if (config.nodes?.memoryLimit !== undefined) {
    const parsed = parseMiB(config.nodes.memoryLimit);
    if (parsed === undefined) {
      fail(
        ["nodes", "memoryLimit"],
        `expected a size in MiB (a number) or like "256MiB", "1GiB", "512MB", got ${
          JSON.stringify(config.nodes.memoryLimit)
        }`,
      );
    } else memoryLimitMiB = parsed;
  }
  const checkTimeoutMs = positiveDuration(
    config.nodes?.checkTimeout,
    ["nodes", "checkTimeout"],
    '"30s" or "2m"',
    ": a node module's check needs time to load it",
  ) ?? DEFAULT_CHECK_TIMEOUT_MS;
  const runs = Object.freeze({
    abortGraceMs,
    maxSubRuns: config.runs?.maxSubRuns ?? DEFAULT_MAX_SUB_RUNS,
    ...(runTimeoutMs === undefined ? {} : { timeoutMs: runTimeoutMs }),
    eventFormat: config.runs?.eventFormat ?? 2,
    ...(config.runs?.nodesFormat === undefined ? {} : { nodesFormat: config.runs.nodesFormat }),
    ...(config.runs?.onFailure === undefined
      ? {}
      : { onFailure: resolveOnFailure(config.runs.onFailure, ctx.baseDir) }),
  });

  if (problems.size > 0) throw problems.error();
  onChecked?.(config);
  const resolved: ResolvedConfig = Object.freeze({
    file: ctx.file,
    baseDir: ctx.baseDir,
    get home() {
      return homeNow().home;
    },
    stores: Object.freeze(stores),
    scopes: Object.freeze(scopes),
    records: config.records ?? scopes.flow,
    flows: Object.freeze(flows),
    timezone,
    jobs: Object.freeze(jobs),
    runs,
    nodes: Object.freeze({
      trusted: Object.freeze([...(config.nodes?.trusted ?? [])]),
      workerIdleMs,
      memoryLimitMiB,
      checkTimeoutMs,
    }),
    serve: Object.freeze({ ...(config.serve ?? {}) }),
    where,
  });
  formerHomes.set(resolved, () => homeNow().formerHome);
  return resolved;
}

/** `runs.onFailure` resolved: its file when a path, its defaults. */
function resolveOnFailure(written: OnFailureConfigObject, baseDir: string): OnFailureConfig {
  return Object.freeze({
    flow: written.flow,
    ...(isFlowPath(written.flow) ? { file: resolve(baseDir, written.flow) } : {}),
    on: Object.freeze([...new Set(written.on ?? DEFAULT_FAILURE_KINDS)]),
    except: Object.freeze([...(written.except ?? [])]),
  });
}

/**
 * The home of a config in `baseDir` that sets none (and no `$FLOWSTATE_HOME`):
 * `.flowstate` beside the config file (internal: the config disk cache keeps
 * its entries there).
 */
export function defaultHome(baseDir: string): string {
  return join(baseDir, ".flowstate");
}

/** The home Flowstate 0.5 gave a config read from another folder (see `formerHomeOf`). */
const formerHomes = new WeakMap<ResolvedConfig, () => string | undefined>();

/**
 * The home Flowstate up to 0.5 used for `config` (`<cwd>/.flowstate`), when
 * it is not the home now: a config file read from another working directory
 * that sets no `home:` (and no `$FLOWSTATE_HOME`, no home given). Internal:
 * the runtime warns when that folder holds files the new home lacks.
 */
export function formerHomeOf(config: ResolvedConfig): string | undefined {
  return formerHomes.get(config)?.();
}

/** A size as MiB: a positive number, or `<n>MiB|MB|GiB|GB` (MB and GB taken as MiB and GiB). */
function parseMiB(value: number | string): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value > 0 ? value : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(MiB|MB|GiB|GB)\s*$/i.exec(value);
  if (!m) return undefined;
  const n = Number(m[1]) * (/^g/i.test(m[2]) ? 1024 : 1);
  return n > 0 ? n : undefined;
}

function readEnv(
  name: string,
  env: Readonly<Record<string, string | undefined>> | undefined,
): string | undefined {
  if (env) return Object.hasOwn(env, name) ? env[name] : undefined;
  try {
    return Deno.env.get(name);
  } catch (err) {
    // Deno's own message already ends "run again with the --allow-env flag": say it once, with
    // the narrowest grant.
    const denied = err instanceof Error &&
      (err.name === "NotCapable" || err.name === "PermissionDenied");
    throw new ConfigError(
      `Cannot read environment variable ${name}: ${
        denied
          ? `this process has no permission to read it; grant it with --allow-env=${name} (or --allow-env)`
          : (err as Error).message
      }`,
      { cause: err },
    );
  }
}

const SUBSTITUTION = /\$\$\{|\$\{([^}]*)\}/g;
const ENV_REFERENCE = /^\s*env\.([A-Za-z_][A-Za-z0-9_]*)\s*$/;

/**
 * `value` with `${env.NAME}` substituted and `$${` turned into `${`;
 * `onProblem` hears of a reference that is not `${env.NAME}` or names an unset
 * variable (which is then kept as written). Internal: a config disk cache hit
 * substitutes its strings with it.
 */
export function substituteEnvString(
  value: string,
  env: (name: string) => string | undefined,
  onProblem: (message: string) => void,
): string {
  if (!value.includes("${")) return value;
  return value.replace(SUBSTITUTION, (match: string, inner: string | undefined) => {
    if (match === "$${") return "${";
    const ref = ENV_REFERENCE.exec(inner ?? "");
    if (!ref) {
      onProblem(
        `cannot substitute "${match}": only \${env.NAME} is supported; write $$${
          match.slice(1)
        } for a literal "${match}"`,
      );
      return match;
    }
    let found: string | undefined;
    try {
      // NAME unset, NAME_FILE set: the content of that file (Docker and Kubernetes secrets).
      found = envOrFile(ref[1], env);
    } catch (err) {
      if (!(err instanceof EnvFileError)) throw err;
      onProblem(`cannot substitute \${env.${ref[1]}}: ${err.message}`);
      return match;
    }
    if (found === undefined) {
      onProblem(
        `environment variable ${ref[1]} is not set (used as \${env.${
          ref[1]
        }}); set it, or write $\${env.${ref[1]}} for a literal`,
      );
      return match;
    }
    return found;
  });
}

function substituteEnv(
  value: unknown,
  path: (string | number)[],
  env: (name: string) => string | undefined,
  source: YamlSource,
  problems: ConfigProblems,
): unknown {
  if (typeof value === "string") {
    return substituteEnvString(
      value,
      env,
      (message) => problems.add(path, message, path, "value"),
    );
  }
  if (Array.isArray(value)) {
    return value.map((item, i) => substituteEnv(item, [...path, i], env, source, problems));
  }
  if (typeof value === "object" && value !== null && !(value instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = substituteEnv(v, [...path, k], env, source, problems);
    }
    return out;
  }
  return value;
}

/** Every problem of one config, with positions when it came from a file. */
class ConfigProblems {
  readonly #source: YamlSource | undefined;
  readonly #list: { problem: Problem; offset: number }[] = [];

  constructor(source: YamlSource | undefined) {
    this.#source = source;
  }

  get size(): number {
    return this.#list.length;
  }

  /** A problem at `path`; its position is that of `at` (default: `path`). */
  add(path: Path, message: string, at: Path = path, side: "key" | "value" = "key"): void {
    const offset = this.#source?.offset(at, side);
    const pos = this.#source?.position(offset ?? 0);
    this.#list.push({
      problem: { path: [...path], message, ...pos },
      offset: offset ?? Infinity,
    });
  }

  /** Whether a problem at exactly `path` was added. */
  has(path: Path): boolean {
    return this.#list.some(({ problem }) =>
      problem.path.length === path.length && problem.path.every((p, i) => p === path[i])
    );
  }

  /** One error with every problem, in file order. */
  error(): ConfigError {
    const sorted = [...this.#list].sort((a, b) => a.offset - b.offset).map((p) => p.problem);
    return this.#source
      ? ConfigError.fromIssues(sorted, { file: this.#source.file })
      : ConfigError.fromIssues(sorted, { prefix: "Invalid config: " });
  }
}

/**
 * `file` as messages show it: relative to `cwd` when inside it, else absolute.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { displayPath } from "./config.ts";
 * assert.equal(displayPath("/srv/app/flowstate.yaml", "/srv/app"), "flowstate.yaml");
 * assert.equal(displayPath("/etc/flowstate.yaml", "/srv/app"), "/etc/flowstate.yaml");
 * ```
 */
export function displayPath(file: string, cwd: string): string {
  const rel = relative(cwd, file);
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel) ? rel : file;
}
