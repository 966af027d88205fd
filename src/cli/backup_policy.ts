/**
 * The backup job's options as `flowstate backup` and `flowstate backup
 * prune` take them: a flag given on the command line, else
 * `jobs.backup.options` in the config (what the daemon's scheduled backup and
 * `jobs run backup` use), else the job's default; and where each came from,
 * which both commands say.
 *
 * - `keep` and `keepFor` are one retention policy: `--keep` or `--keep-for`
 *   replaces both of the config's (`--keep 3` alone keeps 3, whatever the
 *   config's `keepFor`).
 * - `store` / `all`: the flags' when either is given, else the config's.
 * - `out` and `since` belong to the stores the config backs up: taken from
 *   the config only when the command backs up those (with `all: true`, `out`
 *   is a directory; for one store, a file, or a directory when it ends with
 *   `/`). One store (`--store`) of a config whose `all: true` backups go into
 *   `out` goes into that directory too (where the config's pruning looks).
 * - A relative path from the config (`out`, `since`) is the config file's
 *   folder's; one from a flag (`--out`, `--since`, `--dir`), the working
 *   directory's. Both are given to the job, and shown, absolute.
 * - `--no-config-options` leaves `jobs.backup.options` out entirely: only
 *   the flags and the job's defaults.
 * - `consistency` (`--per-key` overrides it) and `attempts`.
 * - `backup prune` looks in the directory the config's backups are written
 *   to (`out` with `all: true`, the folder of `out` for one store) unless
 *   `--dir` says otherwise.
 *
 * A config whose job `backup` is its own module (`jobs.backup.module`) gives
 * nothing: its options are that module's.
 *
 * @module
 */
import { dirname, join, resolve, sep } from "node:path";
import { resolveAsWritten } from "../_path.ts";
import type { ResolvedConfig } from "../config.ts";
import { ConfigError } from "../errors.ts";
import { movedPathNotes, resolveJobOptions } from "../jobs/run.ts";
import { loadConfiguredJob, locateJobOptionsError } from "../scheduler/from_config.ts";

/** Where the config's options of the backup job are. */
const CONFIG_OPTIONS = "jobs.backup.options";

/** An option given to the backup job: its value, and the flag or the config it came from. */
export interface PolicySource {
  /** The value given to the job. */
  value: unknown;
  /** `--keep` (a flag) or `jobs.backup.options` (the config). */
  from: string;
  /** Where in the config file it is written (`flowstate.yaml:9:30`), for one from the config. */
  at?: string;
}

/** Each option the command gives the backup job, by name, with where it came from. */
export type BackupPolicy = Record<string, PolicySource>;

/** The flags of `backup` and `backup prune` that stand for an option of the job. */
export interface BackupFlags {
  /** `--store NAME`. */
  store?: string;
  /** `--all`. */
  all?: boolean;
  /** `--out PATH` (`backup`). */
  out?: string;
  /** `--since FILE` (`backup`). */
  since?: string;
  /** `--per-key` (`backup`). */
  perKey?: boolean;
  /** `--keep N`. */
  keep?: number;
  /** `--keep-for AGE`. */
  keepFor?: string;
  /** `false` with `--no-config-options`: `jobs.backup.options` is not used. */
  configOptions?: boolean;
}

/** Whether `path` names a folder: it ends with a separator (`backups/`). */
export function namesFolder(path: string): boolean {
  return path.endsWith("/") || path.endsWith(sep);
}

/** The backup job's options that name a file or a folder (its `pathOptions`). */
const PATH_OPTIONS = new Set(["out", "since"]);

/** The config's `jobs.backup.options` (none when it has no such job, or its own module). */
function configured(config: ResolvedConfig): Record<string, unknown> {
  if (!Object.hasOwn(config.jobs, "backup")) return {};
  const settings = config.jobs.backup;
  if (settings.module !== undefined && settings.module !== "backup") return {};
  return settings.options;
}

/** Collects the options and their sources. */
class PolicyBuilder {
  readonly options: Record<string, unknown> = {};
  readonly policy: BackupPolicy = {};
  readonly #config: ResolvedConfig;
  readonly fromConfig: Record<string, unknown>;
  /** The config's options taken, as written (relative paths not yet resolved). */
  readonly #taken: Record<string, unknown> = {};

  constructor(config: ResolvedConfig, flags: BackupFlags) {
    this.#config = config;
    this.fromConfig = flags.configOptions === false ? {} : configured(config);
  }

  /** The notes saying the config's options were left out, when it has some. */
  ignoredNote(flags: BackupFlags): string[] {
    return flags.configOptions === false && Object.keys(configured(this.#config)).length > 0
      ? [`${CONFIG_OPTIONS} not used (--no-config-options)`]
      : [];
  }

  flag(option: string, value: unknown, flag: string): void {
    this.options[option] = value;
    this.policy[option] = { value, from: flag };
  }

  /**
   * Take `option` from the config, if it is there: a relative path against
   * the config file's folder; `folder`: as a directory (`out` for one store
   * of a config whose `all: true` backups go into it).
   */
  config(option: string, folder = false): void {
    let value = this.fromConfig[option];
    if (value === undefined) return;
    this.#taken[option] = value;
    if (PATH_OPTIONS.has(option) && typeof value === "string") {
      value = resolveAsWritten(this.#config.baseDir, value);
      if (folder && !namesFolder(value as string)) value = `${value}${sep}`;
    }
    this.options[option] = value;
    const at = this.#config.where(["jobs", "backup", "options", option]);
    this.policy[option] = { value, from: CONFIG_OPTIONS, ...(at === undefined ? {} : { at }) };
  }

  /** `--keep`/`--keep-for`, or (neither given) the config's `keep` and `keepFor`. */
  retention(flags: BackupFlags): void {
    if (flags.keep !== undefined || flags.keepFor !== undefined) {
      if (flags.keep !== undefined) this.flag("keep", flags.keep, "--keep");
      if (flags.keepFor !== undefined) this.flag("keepFor", flags.keepFor, "--keep-for");
    } else {
      this.config("keep");
      this.config("keepFor");
    }
  }

  /** `--store`/`--all`, or (neither given) the config's `store` and `all`. */
  stores(flags: BackupFlags): void {
    if (flags.store !== undefined || flags.all) {
      if (flags.store !== undefined) this.flag("store", flags.store, "--store");
      if (flags.all) this.flag("all", true, "--all");
    } else {
      this.config("store");
      this.config("all");
    }
  }

  /**
   * What to say of a relative path taken from the config that Flowstate up to
   * 0.5 read in the working directory, where files are (see `movedPathNotes`).
   */
  async moved(): Promise<string[]> {
    return await movedPathNotes(
      { name: "backup", pathOptions: [...PATH_OPTIONS] },
      this.#taken,
      this.#config.baseDir,
    );
  }

  /**
   * Check the options as the job would (a config's bare number for a
   * duration, a bad value), each problem of a config option at its place in
   * the file.
   */
  async check(): Promise<void> {
    const config = this.#config;
    if (Object.keys(this.fromConfig).length === 0) return;
    const { job } = await loadConfiguredJob(config, "backup");
    try {
      await resolveJobOptions(job, {}, this.options);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      throw locateJobOptionsError(
        config,
        "backup",
        err,
        (option) => this.policy[option]?.from === CONFIG_OPTIONS,
      );
    }
  }
}

/**
 * The options `flowstate backup` gives the backup job: its flags over
 * `jobs.backup.options` (see the module doc), checked, with where each came
 * from.
 */
export async function backupJobOptions(
  config: ResolvedConfig,
  flags: BackupFlags,
): Promise<
  { options: Record<string, unknown>; policy: BackupPolicy; notes: string[]; moved: string[] }
> {
  const built = new PolicyBuilder(config, flags);
  const fromConfig = built.fromConfig;
  built.stores(flags);
  // `out` and `since` name a file (or, with all, a directory) for the config's stores.
  const all = built.options.all === true;
  const global = config.scopes.global;
  const configStores = all
    ? fromConfig.all === true
    : fromConfig.all !== true && (built.options.store ?? global) === (fromConfig.store ?? global);
  const notes: string[] = built.ignoredNote(flags);
  if (flags.out !== undefined) built.flag("out", resolveAsWritten(Deno.cwd(), flags.out), "--out");
  else if (configStores) built.config("out");
  else if (typeof fromConfig.out === "string" && fromConfig.all === true && !all) {
    // One store of a config whose backups all go into the folder `out`: into it too, where
    // `backup prune` and the config's keep look.
    built.config("out", true);
  } else if (fromConfig.out !== undefined) {
    const at = config.where(["jobs", "backup", "options", "out"]);
    notes.push(
      `${CONFIG_OPTIONS}.out${at === undefined ? "" : ` (${at})`} is where the config's ` +
        `${fromConfig.all === true ? "all: true backups go" : "backup of its store goes"}, ` +
        `not this one's: --out to choose`,
    );
  }
  if (flags.since !== undefined) built.flag("since", resolve(flags.since), "--since");
  else if (configStores && !all) built.config("since");
  if (flags.perKey) built.flag("consistency", "per-key", "--per-key");
  else built.config("consistency");
  built.config("attempts");
  built.retention(flags);
  await built.check();
  return { options: built.options, policy: built.policy, notes, moved: await built.moved() };
}

/** What `flowstate backup prune` prunes, and by which policy. */
export interface PruneTarget {
  /** Every store (`--all`, or `all: true` in the config), or the one named (else the global scope's). */
  all: boolean;
  /** The store, when not `all`. */
  store?: string;
  /** The N newest to keep. */
  keep?: number;
  /** The age under which to keep. */
  keepFor?: string | number;
  /** The directory the backups are in. */
  dir: string;
  /** Each of these, with where it came from. */
  policy: BackupPolicy;
  /** What else to say on the policy line (the config's options left out). */
  notes: string[];
  /** Warnings: a relative `out` of the config that 0.5 read elsewhere, where files are. */
  moved: string[];
}

/**
 * What `flowstate backup prune` prunes: its flags over `jobs.backup.options`
 * (see the module doc), checked, with where each came from. `home`: the
 * project's home (its `backups` folder is the default directory).
 */
export async function pruneJobTarget(
  config: ResolvedConfig,
  home: string,
  flags: BackupFlags & { dir?: string },
): Promise<PruneTarget> {
  const built = new PolicyBuilder(config, flags);
  built.stores(flags);
  built.retention(flags);
  await built.check();
  const out = built.fromConfig.out;
  let dir: string;
  if (flags.dir !== undefined) {
    dir = resolve(flags.dir);
    built.policy.dir = { value: dir, from: "--dir" };
  } else if (typeof out === "string") {
    // Where the config's backups are written (the config file's folder's, when relative): into
    // `out` with all (or a folder `out/`), else beside the file `out`.
    const path = resolve(config.baseDir, out);
    dir = built.fromConfig.all === true || namesFolder(out) ? path : dirname(path);
    built.config("out");
    built.policy.dir = { ...built.policy.out, value: dir };
    delete built.policy.out;
  } else {
    dir = join(home, "backups");
  }
  const { options, policy } = built;
  return {
    all: options.all === true,
    ...(typeof options.store === "string" ? { store: options.store } : {}),
    ...(options.keep === undefined ? {} : { keep: options.keep as number }),
    ...(options.keepFor === undefined ? {} : { keepFor: options.keepFor as string | number }),
    dir,
    policy,
    notes: built.ignoredNote(flags),
    moved: await built.moved(),
  };
}

/**
 * The line saying which options the command took from where, for people
 * (`policy: all (jobs.backup.options, flowstate.yaml:9:20), keep 3 (--keep)`),
 * or `undefined` when every option came from a flag and there is no
 * retention policy (nothing to say that the command line does not).
 */
export function policyLine(
  policy: BackupPolicy,
  notes: readonly string[] = [],
): string | undefined {
  const entries = Object.entries(policy);
  const anyFromConfig = entries.some(([, s]) => s.from === CONFIG_OPTIONS);
  if (
    !anyFromConfig && policy.keep === undefined && policy.keepFor === undefined &&
    notes.length === 0
  ) {
    return undefined;
  }
  const shown = entries.map(([option, { value, from, at }]) =>
    `${option}${
      value === true ? "" : ` ${typeof value === "string" ? value : JSON.stringify(value)}`
    } (${from}${at === undefined ? "" : `, ${at}`})`
  );
  return `policy: ${shown.length === 0 ? "the job's defaults" : shown.join(", ")}${
    anyFromConfig ? `; a flag overrides ${CONFIG_OPTIONS}` : ""
  }${notes.map((note) => `; ${note}`).join("")}`;
}
