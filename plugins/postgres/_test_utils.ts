/**
 * Helpers shared by the postgres plugin's test files (not published).
 *
 * Tests that need a server read its URL from FLOWSTATE_TEST_POSTGRES_URL (CI:
 * postgres://postgres@127.0.0.1:5432/test). Without it {@linkcode pgTest}
 * registers them as ignored, with the reason in their name. Every table lives
 * in a schema of the test file's own (each test file runs in its own
 * isolate, so each gets its own {@linkcode SCHEMA}), dropped by the file's
 * last test, which {@linkcode dropTestSchema} registers.
 *
 * @module
 */
import assert from "node:assert/strict";
import type postgres from "postgres";
import { openClient } from "./client.ts";
import { openStore } from "../../src/plugin.ts";
import type { Clock, Store } from "../../src/store/types.ts";
import { listenOutsideEphemeral } from "../../tests/_net.ts";

/** The server to test against, or `undefined` to ignore the tests that need one. */
export const PG_URL: string | undefined = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL") ||
  undefined;
/** Why a test that needs a server is ignored. */
export const NEEDS_SERVER = "set FLOWSTATE_TEST_POSTGRES_URL to run";
/** This test file's own schema, dropped by {@linkcode dropTestSchema}'s test. */
export const SCHEMA = `flowstate_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
/** The advisory lock class every Flowstate table lock uses (see plugins/postgres/schema.ts). */
export const LOCK_CLASS = 0x464c5354;
/** The repository root. */
export const ROOT: string = new URL("../../", import.meta.url).pathname;
/** The postgres plugin's test scripts. */
export const TESTDATA: string = new URL("./testdata/", import.meta.url).pathname;

/** Register a test that needs a server, or an ignored one saying why. */
export function pgTest(name: string, fn: (url: string) => Promise<void>): void {
  if (PG_URL === undefined) {
    Deno.test({ name: `${name} (ignored: ${NEEDS_SERVER})`, ignore: true, fn: () => {} });
  } else {
    Deno.test(name, () => fn(PG_URL));
  }
}

let tableCount = 0;
/** A new table name for one test. */
export function newTable(label: string): string {
  return `t${++tableCount}_${label}`;
}

/** Open a postgres store on `table` in {@linkcode SCHEMA}. */
export function openPg(
  url: string,
  table: string,
  options: { clock?: Clock; name?: string; max?: number } = {},
): Promise<Store> {
  const spec: Record<string, unknown> = { plugin: "postgres", url, schema: SCHEMA, table };
  if (options.max !== undefined) spec.max = options.max;
  return openStore(spec as { plugin: string }, { clock: options.clock, name: options.name });
}

/** A direct connection for inspecting and tampering with tables. */
export async function withAdmin(
  url: string,
  fn: (sql: postgres.Sql) => Promise<void>,
): Promise<void> {
  const sql = openClient(url, { max: 1 });
  try {
    await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/**
 * Run `fn` with the URL of a new login role that may only read and write
 * the rows of `table` (and its meta table) in {@linkcode SCHEMA}: not its
 * owner, so it may create nothing there. The role is dropped afterwards.
 */
export async function withLimitedRole(
  url: string,
  table: string,
  fn: (limitedUrl: string) => Promise<void>,
): Promise<void> {
  const role = `fs_limited_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
  await withAdmin(url, async (sql) => {
    await sql.unsafe(`CREATE ROLE ${role} LOGIN`);
    await sql.unsafe(`GRANT USAGE ON SCHEMA "${SCHEMA}" TO ${role}`);
    await sql.unsafe(
      `GRANT SELECT, INSERT, UPDATE, DELETE ON "${SCHEMA}"."${table}", ` +
        `"${SCHEMA}"."${table}_meta" TO ${role}`,
    );
  });
  await asRole(url, role, fn);
}

/**
 * Run `fn` with `url` as the login role `role` (no password), then drop the
 * role: its sessions are ended first (a store a failed test left open), then
 * what it owns.
 */
export async function asRole(
  url: string,
  role: string,
  fn: (roleUrl: string) => Promise<void>,
): Promise<void> {
  try {
    const limited = new URL(url);
    limited.username = role;
    limited.password = "";
    await fn(limited.href);
  } finally {
    await withAdmin(url, async (sql) => {
      await sql.unsafe(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '${role}'`,
      );
      await sql.unsafe(`DROP OWNED BY ${role}`);
      await sql.unsafe(`DROP ROLE ${role}`);
    });
  }
}

/**
 * Run `fn` with the URL of a database of its own, dropped afterwards. For
 * tests whose outcome other sessions could change: VACUUM keeps dead rows
 * that an older transaction of any session *in the same database* may still
 * see, and the other test files run beside this one (`--parallel`).
 */
export async function withOwnDatabase(
  url: string,
  label: string,
  fn: (url: string) => Promise<void>,
): Promise<void> {
  const name = `flowstate_${label}_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  await withAdmin(url, (sql) => sql.unsafe(`CREATE DATABASE "${name}" TEMPLATE template0`).then());
  try {
    const own = new URL(url);
    own.pathname = `/${name}`;
    await fn(own.href);
  } finally {
    await withAdmin(
      url,
      (sql) => sql.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).then(),
    );
  }
}

/**
 * Run the CLI in this process (`main`) with a config file holding `config`,
 * and `args`: its exit code and the lines it printed on stderr.
 */
export async function cliErrors(
  config: string,
  args: string[],
): Promise<{ code: number; lines: string[] }> {
  const { main } = await import("../../src/cli/main.ts");
  const dir = await Deno.makeTempDir({ prefix: "flowstate-pg-cli-" });
  const lines: string[] = [];
  const error = console.error;
  try {
    await Deno.writeTextFile(`${dir}/flowstate.yaml`, config);
    console.error = (...parts: unknown[]) => void lines.push(parts.join(" "));
    const code = await main(["--config", `${dir}/flowstate.yaml`, ...args]);
    return { code, lines };
  } finally {
    console.error = error;
    await Deno.remove(dir, { recursive: true });
  }
}

/** A clock that stands still until a test moves `t`. */
export function manualClock(start = 1_000_000): Clock & { t: number } {
  return {
    t: start,
    now() {
      return this.t;
    },
  };
}

/** Register the test that drops {@linkcode SCHEMA}: call it last in a test file. */
export function dropTestSchema(): void {
  pgTest("postgres test tables are dropped", async (url) => {
    await withAdmin(url, async (sql) => {
      await sql.unsafe(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
      const [row] =
        await sql`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = ${SCHEMA}`;
      assert.equal(row.n, 0);
    });
  });
}

/**
 * Register `name`, the last test of a test file outside this plugin that keeps
 * its tables in a schema of its own: it drops `schema` (ignored without a
 * server, as the tests that made it).
 */
export function dropSchemaTest(name: string, schema: string): void {
  Deno.test({
    name,
    ignore: PG_URL === undefined,
    fn: () =>
      withAdmin(PG_URL!, async (sql) => {
        await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      }),
  });
}

/**
 * Resolves once a statement that names `table` waits for a lock, as the
 * server sees it from `watcher`'s session (polled every 20 ms).
 */
export async function untilWaitingOnLock(watcher: postgres.Sql, table: string): Promise<void> {
  for (;;) {
    const [row] = await watcher.unsafe<{ n: number }[]>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() ` +
        `AND wait_event_type = 'Lock' AND position($1 in query) > 0`,
      [table],
    );
    if (row.n > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Run `fn` while another session's transaction holds what `lock` takes
 * (a statement, with `params`), and fail unless `fn` finished before that
 * transaction ends on its own 10 s later: `fn` must not wait for it. `what`
 * names the wait in the failure.
 */
export async function whileLockHeld(
  url: string,
  lock: string,
  params: unknown[],
  what: string,
  fn: () => Promise<void>,
): Promise<void> {
  await withAdmin(url, async (admin) => {
    const holder = await admin.reserve();
    try {
      await holder.unsafe("BEGIN");
      await holder.unsafe(lock, params as never[]);
      let released = false;
      const release = setTimeout(() => {
        released = true;
        holder.unsafe("COMMIT").catch(() => {});
      }, 10_000);
      try {
        await fn();
        assert.equal(released, false, what);
      } finally {
        clearTimeout(release);
        if (!released) await holder.unsafe("COMMIT");
      }
    } finally {
      holder.release();
    }
  });
}

/**
 * A TCP proxy on 127.0.0.1 to the server of `url`, that the test can cut (the
 * port refuses connections and every connection through it is closed: the
 * server is gone, as in a failover or a restart) and restore. `url` is the
 * same URL through the proxy.
 *
 * With `afterLogin`, every session through it ends when its client sends its
 * first query (a Query or Parse message, which is not forwarded): the login
 * went through, then (`"kill"`) the client gets what PostgreSQL sends a
 * session an administrator ends (`pg_terminate_backend`: a FATAL error
 * `57P01`) and the connection is closed, or (`"close"`) the connection is
 * closed (a network cut). `kills` counts them.
 */
export function cuttableProxy(url: string, options: { afterLogin?: "kill" | "close" } = {}): {
  url: string;
  cut(): Promise<void>;
  restore(): void;
  close(): Promise<void>;
  readonly kills: number;
} {
  const target = new URL(url);
  let listener = listenOutsideEphemeral();
  const port = (listener.addr as Deno.NetAddr).port;
  const conns = new Set<Deno.Conn>();
  const pending: Promise<unknown>[] = [];
  let kills = 0;
  const drop = (c: Deno.Conn) => {
    if (!conns.delete(c)) return;
    try {
      c.close();
    } catch {
      // Already closed.
    }
  };
  const pipe = async (client: Deno.Conn) => {
    let server: Deno.Conn;
    try {
      server = await Deno.connect({
        hostname: target.hostname,
        port: Number(target.port || 5432),
      });
    } catch {
      client.close();
      return;
    }
    conns.add(client);
    conns.add(server);
    await Promise.all([
      server.readable.pipeTo(client.writable).catch(() => {}).finally(() => drop(client)),
      (options.afterLogin
        ? client.readable.pipeThrough(untilFirstQuery(async () => {
          kills++;
          drop(server);
          if (options.afterLogin === "kill") await client.write(TERMINATED).catch(() => {});
          drop(client);
        }))
        : client.readable).pipeTo(server.writable).catch(() => {}).finally(() => drop(server)),
    ]);
  };
  /** The accept loop of the listener now: it ends once the listener is closed and its port free. */
  let accepting: Promise<void> = Promise.resolve();
  const accept = (l: Deno.Listener) => {
    accepting = (async () => {
      for await (const client of l) pending.push(pipe(client));
    })().catch(() => {});
    pending.push(accepting);
  };
  accept(listener);
  const proxied = new URL(url);
  proxied.hostname = "127.0.0.1";
  proxied.port = String(port);
  return {
    url: proxied.href,
    /**
     * Resolves once the port is free again: closing a listener whose accept
     * is pending frees its socket only when that accept has ended, so a
     * `restore()` at once could find the port still bound (AddrInUse).
     */
    cut() {
      listener.close();
      for (const c of [...conns]) drop(c);
      return accepting;
    },
    restore() {
      listener = Deno.listen({ hostname: "127.0.0.1", port });
      accept(listener);
    },
    async close() {
      try {
        listener.close();
      } catch {
        // Cut and not restored.
      }
      for (const c of [...conns]) drop(c);
      await Promise.all(pending);
    },
    get kills() {
      return kills;
    },
  };
}

/** What PostgreSQL sends the client of a session `pg_terminate_backend` ends (an ErrorResponse). */
const TERMINATED = (() => {
  const fields =
    ["SFATAL", "VFATAL", "C57P01", "Mterminating connection due to administrator command"]
      .map((f) => f + "\0").join("") + "\0";
  const body = new TextEncoder().encode(fields);
  const message = new Uint8Array(5 + body.length);
  message[0] = 0x45; // E
  new DataView(message.buffer).setInt32(1, 4 + body.length);
  message.set(body, 5);
  return message;
})();

/** The SSLRequest's and GSSENCRequest's codes: the client sends its startup message after them. */
const NEGOTIATION_CODES = [80877103, 80877104];

/**
 * The bytes a PostgreSQL client sends, up to its first query: the stream
 * ends (and `onQuery` is called) when a Query (`Q`) or Parse (`P`) message
 * starts, which is dropped. Untyped messages (the SSL/GSS requests, the
 * startup message) and typed ones (a password) before it pass.
 */
function untilFirstQuery(onQuery: () => Promise<void>): TransformStream<Uint8Array, Uint8Array> {
  let buffered = new Uint8Array(0);
  let startup = true;
  let done = false;
  return new TransformStream({
    transform(chunk, controller) {
      if (done) return;
      const joined = new Uint8Array(buffered.length + chunk.length);
      joined.set(buffered);
      joined.set(chunk, buffered.length);
      const view = new DataView(joined.buffer);
      let at = 0;
      for (;;) {
        const header = startup ? 8 : 5;
        if (joined.length - at < header) break;
        if (!startup && (joined[at] === 0x51 || joined[at] === 0x50)) {
          controller.enqueue(joined.subarray(0, at));
          done = true;
          return onQuery();
        }
        const length = startup ? view.getInt32(at) : 1 + view.getInt32(at + 1);
        if (joined.length - at < length) break;
        if (startup) startup = NEGOTIATION_CODES.includes(view.getInt32(at + 4));
        at += length;
      }
      controller.enqueue(joined.subarray(0, at));
      buffered = joined.slice(at);
    },
  });
}

/**
 * `promise`, or a failure naming `what` if it has not settled after `ms`
 * milliseconds: a test's own bound on something that used to hang.
 */
export async function settlesWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, hung]);
  } finally {
    clearTimeout(timer);
  }
}
