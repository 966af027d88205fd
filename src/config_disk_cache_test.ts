import assert from "node:assert/strict";
import { configDiskCacheStats, loadConfigCached } from "./config_disk_cache.ts";
import { loadConfig, type ResolvedConfig } from "./config.ts";
import { ConfigError } from "./errors.ts";
import { codeFingerprint, DiskCache, sha256Hex } from "./_disk_cache.ts";
import { join } from "./_path.ts";

const KEY = "ab".repeat(32);
const SECRETS = {
  DB_PATH: "data/s3cr3t-path.db",
  ENC_KEY: KEY,
  REPORT_TO: "s3cr3t-mail@example.com",
  TOKEN: "s3cr3t-token-value",
  EXTRA_FLOWS: "more-flows",
  TRUSTED: "./nodes/s3cr3t-fast.ts",
};

/** Every section of a config, with `${env.…}` wherever the cache allows it. */
const RICH = `# every section
home: ./.flowstate
stores:
  default:
    plugin: sqlite
    path: \${env.DB_PATH}
    pragmas: [a, "$\${literal}"]
    indexes:
      - { prefix: [flow, orders], path: status }
    search: { prefix: [flow, notes], fields: [body] }
    changes: { keep: 7d }
  shared:
    plugin: memory
    encrypt:
      key: \${env.ENC_KEY}
      plaintext: [status]
scopes:
  global: shared
  flow: default
records: default
flows: [./flows, "\${env.EXTRA_FLOWS}"]
timezone: Europe/Paris
jobs:
  retention:
    schedule: "0 3 * * *"
    timezone: America/New_York
    options: { maxAge: 30d, notify: "\${env.REPORT_TO}" }
    overlap: queue
    missed: run-once
    abandoned: rerun
    jitter: 30s
  gc:
  nightly-report: { module: ./jobs/report.ts, schedule: "@daily" }
  backup: { enabled: false }
runs: { abortGrace: 2s, maxSubRuns: 10 }
nodes:
  trusted: ["\${env.TRUSTED}"]
  workerIdle: 1m
  memoryLimit: 256MiB
serve: { port: 8377, host: 127.0.0.1, token: "\${env.TOKEN}" }
`;

/** Every path of a value (objects and lists), the root included. */
function pathsOf(value: unknown, path: (string | number)[] = []): (string | number)[][] {
  const out = [path];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...pathsOf(v, [...path, i])));
  else if (typeof value === "object" && value !== null) {
    for (const [k, v] of Object.entries(value)) out.push(...pathsOf(v, [...path, k]));
  }
  return out;
}

/** A hit is the full path's config: every field, and `where` at every path. */
function assertSameConfig(hit: ResolvedConfig, full: ResolvedConfig, extraPaths: string[][] = []) {
  const { where: hitWhere, ...hitData } = hit;
  const { where: fullWhere, ...fullData } = full;
  assert.deepStrictEqual(hitData, fullData);
  const paths = [
    ...pathsOf(fullData),
    ...extraPaths,
    ["stores", "default", "nope", "deeper"],
    ["jobs", "retention", "options", "other"],
    ["nothing"],
  ];
  for (const path of paths) assert.equal(hitWhere(path), fullWhere(path), JSON.stringify(path));
}

/** A temporary project with this `flowstate.yaml`, removed when disposed. */
async function project(text: string): Promise<{ cwd: string } & AsyncDisposable> {
  const cwd = await Deno.makeTempDir({ prefix: "flowstate-configcache-" });
  await Deno.writeTextFile(join(cwd, "flowstate.yaml"), text);
  return { cwd, [Symbol.asyncDispose]: () => Deno.remove(cwd, { recursive: true }) };
}

async function cacheFiles(cwd: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(join(cwd, ".flowstate/cache/config"))) names.push(e.name);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return names.sort();
}

/**
 * Loads through the cache and saves (as a run that started does), and says
 * whether it was a hit and whether it wrote.
 */
async function cached(cwd: string, env: Record<string, string> = SECRETS) {
  const before = { ...configDiskCacheStats };
  const files = await cacheFiles(cwd);
  const { config, hit, save } = await loadConfigCached({ cwd, env });
  assert.equal(hit, configDiskCacheStats.hits === before.hits + 1);
  assert.deepEqual(await cacheFiles(cwd), files, "the load writes nothing before save()");
  await save();
  return { config, hit, wrote: configDiskCacheStats.writes === before.writes + 1 };
}

Deno.test("loadConfigCached() returns on a hit the config the full path resolves, every section", async () => {
  await using dir = await project(RICH);
  const cwd = dir.cwd;
  const miss = await cached(cwd);
  assert.equal(miss.hit, false);
  assert.equal(miss.wrote, true);
  const full = await loadConfig({ cwd, env: SECRETS });
  assertSameConfig(miss.config, full);
  const hit = await cached(cwd);
  assert.equal(hit.hit, true);
  assert.equal(hit.wrote, false);
  assertSameConfig(hit.config, full);
  // The substituted values are there, and the rest as resolved.
  assert.equal(hit.config.stores.default.path, SECRETS.DB_PATH);
  assert.deepEqual(hit.config.stores.default.pragmas, ["a", "${literal}"]);
  assert.equal(hit.config.serve.token, SECRETS.TOKEN);
  assert.equal(hit.config.jobs.retention.options.notify, SECRETS.REPORT_TO);
  assert.equal(hit.config.where(["serve", "token"]), "flowstate.yaml:40:39");
  assert.ok(Object.isFrozen(hit.config) && Object.isFrozen(hit.config.stores.default));
});

Deno.test("loadConfigCached() stores no environment value, nor its hash", async () => {
  await using dir = await project(RICH);
  const cwd = dir.cwd;
  await cached(cwd);
  assert.equal((await cached(cwd)).hit, true);
  const files = await cacheFiles(cwd);
  assert.equal(files.length, 1);
  const text = await Deno.readTextFile(join(cwd, ".flowstate/cache/config", files[0]));
  assert.match(text, /\$\{env\.TOKEN\}/); // the template, as written
  for (const [name, value] of Object.entries(SECRETS)) {
    assert.ok(!text.includes(value), `${name}'s value is in the cache`);
    assert.ok(!text.includes(await sha256Hex(value)), `${name}'s hash is in the cache`);
    const base64 = btoa(value);
    assert.ok(!text.includes(base64), `${name}'s base64 is in the cache`);
  }
});

Deno.test("loadConfigCached() substitutes the current environment on a hit, and fails as the full path does", async () => {
  await using dir = await project(RICH);
  const cwd = dir.cwd;
  await cached(cwd);
  const changed = { ...SECRETS, TOKEN: "another-token", DB_PATH: "other.db" };
  const hit = await cached(cwd, changed);
  assert.equal(hit.hit, true);
  assertSameConfig(hit.config, await loadConfig({ cwd, env: changed }));
  assert.equal(hit.config.serve.token, "another-token");

  // A value that a check refuses, an unset variable, an empty token: the full path's error.
  const refused: Record<string, string>[] = [
    { ...SECRETS, ENC_KEY: "short" },
    { ...SECRETS, TOKEN: "" },
    { ...SECRETS, EXTRA_FLOWS: "" },
    Object.fromEntries(Object.entries(SECRETS).filter(([k]) => k !== "REPORT_TO")),
  ];
  for (const env of refused) {
    const full = await loadConfig({ cwd, env }).catch((e) => e);
    assert.ok(full instanceof ConfigError, JSON.stringify(env));
    assert.match(full.message, /flowstate\.yaml:\d+:\d+/);
    const before = { ...configDiskCacheStats };
    const got = await loadConfigCached({ cwd, env }).then(() => "loaded", (e) => e);
    assert.ok(got instanceof ConfigError);
    assert.equal(got.message, full.message);
    assert.equal(configDiskCacheStats.hits, before.hits, "not a hit");
  }
  assert.equal((await cacheFiles(cwd)).length, 1);
});

Deno.test("loadConfigCached() misses for a changed file, and for a corrupt or foreign entry", async () => {
  await using dir = await project(RICH);
  const cwd = dir.cwd;
  await cached(cwd);
  const [first] = await cacheFiles(cwd);
  await Deno.writeTextFile(
    join(cwd, "flowstate.yaml"),
    RICH.replace("maxSubRuns: 10", "maxSubRuns: 11"),
  );
  const edited = await cached(cwd);
  assert.equal(edited.hit, false);
  assert.equal(edited.wrote, true);
  assert.equal(edited.config.runs.maxSubRuns, 11);
  assert.equal((await cacheFiles(cwd)).length, 2);

  const entry = join(cwd, ".flowstate/cache/config", first);
  await Deno.writeTextFile(join(cwd, "flowstate.yaml"), RICH);
  const good = await Deno.readTextFile(entry);
  const [sum, body] = [good.slice(0, good.indexOf("\n")), good.slice(good.indexOf("\n") + 1)];
  const changedBody = body.replace('"maxSubRuns":10', '"maxSubRuns":12');
  assert.notEqual(changedBody, body);
  for (
    const [what, text] of [
      ["truncated", good.slice(0, good.length - 9)],
      ["not JSON", "garbage"],
      ["edited without its checksum", `${sum}\n${changedBody}`],
      [
        "foreign (another key)",
        `${await sha256Hex(body.replace(/"key":"\w+"/, '"key":"x"'))}\n${
          body.replace(/"key":"\w+"/, '"key":"x"')
        }`,
      ],
      [
        "foreign (another format)",
        `${await sha256Hex(body.replace('"format":1', '"format":0'))}\n${
          body.replace('"format":1', '"format":0')
        }`,
      ],
    ]
  ) {
    await Deno.writeTextFile(entry, text);
    const got = await cached(cwd);
    assert.equal(got.hit, false, what);
    assert.equal(got.wrote, true, what);
    assertSameConfig(got.config, await loadConfig({ cwd, env: SECRETS }));
    assert.equal(await Deno.readTextFile(entry), good, `${what}: written again`);
  }
});

Deno.test("loadConfigCached() does not cache a config whose checks would depend on the environment", async () => {
  const cases = [
    'stores:\n  main: { plugin: "${env.PLUGIN}" }\n',
    "stores:\n  main: { plugin: memory }\ntimezone: ${env.TZ_NAME}\n",
    'stores:\n  main: { plugin: memory }\njobs:\n  gc: { schedule: "${env.CRON}" }\n',
    'stores:\n  main: { plugin: memory }\nscopes: { flow: "${env.STORE}" }\n',
    'stores:\n  main: { plugin: memory, encrypt: { key: "' + KEY +
    '", plaintext: ["${env.P}"] } }\n',
    // A home other than the default: the entry would be outside the home.
    "home: ./elsewhere\nstores:\n  main: { plugin: memory }\n",
  ];
  const env = { PLUGIN: "memory", TZ_NAME: "UTC", CRON: "@daily", STORE: "main", P: "a" };
  for (const text of cases) {
    await using dir = await project(text);
    const cwd = dir.cwd;
    for (let i = 0; i < 2; i++) {
      const got = await cached(cwd, env);
      assert.equal(got.hit || got.wrote, false, text);
      assertSameConfig(got.config, await loadConfig({ cwd, env }));
    }
    assert.deepEqual(await cacheFiles(cwd), []);
    for await (const e of Deno.readDir(cwd)) assert.notEqual(e.name, "elsewhere");
  }
});

Deno.test("loadConfigCached() caches under --home or FLOWSTATE_HOME, and not when the home cannot be written", async () => {
  await using dir = await project("stores:\n  main: { plugin: memory }\n");
  const cwd = dir.cwd;
  for (const options of [{ home: "h1" }, { env: { FLOWSTATE_HOME: "h2" } }]) {
    const first = await loadConfigCached({ cwd, ...options });
    assert.equal(first.hit, false);
    await first.save();
    const again = await loadConfigCached({ cwd, ...options });
    assert.equal(again.hit, true);
    assertSameConfig(again.config, first.config);
  }
  await Deno.stat(join(cwd, "h1/cache/config"));
  await Deno.stat(join(cwd, "h2/cache/config"));
  // A file where the cache directory would be: nothing is written, nothing is said.
  await Deno.mkdir(join(cwd, "h3/cache"), { recursive: true });
  await Deno.writeTextFile(join(cwd, "h3/cache/config"), "");
  for (let i = 0; i < 2; i++) {
    const got = await cached(cwd, { FLOWSTATE_HOME: "h3" });
    assert.equal(got.hit || got.wrote, false);
    assert.equal(got.config.home, join(cwd, "h3"));
  }
});

Deno.test("codeFingerprint() changes with the version in deno.json and with an edited module", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "src"));
    await Deno.writeTextFile(join(dir, "deno.json"), '{ "version": "1.0.0" }');
    await Deno.writeTextFile(join(dir, "src/a.ts"), "export const a = 1;\n");
    const base = new URL(`file://${dir}/src/self.ts`).href;
    const print = () => codeFingerprint(base, ["./a.ts"], 1);
    const first = print();
    assert.ok(first?.includes(Deno.version.deno));
    assert.equal(print(), first);
    assert.notEqual(codeFingerprint(base, ["./a.ts"], 2), first);
    await Deno.writeTextFile(join(dir, "deno.json"), '{ "version": "1.0.1" }');
    const upgraded = print();
    assert.notEqual(upgraded, first);
    await Deno.writeTextFile(join(dir, "src/a.ts"), "export const a = 22;\n");
    assert.notEqual(print(), upgraded);
    assert.equal(
      codeFingerprint("https://jsr.io/@flowstate/core/1.0.0/src/x.ts", [], 1)?.includes("1.0.0"),
      true,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("DiskCache: an entry written by one version is a miss for the next", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "src"));
    await Deno.writeTextFile(join(dir, "deno.json"), '{ "version": "1.0.0" }');
    const base = new URL(`file://${dir}/src/self.ts`).href;
    // One DiskCache per process: its fingerprint is read once.
    const open = () =>
      new DiskCache<{ n: number }>(base, {
        format: 1,
        modules: [],
        valid: (e) => typeof e.n === "number",
      });
    const entries = join(dir, "cache");
    const before = open();
    const key = (await before.keyOf("/p/flowstate.yaml", "text"))!;
    await before.write(entries, key, "/p/flowstate.yaml", { n: 1 });
    assert.equal(before.stats.writes, 1);
    assert.deepEqual((await open().read(entries, key, "/p/flowstate.yaml"))?.n, 1);
    assert.equal(await open().read(entries, key, "/p/other.yaml"), undefined);
    await Deno.writeTextFile(join(dir, "deno.json"), '{ "version": "1.1.0" }');
    const after = open();
    const next = (await after.keyOf("/p/flowstate.yaml", "text"))!;
    assert.notEqual(next, key);
    assert.equal(await after.read(entries, next, "/p/flowstate.yaml"), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
