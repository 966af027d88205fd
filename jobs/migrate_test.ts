import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime } from "../src/runtime.ts";
import { openStore } from "../src/plugin.ts";
import { runJob } from "../src/jobs/run.ts";
import { fakeClock } from "../src/testing/clock.ts";
import type { Store } from "../src/store/types.ts";
import { UsageError } from "../src/cli/input.ts";
import {
  migrateDataDown,
  migrateDataPending,
  migrateDataStatus,
  migrateDataUp,
} from "../src/cli/migrate.ts";
import {
  compareMigrationIds,
  defineMigration,
  findMigrations,
  migrateDown,
  type MigrateResult,
  migrateUp,
  MIGRATION_LOCK_KEY,
  MigrationError,
  type MigrationRecord,
  MIGRATIONS_PREFIX,
  migrationStatus,
} from "./migrate.ts";
import type { MigrationGate } from "../tests/fixtures/migrations/gate/0001_wait_for_gate.ts";

const FIXTURES = new URL("../tests/fixtures/migrations/", import.meta.url).pathname;
const BASIC = join(FIXTURES, "basic");
const FAILING = join(FIXTURES, "failing");
const GATE = join(FIXTURES, "gate");
const TAKEOVER = join(FIXTURES, "takeover");
const IRREVERSIBLE = join(FIXTURES, "irreversible");
const RENEWAL = join(FIXTURES, "renewal");
const ALL_BASIC = ["0001_seed_users", "0002_index_by_team", "0010_add_email"];

function memoryStore(clock = fakeClock()): Promise<Store> {
  return openStore({ plugin: "memory" }, { name: "main", clock });
}

async function dump(store: Store, prefix: string[] = []): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for await (const e of store.list({ prefix })) out[e.key.join("/")] = e.value;
  return out;
}

async function records(store: Store): Promise<Record<string, MigrationRecord>> {
  const out: Record<string, MigrationRecord> = {};
  for await (const e of store.list<MigrationRecord>({ prefix: MIGRATIONS_PREFIX })) {
    out[e.key[2]] = e.value;
  }
  return out;
}

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A temp folder of plain-JS migrations that each set one key (edited and deleted by tests). */
async function tempMigrations(ids: string[]): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-migrations-" });
  for (const id of ids) await writeSetter(dir, id, 1);
  return dir;
}

function writeSetter(dir: string, id: string, value: number): Promise<void> {
  return Deno.writeTextFile(
    join(dir, `${id}.js`),
    `export async function up({ store }) { await store.set(["m", ${
      JSON.stringify(id)
    }], ${value}); }\n` +
      `export async function down({ store }) { await store.delete(["m", ${
        JSON.stringify(id)
      }]); }\n`,
  );
}

/** Capture console.log / console.error while `fn` runs. */
async function capture(
  fn: () => Promise<number>,
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...args: unknown[]) => void out.push(args.join(" "));
  console.error = (...args: unknown[]) => void err.push(args.join(" "));
  try {
    const code = await fn();
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("compareMigrationIds() orders by number, then by id", () => {
  const ids = ["0010_c", "2_b", "0002_a", "0001_z", "100_x", "0002_b"];
  assert.deepEqual(ids.sort(compareMigrationIds), [
    "0001_z",
    "0002_a",
    "0002_b",
    "2_b",
    "0010_c",
    "100_x",
  ]);
});

Deno.test("defineMigration() rejects a definition without up()", () => {
  assert.throws(() => defineMigration({} as never), TypeError);
  assert.throws(() => defineMigration({ up() {}, down: 3 } as never), /down must be a function/);
  assert.equal(defineMigration({ up() {} }).kind, "flowstate.migration");
});

Deno.test("findMigrations() orders modules, skips helpers and reports misnamed files", async () => {
  const { files, ignored } = await findMigrations(BASIC);
  assert.deepEqual(files.map((f) => f.id), ALL_BASIC);
  assert.equal(files[0].checksum, await sha256(join(BASIC, "0001_seed_users.ts")));
  assert.deepEqual(ignored, []);

  const dir = await tempMigrations(["0001_a"]);
  try {
    await Deno.writeTextFile(join(dir, "add_index.ts"), "export function up() {}");
    await Deno.writeTextFile(join(dir, "0001_a_test.ts"), "");
    assert.deepEqual((await findMigrations(dir)).ignored, ["add_index.ts"]);
    const store = await memoryStore();
    const status = await migrationStatus(store, dir);
    assert.match(
      status.warnings.join("\n"),
      /Ignored add_index\.ts .* must look like 0001_name\.ts/,
    );
    await Deno.writeTextFile(join(dir, "0001_a.ts"), "export function up() {}");
    await assert.rejects(
      findMigrations(dir),
      /0001_a\.(js|ts) and 0001_a\.(js|ts) have the same id/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  await assert.rejects(
    findMigrations(join(FIXTURES, "nope")),
    (err: Error) =>
      err instanceof MigrationError && /folder .*nope does not exist/.test(err.message),
  );
});

Deno.test("migrationStatus() lists every migration as pending on a fresh store", async () => {
  await using store = await memoryStore();
  const status = await migrationStatus(store, BASIC);
  assert.deepEqual(status.pending, ALL_BASIC);
  assert.deepEqual(status.migrations.map((m) => m.state), ["pending", "pending", "pending"]);
  assert.deepEqual(status.warnings, []);
  assert.equal(status.lock, null);
  assert.equal(await store.count(), 0, "status writes nothing");
});

Deno.test("migrateUp() applies the pending migrations in order and records each", async () => {
  const clock = fakeClock();
  await using store = await memoryStore(clock);
  const lines: string[] = [];
  const result = await migrateUp(store, BASIC, { clock, log: (m) => lines.push(m) });
  assert.deepEqual(result.plan, ALL_BASIC);
  assert.deepEqual(result.done, ALL_BASIC);
  assert.equal(result.cancelled, false);
  assert.deepEqual(await dump(store, ["app"]), {
    "app/by-team/blue/bob": true,
    "app/by-team/red/alice": true,
    "app/by-team/red/chloé": true,
    "app/users/alice": { name: "Alice", team: "red", email: "alice@example.com" },
    "app/users/bob": { name: "Bob", team: "blue", email: "bob@example.com" },
    "app/users/chloé": { name: "Chloé", team: "red", email: "chloé@example.com" },
  });
  const recorded = await records(store);
  assert.deepEqual(Object.keys(recorded), ALL_BASIC);
  const first = recorded["0001_seed_users"];
  assert.equal(first.id, "0001_seed_users");
  assert.equal(first.appliedAt, clock.now());
  assert.equal(first.checksum, await sha256(join(BASIC, "0001_seed_users.ts")));
  assert.equal(typeof first.durationMs, "number");
  assert.ok(first.durationMs >= 0);
  assert.equal(await store.get(MIGRATION_LOCK_KEY), null, "the lock is released");
  assert.ok(lines.includes("Applying 0001_seed_users (seed the users)"), lines.join("\n"));
  assert.ok(lines.includes("0002_index_by_team: indexed 3 users"), lines.join("\n"));

  const again = await migrateUp(store, BASIC, { clock });
  assert.deepEqual(again.plan, [], "nothing left to apply");
  assert.deepEqual((await migrationStatus(store, BASIC)).pending, []);
});

Deno.test("migrateUp({ to }) applies up to and including that migration", async () => {
  await using store = await memoryStore();
  const result = await migrateUp(store, BASIC, { to: "0002_index_by_team" });
  assert.deepEqual(result.done, ["0001_seed_users", "0002_index_by_team"]);
  assert.deepEqual((await migrationStatus(store, BASIC)).pending, ["0010_add_email"]);
  assert.deepEqual((await migrateUp(store, BASIC, { to: "2" })).plan, [], "a number names one");
  assert.deepEqual((await migrateUp(store, BASIC, { to: "10" })).done, ["0010_add_email"]);
  await assert.rejects(
    migrateUp(store, BASIC, { to: "0003_nope" }),
    (err: Error) =>
      err instanceof RangeError &&
      err.message.includes('"0003_nope": there is no such migration') &&
      err.message.includes("0001_seed_users, 0002_index_by_team, 0010_add_email"),
  );
});

Deno.test("migrateDown() reverts the most recent migration, or --step N in reverse order", async () => {
  await using store = await memoryStore();
  await migrateUp(store, BASIC);
  const one = await migrateDown(store, BASIC);
  assert.deepEqual(one.done, ["0010_add_email"]);
  assert.deepEqual((await dump(store, ["app", "users"]))["app/users/bob"], {
    name: "Bob",
    team: "blue",
  });
  assert.deepEqual(Object.keys(await records(store)), ["0001_seed_users", "0002_index_by_team"]);

  const lines: string[] = [];
  const two = await migrateDown(store, BASIC, { step: 2, log: (m) => lines.push(m) });
  assert.deepEqual(two.done, ["0002_index_by_team", "0001_seed_users"]);
  assert.deepEqual(
    lines.filter((l) => l.startsWith("Reverting")),
    [
      "Reverting 0002_index_by_team (index users by team)",
      "Reverting 0001_seed_users (seed the users)",
    ],
  );
  assert.deepEqual(await dump(store), {}, "data, records and lock are all gone");
  assert.deepEqual((await migrateDown(store, BASIC, { step: 5 })).plan, []);
  await assert.rejects(migrateDown(store, BASIC, { step: 0 }), RangeError);
});

Deno.test("a dry run prints the plan and changes nothing", async () => {
  await using store = await memoryStore();
  const up = await migrateUp(store, BASIC, { dryRun: true, to: "0002_index_by_team" });
  assert.deepEqual(up.plan, ["0001_seed_users", "0002_index_by_team"]);
  assert.deepEqual(up.done, []);
  assert.equal(up.dryRun, true);
  assert.equal(await store.count(), 0, "no data, no record, no lock");

  await migrateUp(store, BASIC);
  const before = await dump(store);
  const down = await migrateDown(store, BASIC, { dryRun: true, step: 2 });
  assert.deepEqual(down.plan, ["0010_add_email", "0002_index_by_team"]);
  assert.deepEqual(down.done, []);
  assert.deepEqual(await dump(store), before);
});

Deno.test("a migration that throws is not recorded and stops the later ones", async () => {
  await using store = await memoryStore();
  await assert.rejects(
    migrateUp(store, FAILING),
    (err: Error) =>
      err instanceof MigrationError &&
      err.message.startsWith("Migration 0002_boom failed: disk full;") &&
      err.message.includes("it was not recorded as applied, and 0003_never was not applied") &&
      err.message.includes("(applied before it: 0001_ok)") &&
      (err.cause as Error).message === "disk full",
  );
  assert.deepEqual(Object.keys(await records(store)), ["0001_ok"]);
  assert.equal(await store.get(["never"]), null);
  assert.equal(await store.get(MIGRATION_LOCK_KEY), null, "the lock is released after a failure");
  assert.deepEqual((await migrationStatus(store, FAILING)).pending, ["0002_boom", "0003_never"]);
});

Deno.test("a second migrateUp() fails fast while the first holds the lock, naming the holder", async () => {
  await using store = await memoryStore();
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  let open!: () => void;
  const gate: MigrationGate = { started, opened: new Promise((resolve) => (open = resolve)) };
  (globalThis as { migrationGate?: MigrationGate }).migrationGate = gate;
  try {
    const first = migrateUp(store, GATE);
    await running;
    await assert.rejects(
      migrateUp(store, GATE),
      (err: Error) =>
        err instanceof MigrationError &&
        /^Cannot migrate up store "main": another migration holds the lock \(.+ pid \d+, running "up" since /
          .test(err.message),
    );
    await assert.rejects(migrateDown(store, GATE), /another migration holds the lock/);
    const status = await migrationStatus(store, GATE);
    assert.equal(status.lock?.holder, `${Deno.hostname()} pid ${Deno.pid}`);
    open();
    assert.deepEqual((await first).done, ["0001_wait_for_gate"]);
    assert.equal(await store.get(MIGRATION_LOCK_KEY), null);
  } finally {
    delete (globalThis as { migrationGate?: MigrationGate }).migrationGate;
  }
});

Deno.test("a lock left by another host blocks migrations until it expires", async () => {
  const clock = fakeClock();
  await using store = await memoryStore(clock);
  await store.set(MIGRATION_LOCK_KEY, { holder: "ci-7 pid 99", action: "up", since: clock.now() }, {
    expireIn: 30_000,
  });
  await assert.rejects(migrateUp(store, BASIC, { clock }), /\(ci-7 pid 99, running "up" since /);
  assert.deepEqual(await records(store), {});
  clock.advance(30_000);
  assert.deepEqual((await migrateUp(store, BASIC, { clock })).done, ALL_BASIC);
});

Deno.test("the lock is renewed while a long migration runs", async () => {
  const clock = fakeClock();
  await using store = await memoryStore(clock);
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  let open!: () => void;
  const gate: MigrationGate = { started, opened: new Promise((resolve) => (open = resolve)) };
  (globalThis as { migrationGate?: MigrationGate }).migrationGate = gate;
  try {
    // The migration waits without touching the store, so only the timer (every lockTtl / 3 of
    // real time) can renew: move the store's clock past a third of the lifetime each time, and
    // let the timer fire.
    const first = migrateUp(store, GATE, { clock, lockTtl: 30 });
    await running;
    let version = (await store.get(MIGRATION_LOCK_KEY))!.version;
    for (let renewal = 1; renewal <= 2; renewal++) {
      clock.advance(10);
      const deadline = Date.now() + 5000;
      let entry = (await store.get(MIGRATION_LOCK_KEY))!;
      while (entry.version === version && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        entry = (await store.get(MIGRATION_LOCK_KEY))!;
      }
      assert.notEqual(entry.version, version, `renewal ${renewal} happened`);
      assert.equal(entry.expiresAt, clock.now() + 30, "the renewal extends the lease");
      version = entry.version;
    }
    open();
    assert.deepEqual((await first).done, ["0001_wait_for_gate"]);
    assert.equal(await store.get(MIGRATION_LOCK_KEY), null);
  } finally {
    delete (globalThis as { migrationGate?: MigrationGate }).migrationGate;
  }
});

Deno.test("a long migration renews the lock through its store calls", async () => {
  const clock = fakeClock();
  await using store = await memoryStore(clock);
  const start = clock.now();
  const result = await migrateUp(store, RENEWAL, { clock, lockTtl: 30_000 });
  assert.deepEqual(result.done, ["0001_long_loop"]);
  assert.equal(clock.now() - start, 100_000, "the migration outlived the lock's 30 s");
  // Read back inside the migration: the lease always ran at least 10 s past "now".
  for (let i = 0; i < 10; i++) {
    const expiresAt = (await store.get<number>(["loop-lock", String(i)]))!.value;
    assert.ok(expiresAt >= start + (i + 1) * 10_000 + 10_000, `step ${i}: ${expiresAt}`);
  }
  assert.equal(await store.get(MIGRATION_LOCK_KEY), null);
});

Deno.test("a migration cannot close the store it migrates", async () => {
  const dir = await tempMigrations([]);
  try {
    await Deno.writeTextFile(
      join(dir, "0001_close.js"),
      "export async function up({ store }) { await store.close(); }\n",
    );
    await using store = await memoryStore();
    await assert.rejects(migrateUp(store, dir), /Cannot close store "main" from a migration/);
    assert.equal(await store.count(), 0, "still open, nothing recorded");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a migration whose lock was taken over is not recorded", async () => {
  await using store = await memoryStore();
  await assert.rejects(
    migrateUp(store, TAKEOVER),
    (err: Error) =>
      err instanceof MigrationError &&
      err.message.startsWith("Migration 0001_steal_lock ran but could not be recorded") &&
      err.message.includes("Lost the migration lock"),
  );
  assert.deepEqual(await records(store), {});
  assert.equal(
    (await store.get<{ holder: string }>(MIGRATION_LOCK_KEY))?.value.holder,
    "thief pid 1",
  );
});

Deno.test("migrateUp() stops between migrations when its signal is aborted", async () => {
  await using store = await memoryStore();
  const controller = new AbortController();
  const result = await migrateUp(store, BASIC, {
    signal: controller.signal,
    log: (m) => m.startsWith("Applied 0001") && controller.abort(),
  });
  assert.equal(result.cancelled, true);
  assert.deepEqual(result.done, ["0001_seed_users"]);
  assert.deepEqual(Object.keys(await records(store)), ["0001_seed_users"]);
  assert.equal(await store.get(MIGRATION_LOCK_KEY), null);
});

Deno.test("a migration stopped by the signal is reported as cancelled and not recorded", async () => {
  await using store = await memoryStore();
  const controller = new AbortController();
  await assert.rejects(
    migrateUp(store, BASIC, {
      signal: controller.signal,
      log: (m) => m.startsWith("Applying 0002") && controller.abort(),
    }),
    (err: Error) =>
      err instanceof MigrationError &&
      err.message.startsWith("Migration 0002_index_by_team was cancelled: ") &&
      err.message.includes("it was not recorded as applied, and 0010_add_email was not applied"),
  );
  assert.deepEqual(Object.keys(await records(store)), ["0001_seed_users"]);
  assert.equal(await store.get(MIGRATION_LOCK_KEY), null);
});

Deno.test("migrationStatus() warns when an applied migration's module changed", async () => {
  const dir = await tempMigrations(["0001_a", "0002_b"]);
  try {
    await using store = await memoryStore();
    await migrateUp(store, dir);
    const before = (await records(store))["0002_b"].checksum;
    await writeSetter(dir, "0002_b", 2);
    const status = await migrationStatus(store, dir);
    assert.deepEqual(status.migrations.map((m) => [m.id, m.state, m.changed]), [
      ["0001_a", "applied", false],
      ["0002_b", "applied", true],
    ]);
    assert.equal(status.warnings.length, 1);
    assert.match(
      status.warnings[0],
      new RegExp(
        `^Migration 0002_b changed since it was applied at .* \\(checksum ${before.slice(0, 12)}…`,
      ),
    );
    // Changed modules are not run again, and down still reverts them (with the warning).
    assert.deepEqual((await migrateUp(store, dir)).plan, []);
    const down = await migrateDown(store, dir);
    assert.deepEqual(down.done, ["0002_b"]);
    assert.match(down.warnings.join(), /0002_b changed/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("migrateDown() fails clearly, reverting nothing, when a module is missing", async () => {
  const dir = await tempMigrations(["0001_a", "0002_b", "0003_c"]);
  try {
    await using store = await memoryStore();
    await migrateUp(store, dir);
    await Deno.remove(join(dir, "0002_b.js"));
    const status = await migrationStatus(store, dir);
    assert.equal(status.migrations[1].state, "missing");
    assert.match(status.warnings.join(), /0002_b is recorded as applied .* but has no module/);
    await assert.rejects(
      migrateDown(store, dir, { step: 2 }),
      (err: Error) =>
        err instanceof MigrationError &&
        /^Cannot revert migration 0002_b: its module is missing from .*Nothing was reverted$/.test(
          err.message,
        ),
    );
    assert.deepEqual(Object.keys(await records(store)), ["0001_a", "0002_b", "0003_c"]);
    assert.equal((await store.get(["m", "0003_c"]))?.value, 1, "0003_c was not reverted either");
    assert.equal(await store.get(MIGRATION_LOCK_KEY), null);
    // A pending migration numbered before an applied one is flagged.
    await writeSetter(dir, "0002_b", 1);
    await store.delete([...MIGRATIONS_PREFIX, "0002_b"]);
    assert.match(
      (await migrationStatus(store, dir)).warnings.join(),
      /Pending migration 0002_b is numbered before 0003_c/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("migrateDown() refuses a migration without down()", async () => {
  await using store = await memoryStore();
  await migrateUp(store, IRREVERSIBLE);
  await assert.rejects(
    migrateDown(store, IRREVERSIBLE),
    /^MigrationError: Cannot revert migration 0001_one_way: .*0001_one_way\.ts has no down\(\) function/,
  );
  assert.equal((await store.get(["one-way"]))?.value, true);
});

Deno.test("migrateUp() refuses a module without up() before applying anything", async () => {
  const dir = await tempMigrations(["0001_a"]);
  try {
    await Deno.writeTextFile(join(dir, "0002_bad.js"), "export const up = 3;\n");
    await using store = await memoryStore();
    await assert.rejects(
      migrateUp(store, dir),
      /Cannot load migration 0002_bad .*: it exports no up\(\) function/,
    );
    assert.equal(await store.count(), 0);
    await assert.rejects(migrateUp(store, dir, { dryRun: true }), /0002_bad/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the migrate job applies, reports and records its run", async () => {
  const clock = fakeClock();
  await using rt = await openRuntime({
    config: { stores: { main: { plugin: "memory" } } },
    clock,
  });
  const status = await runJob(rt, "migrate", {
    options: { action: "pending", dir: BASIC },
    progress: "quiet",
  });
  assert.equal(status.status, "succeeded");
  assert.deepEqual(status.outputs?.pending, ALL_BASIC);

  const dry = await runJob(rt, "migrate", {
    options: { dir: BASIC },
    dryRun: true,
    progress: "quiet",
  });
  assert.deepEqual((dry.outputs as unknown as MigrateResult).plan, ALL_BASIC);
  assert.deepEqual((await migrationStatus(await rt.store("main"), BASIC)).pending, ALL_BASIC);

  const up = await runJob(rt, "migrate", {
    options: { dir: BASIC, to: "0002" },
    progress: "quiet",
  });
  assert.equal(up.status, "succeeded", JSON.stringify(up.error));
  assert.deepEqual((up.outputs as unknown as MigrateResult).done, [
    "0001_seed_users",
    "0002_index_by_team",
  ]);
  const down = await runJob(rt, "migrate", {
    options: { action: "down", dir: BASIC, step: 2 },
    progress: "quiet",
  });
  assert.deepEqual((down.outputs as unknown as MigrateResult).done, [
    "0002_index_by_team",
    "0001_seed_users",
  ]);

  const failed = await runJob(rt, "migrate", { options: { dir: FAILING }, progress: "quiet" });
  assert.equal(failed.status, "failed");
  assert.match(failed.error!.message, /^Migration 0002_boom failed: disk full/);
  const runs = await (await rt.records()).listRunSummaries({ flowId: "job:migrate" });
  assert.equal(runs.runs.length, 5);

  await assert.rejects(
    runJob(rt, "migrate", { options: { action: "down", to: "0001" } }),
    /"to" applies to action "up" only/,
  );
});

// --- the CLI command bodies -----------------------------------------------------

async function cliProject(): Promise<{ dir: string; config: string; migrations: string }> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-migrate-cli-" });
  const config = join(dir, "flowstate.yaml");
  await Deno.writeTextFile(config, "stores:\n  main: { plugin: sqlite, path: state.db }\n");
  const migrations = join(dir, "migrations");
  await Deno.mkdir(migrations);
  for (const id of ["0001_a", "0002_b", "0003_c"]) await writeSetter(migrations, id, 1);
  return { dir, config, migrations };
}

Deno.test("migrate data status|pending|up|down print plans and results, with --json", async () => {
  const { dir, config } = await cliProject();
  try {
    const global = { config };
    let r = await capture(() => migrateDataPending({}, global));
    assert.equal(r.code, 0);
    assert.equal(r.out, "0001_a\n0002_b\n0003_c", "default dir: migrations/ beside the config");

    r = await capture(() => migrateDataUp({ dryRun: true, to: "0002_b" }, global));
    assert.equal(r.code, 0);
    assert.equal(r.out, 'Would apply in store "main", in this order:\n  0001_a\n  0002_b');

    r = await capture(() => migrateDataUp({ to: "0002_b" }, global));
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'Applied 2 migration(s) in store "main": 0001_a, 0002_b');
    assert.match(r.err, /Applying 0001_a/);

    r = await capture(() => migrateDataStatus({ json: true }, global));
    const status = JSON.parse(r.out);
    assert.deepEqual(status.pending, ["0003_c"]);
    assert.deepEqual(status.migrations.map((m: { state: string }) => m.state), [
      "applied",
      "applied",
      "pending",
    ]);

    r = await capture(() => migrateDataStatus({}, global));
    assert.match(r.out, /^ID\s+STATE\s+APPLIED AT\s+DURATION\n0001_a\s+applied\s+\d{4}-/);
    assert.match(r.err, /Store "main": 2 applied, 1 pending/);

    r = await capture(() => migrateDataDown({ step: 2, json: true }, global));
    assert.equal(r.code, 0);
    assert.deepEqual(JSON.parse(r.out).done, ["0002_b", "0001_a"]);

    r = await capture(() => migrateDataPending({ json: true }, global));
    assert.deepEqual(JSON.parse(r.out).pending, ["0001_a", "0002_b", "0003_c"]);

    await assert.rejects(
      capture(() => migrateDataUp({ to: "0009" }, global)),
      (err: Error) => err instanceof UsageError && /no such migration/.test(err.message),
    );
    await assert.rejects(
      capture(() => migrateDataUp({ store: "mian" }, global)),
      (err: Error) =>
        err instanceof UsageError && /Unknown store "mian".*did you mean "main"/.test(err.message),
    );
    await assert.rejects(
      capture(() => migrateDataStatus({ dir: join(dir, "nope") }, global)),
      (err: Error) => err instanceof UsageError && /create it or pass --dir/.test(err.message),
    );
    // A failing migration is a failed job:migrate run: exit 1 and an error line naming it.
    await Deno.writeTextFile(
      join(dir, "migrations", "0004_boom.js"),
      'export function up() { throw new Error("nope"); }\n',
    );
    r = await capture(() => migrateDataUp({}, global));
    assert.equal(r.code, 1);
    assert.match(r.err, /^error: Migration 0004_boom failed: nope/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
