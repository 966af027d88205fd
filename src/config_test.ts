import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig } from "./config.ts";
import { parseConfigText } from "./config_file.ts";
import { ConfigError } from "./errors.ts";
import { definePlugin } from "./plugin.ts";
import memory from "../plugins/memory/mod.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-config-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Parse `text` as `/project/flowstate.yaml` and return the ConfigError message. */
function errorOf(text: string, env: Record<string, string> = {}): string {
  try {
    parseConfigText(text, { file: "/project/flowstate.yaml", cwd: "/project", env: (n) => env[n] });
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
    return err.message;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("loadConfig() without a file gives one sqlite store named default under <cwd>/.flowstate", async () => {
  await withTempDir(async (dir) => {
    const config = await loadConfig({ cwd: dir, env: {} });
    assert.equal(config.file, null);
    assert.equal(config.home, join(dir, ".flowstate"));
    assert.deepEqual(config.stores, {
      default: { plugin: "sqlite", path: join(dir, ".flowstate", "state.db") },
    });
    assert.deepEqual(config.scopes, { global: "default", flow: "default", node: "default" });
    assert.equal(config.where(["stores"]), undefined);
  });
});

Deno.test("loadConfig() puts the default store under $FLOWSTATE_HOME, resolved against cwd", async () => {
  await withTempDir(async (dir) => {
    const config = await loadConfig({ cwd: dir, env: { FLOWSTATE_HOME: "state/home" } });
    assert.equal(config.home, join(dir, "state", "home"));
    assert.equal(config.stores.default.path, join(dir, "state", "home", "state.db"));
    const absolute = await loadConfig({ cwd: dir, env: { FLOWSTATE_HOME: "/srv/flowstate" } });
    assert.equal(absolute.stores.default.path, "/srv/flowstate/state.db");
  });
});

Deno.test("loadConfig() reads FLOWSTATE_HOME from Deno.env by default", async () => {
  // In a child process: setting the variable here would leak into the test
  // files that run beside this one (`deno test --parallel`).
  await withTempDir(async (dir) => {
    const script = `import { loadConfig } from ${
      JSON.stringify(import.meta.resolve("./config.ts"))
    };
      console.log((await loadConfig({ cwd: ${JSON.stringify(dir)} })).home);`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", script],
      env: { FLOWSTATE_HOME: join(dir, "from-env"), NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.equal(new TextDecoder().decode(out.stdout).trim(), join(dir, "from-env"));
  });
});

Deno.test("loadConfig() home: the option beats the file's home, which beats FLOWSTATE_HOME", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "conf"));
    await Deno.writeTextFile(join(dir, "conf", "fs.yaml"), "home: ./data\n");
    const env = { FLOWSTATE_HOME: "/elsewhere" };
    const fromFile = await loadConfig({ cwd: dir, config: "conf/fs.yaml", env });
    assert.equal(fromFile.home, join(dir, "conf", "data"));
    assert.equal(fromFile.stores.default.path, join(dir, "conf", "data", "state.db"));
    const fromOption = await loadConfig({ cwd: dir, config: "conf/fs.yaml", env, home: "h" });
    assert.equal(fromOption.home, join(dir, "h"));
  });
});

Deno.test("loadConfig() finds flowstate.yaml in cwd and resolves relative paths against its directory", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main:\n    plugin: memory\n    snapshot: main.json\n",
    );
    const config = await loadConfig({ cwd: dir, env: {} });
    assert.equal(config.file, join(dir, "flowstate.yaml"));
    assert.equal(config.baseDir, dir);
    assert.deepEqual(config.stores, { main: { plugin: "memory", snapshot: "main.json" } });
    assert.equal(config.where(["stores", "main", "snapshot"]), "flowstate.yaml:4:5");
  });
});

Deno.test("loadConfig() with a config path that does not exist is a ConfigError", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      loadConfig({ cwd: dir, config: "missing.yaml", env: {} }),
      (err: Error) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.message, "Cannot read config file missing.yaml: the file does not exist");
        return true;
      },
    );
  });
});

Deno.test("loadConfig() rejects a config that is neither a path nor an object", async () => {
  await assert.rejects(
    loadConfig({ config: 42 as unknown as string }),
    TypeError,
  );
});

Deno.test("parseConfigText() maps every scope to the store named default, else the first", () => {
  const first = parseConfigText(
    "stores:\n  a: { plugin: memory }\n  b: { plugin: memory }\n",
    { file: "/p/flowstate.yaml", cwd: "/p", env: () => undefined },
  );
  assert.deepEqual(first.scopes, { global: "a", flow: "a", node: "a" });
  const named = parseConfigText(
    "stores:\n  a: { plugin: memory }\n  default: { plugin: memory }\nscopes:\n  node: a\n",
    { file: "/p/flowstate.yaml", cwd: "/p", env: () => undefined },
  );
  assert.deepEqual(named.scopes, { global: "default", flow: "default", node: "a" });
});

Deno.test("parseConfigText() substitutes ${env.NAME} in every string value, nested and in lists", () => {
  const config = parseConfigText(
    [
      "stores:",
      "  pg:",
      "    plugin: memory",
      "    url: postgres://${env.DB_USER}@${env.DB_HOST}/app",
      "    tags: [a, '${env.TAG}']",
      "    nested: { deep: '${ env.TAG }' }",
      "    count: 3",
    ].join("\n"),
    {
      file: "/p/flowstate.yaml",
      env: (name) => ({ DB_USER: "me", DB_HOST: "db", TAG: "t1" })[name],
    },
  );
  assert.deepEqual(config.stores.pg, {
    plugin: "memory",
    url: "postgres://me@db/app",
    tags: ["a", "t1"],
    nested: { deep: "t1" },
    count: 3,
  });
});

Deno.test("parseConfigText() keeps $${...} as a literal ${...}", () => {
  const config = parseConfigText(
    "stores:\n  m: { plugin: memory, note: 'cost: $${env.PRICE} and $$5' }\n",
    { file: "/p/flowstate.yaml", env: () => "SHOULD-NOT-APPEAR" },
  );
  assert.equal(config.stores.m.note, "cost: ${env.PRICE} and $$5");
});

Deno.test("parseConfigText() substitutes an empty variable as an empty string", () => {
  const config = parseConfigText(
    "stores:\n  m: { plugin: memory, note: 'x${env.EMPTY}y' }\n",
    { file: "/p/flowstate.yaml", env: () => "" },
  );
  assert.equal(config.stores.m.note, "xy");
});

Deno.test("parseConfigText() names an unset variable, its field and file:line:column", () => {
  assert.equal(
    errorOf("stores:\n  pg:\n    plugin: memory\n    url: ${env.DATABASE_URL}\n"),
    "flowstate.yaml:4:10: stores.pg.url: environment variable DATABASE_URL is not set " +
      "(used as ${env.DATABASE_URL}); set it, or write $${env.DATABASE_URL} for a literal",
  );
});

Deno.test("parseConfigText() rejects a substitution other than ${env.NAME}", () => {
  assert.equal(
    errorOf("home: /data/${HOME}\n"),
    'flowstate.yaml:1:7: home: cannot substitute "${HOME}": only ${env.NAME} is supported; ' +
      'write $${HOME} for a literal "${HOME}"',
  );
});

Deno.test("parseConfigText() rejects an unknown top-level field with a suggestion", () => {
  assert.equal(
    errorOf("stores:\n  m: { plugin: memory }\nscope:\n  global: m\n"),
    'flowstate.yaml:3:1: scope: unknown field (did you mean "scopes"?); ' +
      "the top level allows stores, scopes, home, records, flows, timezone, jobs, runs, nodes, serve",
  );
});

Deno.test("parseConfigText() rejects an unknown scope with a suggestion", () => {
  assert.equal(
    errorOf("stores:\n  m: { plugin: memory }\nscopes:\n  globl: m\n"),
    'flowstate.yaml:4:3: scopes.globl: unknown scope (did you mean "global"?); ' +
      "the scopes are global, flow, node",
  );
});

Deno.test("parseConfigText() rejects a scope that names an unknown store", () => {
  assert.equal(
    errorOf(
      "stores:\n  main: { plugin: memory }\n  cache: { plugin: memory }\nscopes:\n  flow: mian\n",
    ),
    'flowstate.yaml:5:3: scopes.flow: no store named "mian" (did you mean "main"?); ' +
      'the stores are "main", "cache"',
  );
});

Deno.test("parseConfigText() rejects a store without a plugin, pointing at the store", () => {
  assert.equal(
    errorOf("stores:\n  main:\n    path: x.db\n"),
    'flowstate.yaml:2:3: stores.main: missing "plugin"; add one, like "plugin: sqlite" ' +
      "(built-ins: memory, jsonfile, sqlite, postgres; or a ./file.ts path, or an npm:/jsr:/https: specifier)",
  );
});

Deno.test("parseConfigText() rejects a plugin that is not a string", () => {
  assert.equal(
    errorOf("stores:\n  main:\n    plugin: [sqlite]\n"),
    "flowstate.yaml:3:5: stores.main.plugin: expected a plugin name or module specifier, " +
      "got a list (built-ins: memory, jsonfile, sqlite, postgres)",
  );
});

Deno.test("parseConfigText() rejects an unknown built-in plugin name with a suggestion", () => {
  const message = errorOf("stores:\n  main:\n    plugin: sqllite\n");
  assert.match(
    message,
    /^flowstate\.yaml:3:5: stores\.main\.plugin: unknown plugin "sqllite" \(did you mean "sqlite"\?\): use a built-in/,
  );
});

Deno.test("parseConfigText() rejects a store that is not a mapping", () => {
  assert.equal(
    errorOf("stores:\n  main: sqlite\n"),
    'flowstate.yaml:2:3: stores.main: expected a mapping like "{ plugin: sqlite }", got the string "sqlite"',
  );
});

Deno.test("parseConfigText() rejects an empty stores mapping", () => {
  assert.match(
    errorOf("home: x\nstores: {}\n"),
    /^flowstate\.yaml:2:1: stores: no stores defined; add one like "default: \{ plugin: sqlite \}", or remove "stores"/,
  );
});

Deno.test("parseConfigText() rejects a home that is not a string", () => {
  assert.equal(
    errorOf("home: 42\n"),
    "flowstate.yaml:1:1: home: expected a directory path, got the number 42",
  );
});

Deno.test("parseConfigText() reports every shape problem at once, in file order", () => {
  assert.equal(
    errorOf("extra: 3\nhome: 1\nstores:\n  a: 2\n"),
    [
      "flowstate.yaml:1:1: extra: unknown field; the top level allows stores, scopes, home, records, flows, timezone, jobs, runs, nodes, serve",
      "flowstate.yaml:2:1: home: expected a directory path, got the number 1",
      'flowstate.yaml:4:3: stores.a: expected a mapping like "{ plugin: sqlite }", got the number 2',
    ].join("\n"),
  );
});

Deno.test("parseConfigText() reports every problem at once, each with its place, path and issue", () => {
  const text = [
    "stores:",
    '  main: { plugin: sqlte, path: "${env.NOPE}" }',
    "scopes: { global: mian }",
    "timezone: Europe/Pari",
    "jobs:",
    "  retention: { schedule: '@nightly', jitter: 5x }",
    "",
  ].join("\n");
  let error: unknown;
  try {
    parseConfigText(text, {
      file: "/project/flowstate.yaml",
      cwd: "/project",
      env: () => undefined,
    });
  } catch (err) {
    error = err;
  }
  assert.ok(error instanceof ConfigError);
  assert.equal(error.code, "CONFIG_INVALID");
  assert.equal(error.file, "flowstate.yaml");
  assert.deepEqual(error.issues.map((i) => [i.path.join("."), i.line, i.column]), [
    ["stores.main.plugin", 2, 11],
    ["stores.main.path", 2, 32],
    ["scopes.global", 3, 11],
    ["timezone", 4, 1],
    ["jobs.retention.schedule", 6, 16],
    ["jobs.retention.jitter", 6, 38],
  ]);
  assert.deepEqual(error.path, ["stores", "main", "plugin"]);
  const lines = error.message.split("\n");
  assert.equal(lines.length, 6);
  assert.match(
    lines[0],
    /^flowstate\.yaml:2:11: stores\.main\.plugin: unknown plugin "sqlte" \(did you mean "sqlite"\?\)/,
  );
  assert.match(lines[1], /environment variable NOPE is not set/);
  assert.match(lines[2], /no store named "mian" \(did you mean "main"\?\)/);
  assert.match(lines[3], /unknown time zone "Europe\/Pari"/);
  assert.match(lines[4], /unknown cron nickname "@nightly"/);
  assert.match(lines[5], /5x/);
});

Deno.test("parseConfigText() gives file:line:column for malformed YAML", () => {
  assert.equal(
    errorOf("stores:\n  main:\n    plugin: memory\n   x: [\n"),
    [
      "flowstate.yaml:4:4: invalid YAML: `x:` is indented 3 spaces; the keys beside it use 4: indent it like them",
      "flowstate.yaml:4:7: invalid YAML: this [ opens a list that no ] closes: add the ] (a list that goes on over more lines needs them indented deeper than the key it belongs to)",
    ].join("\n"),
  );
});

Deno.test("parseConfigText() says a second YAML document is one too many, where it starts", () => {
  assert.equal(
    errorOf("stores:\n  main: { plugin: memory }\n---\nhome: x\n"),
    "flowstate.yaml:3:1: invalid YAML: a second YAML document starts here (`---`); a config file holds one: remove the `---` and what follows",
  );
});

Deno.test("parseConfigText() rejects duplicate keys with their position, the key and where it first is", () => {
  assert.equal(
    errorOf("home: a\nhome: b\n"),
    'flowstate.yaml:2:1: home: duplicate key "home" (first at line 1, column 1): keep one of them',
  );
  assert.equal(
    errorOf("stores:\n  main:\n    plugin: memory\n    plugin: sqlite\n"),
    'flowstate.yaml:4:5: stores.main.plugin: duplicate key "plugin" (first at line 3, column 5): keep one of them',
  );
});

Deno.test("parseConfigText() rejects a document that is not a mapping", () => {
  assert.equal(
    errorOf("- stores\n"),
    "flowstate.yaml:1:1: the config must be a mapping with fields stores, scopes, home, records, flows, timezone, jobs, runs, nodes, serve, not a list",
  );
});

Deno.test("parseConfigText() treats an empty file as the default config", () => {
  const config = parseConfigText("# nothing yet\n", {
    file: "/p/flowstate.yaml",
    cwd: "/p",
    env: () => undefined,
  });
  assert.deepEqual(Object.keys(config.stores), ["default"]);
  assert.equal(config.stores.default.path, "/p/.flowstate/state.db");
});

Deno.test("parseConfigText() shows a file outside cwd by its absolute path", () => {
  try {
    parseConfigText("bad: 1\n", { file: "/etc/fs/flowstate.yaml", cwd: "/p", env: () => "" });
    assert.fail("expected a ConfigError");
  } catch (err) {
    assert.match((err as Error).message, /^\/etc\/fs\/flowstate\.yaml:1:1: bad: unknown field/);
  }
});

Deno.test("loadConfig() with an object validates it without file positions and keeps ${} as is", async () => {
  const config = await loadConfig({
    config: { stores: { m: { plugin: "memory", note: "${env.X}" } } },
    cwd: "/p",
    env: {},
  });
  assert.equal(config.stores.m.note, "${env.X}");
  assert.equal(config.baseDir, "/p");
  assert.equal(config.where(["stores", "m"]), undefined);
  await assert.rejects(
    loadConfig({ config: { stores: { m: {} } } as never, cwd: "/p", env: {} }),
    (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /^Invalid config: stores\.m: missing "plugin"/);
      return true;
    },
  );
});

Deno.test("loadConfig() accepts a plugin object in an object config", async () => {
  const custom = definePlugin({
    name: "custom",
    optionsSchema: memory.optionsSchema,
    open: memory.open,
  });
  const config = await loadConfig({
    config: { stores: { c: { plugin: custom as never } } },
    env: {},
  });
  assert.equal(config.stores.c.plugin, custom);
});

// ---------------------------------------------------------------------------
// flows, timezone, jobs

function parse(text: string) {
  return parseConfigText(text, { file: "/project/flowstate.yaml", cwd: "/project", env: () => "" });
}

Deno.test("parseConfigText() schedules retention and gc by default, in UTC", () => {
  const config = parse("stores:\n  m: { plugin: memory }\n");
  assert.equal(config.timezone, "UTC");
  assert.deepEqual(config.flows, []);
  const defaults = {
    enabled: true,
    timezone: "UTC",
    options: {},
    overlap: "skip",
    missed: "skip",
    abandoned: "skip",
    jitterMs: 0,
  };
  assert.deepEqual(config.jobs, { retention: defaults, gc: defaults });
});

Deno.test("parseConfigText() resolves flows, timezone and every job setting", () => {
  const config = parse(
    [
      "flows: [./flows, ./other.flow.yaml]",
      "timezone: Europe/Paris",
      "jobs:",
      '  retention: { schedule: "0 3 * * *", options: { maxAge: 30d }, overlap: skip, missed: run-once, abandoned: rerun, jitter: 30s }',
      "  gc: {}",
      '  nightly-report: { module: ./jobs/report.ts, schedule: "@daily", timezone: America/New_York }',
      "  backup: { enabled: false }",
      "  archive:",
    ].join("\n"),
  );
  assert.deepEqual(config.flows, ["/project/flows", "/project/other.flow.yaml"]);
  assert.equal(config.timezone, "Europe/Paris");
  assert.deepEqual(config.jobs.retention, {
    enabled: true,
    schedule: "0 3 * * *",
    timezone: "Europe/Paris",
    options: { maxAge: "30d" },
    overlap: "skip",
    missed: "run-once",
    abandoned: "rerun",
    jitterMs: 30_000,
  });
  assert.deepEqual(config.jobs.gc.schedule, undefined);
  assert.deepEqual(config.jobs["nightly-report"], {
    enabled: true,
    module: "./jobs/report.ts",
    schedule: "@daily",
    timezone: "America/New_York",
    options: {},
    overlap: "skip",
    missed: "skip",
    abandoned: "skip",
    jitterMs: 0,
  });
  assert.equal(config.jobs.backup.enabled, false);
  assert.equal(config.jobs.archive.enabled, true, "an empty entry is a job with defaults");
  assert.deepEqual(Object.keys(config.jobs), [
    "retention",
    "gc",
    "nightly-report",
    "backup",
    "archive",
  ]);
});

Deno.test("parseConfigText() accepts one flows path as a string", () => {
  assert.deepEqual(parse("flows: ./flows\n").flows, ["/project/flows"]);
});

Deno.test("parseConfigText() rejects an invalid cron expression, naming the job and field", () => {
  assert.equal(
    errorOf('jobs:\n  retention:\n    schedule: "61 3 * * *"\n'),
    'flowstate.yaml:3:5: jobs.retention.schedule: invalid cron expression "61 3 * * *": the minute field "61" is out of range (0-59)',
  );
  assert.equal(
    errorOf('jobs:\n  gc: { schedule: "* * *" }\n'),
    'flowstate.yaml:2:9: jobs.gc.schedule: invalid cron expression "* * *": expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with seconds first), got 3',
  );
  assert.match(
    errorOf('jobs:\n  gc: { schedule: "@nightly" }\n'),
    /^flowstate\.yaml:2:9: jobs\.gc\.schedule: unknown cron nickname "@nightly"/,
  );
});

Deno.test("parseConfigText() rejects unknown time zones with a suggestion", () => {
  assert.equal(
    errorOf("timezone: Europe/Pariss\n"),
    'flowstate.yaml:1:1: timezone: unknown time zone "Europe/Pariss" (did you mean "Europe/Paris"?); ' +
      'use an IANA name like "Europe/Paris", "America/New_York" or "UTC"',
  );
  assert.match(
    errorOf("jobs:\n  gc: { timezone: America/NewYork }\n"),
    /^flowstate\.yaml:2:9: jobs\.gc\.timezone: unknown time zone "America\/NewYork" \(did you mean "America\/New_York"\?\)/,
  );
});

Deno.test("parseConfigText() rejects an unknown job without a module, with a suggestion", () => {
  assert.equal(
    errorOf("jobs:\n  retension: {}\n"),
    'flowstate.yaml:2:3: jobs.retension: unknown job "retension" (did you mean "retention"?); ' +
      "the built-in jobs are retention, gc, archive, backup, restore, migrate, migrate-store, rekey, build-indexes, " +
      'or give a module, like "retension: { module: ./jobs/retension.ts }"',
  );
  assert.match(
    errorOf("jobs:\n  Nightly: { module: ./n.ts }\n"),
    /jobs\.Nightly: a job name must be lowercase/,
  );
});

Deno.test("parseConfigText() rejects bad job fields with clear messages", () => {
  assert.equal(
    errorOf("jobs:\n  gc: { schedul: '@daily' }\n"),
    'flowstate.yaml:2:9: jobs.gc.schedul: unknown field (did you mean "schedule"?); ' +
      "a job allows module, enabled, schedule, timezone, options, overlap, missed, abandoned, jitter",
  );
  assert.equal(
    errorOf("jobs:\n  gc: { overlap: wait }\n"),
    'flowstate.yaml:2:9: jobs.gc.overlap: expected one of "skip", "queue", got the string "wait"',
  );
  assert.equal(
    errorOf("jobs:\n  gc: { missed: all }\n"),
    'flowstate.yaml:2:9: jobs.gc.missed: expected one of "skip", "run-once", got the string "all"',
  );
  assert.equal(
    errorOf("jobs:\n  gc: { abandoned: retry }\n"),
    'flowstate.yaml:2:9: jobs.gc.abandoned: expected one of "skip", "rerun", got the string "retry"',
  );
  assert.match(
    errorOf("jobs:\n  gc: { jitter: -5 }\n"),
    /^flowstate\.yaml:2:9: jobs\.gc\.jitter: expected a duration like .* got -5$/,
  );
  assert.match(
    errorOf("jobs:\n  gc: { jitter: soon }\n"),
    /^flowstate\.yaml:2:9: jobs\.gc\.jitter: expected a duration like/,
  );
  assert.equal(
    errorOf("jobs:\n  gc: { enabled: no }\n"),
    'flowstate.yaml:2:9: jobs.gc.enabled: expected true or false, got the string "no"',
  );
  assert.equal(
    errorOf("jobs:\n  gc: { options: [1] }\n"),
    "flowstate.yaml:2:9: jobs.gc.options: expected a mapping of job options, got a list",
  );
  assert.equal(
    errorOf("jobs: [gc]\n"),
    `flowstate.yaml:1:1: jobs: expected a mapping of job names to settings, like "retention: { schedule: '0 3 * * *' }", got a list`,
  );
  assert.equal(
    errorOf("flows: { a: b }\n"),
    "flowstate.yaml:1:1: flows: expected a list of flow files or directories, got a mapping",
  );
});

Deno.test("loadConfig() validates jobs in an object config too", async () => {
  await assert.rejects(
    loadConfig({ config: { jobs: { gc: { schedule: "nope" } } }, cwd: "/p", env: {} }),
    /^ConfigError: Invalid config: jobs\.gc\.schedule: invalid cron expression "nope"/,
  );
});

Deno.test("parseConfigText() quotes only an excerpt of a config that is one long string", () => {
  const text = "x".repeat(1_000_000);
  const message = errorOf(text);
  assert.ok(message.length < 300, `a ${message.length}-character message`);
  assert.match(
    message,
    /the config must be a mapping .*, not the string "x{40}"… \(1000000 characters\)$/,
  );
});

Deno.test("parseConfigText() resolves runs: limits, 5 s and 1000 by default", () => {
  const defaults = parseConfigText("", { file: "/project/flowstate.yaml", cwd: "/project" });
  assert.deepEqual(defaults.runs, { abortGraceMs: 5000, maxSubRuns: 1000, eventFormat: 2 });
  const set = parseConfigText("runs: { abortGrace: 30s, maxSubRuns: 50 }\n", {
    file: "/project/flowstate.yaml",
    cwd: "/project",
  });
  assert.deepEqual(set.runs, { abortGraceMs: 30_000, maxSubRuns: 50, eventFormat: 2 });
});

Deno.test("parseConfigText() rejects bad runs: fields with clear messages", () => {
  assert.equal(
    errorOf("runs: { maxSubRun: 5 }\n"),
    'flowstate.yaml:1:9: runs.maxSubRun: unknown field (did you mean "maxSubRuns"?); ' +
      "runs allows abortGrace, maxSubRuns, timeout, eventFormat, nodesFormat, onFailure",
  );
  assert.match(
    errorOf("runs: { abortGrace: soon }\n"),
    /^flowstate\.yaml:1:9: runs\.abortGrace: expected a duration like/,
  );
  assert.equal(
    errorOf("runs: { maxSubRuns: 2.5 }\n"),
    "flowstate.yaml:1:9: runs.maxSubRuns: expected a whole number, got the number 2.5",
  );
  assert.equal(
    errorOf("runs: { maxSubRuns: -1 }\n"),
    "flowstate.yaml:1:9: runs.maxSubRuns: must be at least 0, got the number -1",
  );
  assert.equal(
    errorOf("runs: 5\n"),
    "flowstate.yaml:1:1: runs: expected a mapping of run limits (abortGrace, maxSubRuns, timeout, eventFormat, nodesFormat, onFailure), got the number 5",
  );
  assert.equal(
    errorOf("runs:\n  eventFormat: 3\n"),
    "flowstate.yaml:2:3: runs.eventFormat: expected 1 (the form Flowstate 0.4 reads) or 2 " +
      "(compact, the default), got the number 3",
  );
  assert.equal(
    errorOf('runs: { eventFormat: "1" }\n'),
    "flowstate.yaml:1:9: runs.eventFormat: expected 1 (the form Flowstate 0.4 reads) or 2 " +
      '(compact, the default), got the string "1"',
  );
  assert.equal(
    errorOf("runs:\n  nodesFormat: 0\n"),
    "flowstate.yaml:2:3: runs.nodesFormat: expected 1 (the form Flowstate 0.5 reads) or 2 " +
      "(compact, the default unless eventFormat is 1), got the number 0",
  );
});

Deno.test("parseConfigText() takes runs: { eventFormat: 1 } for a fleet with 0.4 processes", () => {
  const config = parseConfigText("runs: { eventFormat: 1 }\n", {
    file: "/project/flowstate.yaml",
    cwd: "/project",
  });
  assert.equal(config.runs.eventFormat, 1);
});

Deno.test("parseConfigText() takes serve: { port, host, token } and locates a bad field", async () => {
  const config = await loadConfig({
    config: {
      stores: { m: { plugin: "memory" } },
      serve: { port: 0, host: "0.0.0.0", token: "t" },
    },
  });
  assert.deepEqual(config.serve, { port: 0, host: "0.0.0.0", token: "t" });
  assert.equal(
    errorOf("serve:\n  port: http\n"),
    'flowstate.yaml:2:3: serve.port: expected a port number from 0 to 65535, got the string "http"',
  );
  assert.equal(
    errorOf("serve:\n  tokne: x\n"),
    'flowstate.yaml:2:3: serve.tokne: unknown field (did you mean "token"?); serve allows port, host, token',
  );
});

Deno.test("openRuntime() without env permission says once which variable to grant (not Deno's 'run again' plus ours)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-noenv-" });
  try {
    const script = join(dir, "open.ts");
    await Deno.writeTextFile(
      script,
      `import { openRuntime } from ${JSON.stringify(new URL("../mod.ts", import.meta.url).href)};
try {
  await openRuntime({ cwd: ${JSON.stringify(dir)} });
} catch (err) {
  console.log((err as Error).message);
}
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--config",
        fileURLToPath(new URL("../deno.json", import.meta.url)),
        "--allow-read",
        script,
      ],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    assert.equal(
      text,
      "Cannot read environment variable FLOWSTATE_HOME: this process has no permission to read it; grant it with --allow-env=FLOWSTATE_HOME (or --allow-env)",
      new TextDecoder().decode(out.stderr),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
