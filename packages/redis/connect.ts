/**
 * Reaching the server: the URL (checked, and shown without its password), the
 * Redis key names of a store, and `connect()`, which opens an ioredis client
 * within `connectTimeout` or throws `StoreUnavailableError`. ioredis is
 * imported by `connect()`, so importing this package loads nothing from npm
 * until a store opens.
 *
 * @module
 */
import type { Redis, RedisOptions } from "ioredis";
import { StoreUnavailableError } from "@flowstate/core/plugin";

/**
 * Default option values of the redis plugin.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { redisDefaults, redisOptions } from "@flowstate/redis";
 *
 * assert.equal(redisDefaults.prefix, "flowstate:");
 * assert.equal(redisOptions.parse({}).url, redisDefaults.url);
 * ```
 */
export const redisDefaults = {
  /** The server: Redis on this machine, database 0. */
  url: "redis://127.0.0.1:6379",
  /** Every Redis key of the store starts with this. */
  prefix: "flowstate:",
  /** Seconds to wait for the server to answer when opening. */
  connectTimeout: 10,
} as const satisfies { url: string; prefix: string; connectTimeout: number };

/**
 * What a key prefix may hold: letters, digits and `: _ - . / { }` (braces
 * make a Redis Cluster hash tag), 1 to 100 of them. No glob characters, so a
 * prefix is also a `SCAN MATCH <prefix>*` pattern of exactly its own keys.
 */
export const PREFIX = /^[A-Za-z0-9:_\-./{}]{1,100}$/;
/** What a prefix may be, for messages. */
export const PREFIX_RULE = "1 to 100 letters, digits or : _ - . / { }";

/** A `redis://` or `rediss://` (TLS) URL with a host and, if any, a database number as its path. */
export function isRedisUrl(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  return (parsed.protocol === "redis:" || parsed.protocol === "rediss:") &&
    parsed.hostname !== "" && /^\/?(\d{1,5})?$/.test(parsed.pathname);
}

/** Where the server is, as `host:port`. */
export function hostPort(url: URL): string {
  return `${url.hostname}:${url.port || "6379"}`;
}

/**
 * A Redis URL without its password (nor any query parameter whose name
 * mentions one), with the port and database spelled out: what a store shows
 * as its `location` and in messages.
 *
 * @example
 * ```ts
 * import { redactRedisUrl } from "@flowstate/redis";
 * import assert from "node:assert/strict";
 * assert.equal(redactRedisUrl("redis://app:s3cret@cache.internal/2"), "redis://app@cache.internal:6379/2");
 * assert.equal(redactRedisUrl("redis://:s3cret@127.0.0.1:6380"), "redis://127.0.0.1:6380/0");
 * ```
 */
export function redactRedisUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "redis://(unparsable URL)";
  }
  const user = parsed.username === "" ? "" : `${parsed.username}@`;
  const db = parsed.pathname.replace(/^\//, "") || "0";
  const params = [...parsed.searchParams].filter(([name]) => !/pass|secret|key/i.test(name));
  const query = params.length === 0 ? "" : `?${new URLSearchParams(params)}`;
  return `${parsed.protocol}//${user}${hostPort(parsed)}/${db}${query}`;
}

/** The Redis keys that hold one store. */
export interface StoreKeys {
  /** A hash: `format` and `version` of the store's layout. Its presence means the store exists. */
  meta: string;
  /** A sorted set, every score 0: the encoded keys, so lexicographic order is key order. */
  keys: string;
  /** A hash: encoded key → `version \n expiresAt \n value`. */
  entries: string;
  /** A sorted set: encoded keys that expire, scored by their expiry time (ms). */
  expiry: string;
}

/** The Redis keys of the store under `prefix`. */
export function storeKeys(prefix: string): StoreKeys {
  return {
    meta: `${prefix}meta`,
    keys: `${prefix}keys`,
    entries: `${prefix}entries`,
    expiry: `${prefix}expiry`,
  };
}

/** Reconnection attempts a command waits through before it fails. */
export const RETRIES = 2;

/** How long ioredis waits before its n-th reconnection attempt: 100 ms more each time, at most 2 s. */
function retryDelay(times: number): number {
  return Math.min(times * 100, 2000);
}

/** A connected client, and the last connection error it reported. */
export interface Connection {
  /** The client; it reconnects by itself when the connection drops. */
  redis: Redis;
  /** The last error the client reported (connection refused, reset…), or `undefined`. */
  lastError(): Error | undefined;
}

/**
 * Connect to `url`; resolves once the server answers. Throws a
 * `StoreUnavailableError` naming the store and `host:port` (never the
 * password), with the cause, when it refuses, fails or does not answer within
 * `connectTimeout` seconds.
 */
export async function connect(
  url: string,
  options: {
    storeName: string;
    connectTimeout: number;
    warn?: (warning: { code: string; message: string }) => void;
  },
): Promise<Connection> {
  const { Redis } = await import("ioredis");
  const ms = Math.round(options.connectTimeout * 1000);
  // ioredis prints "[WARN] … does not require a password" when the server needs none; a
  // library never prints. Asked first (plain redis://): such a password is not given to
  // ioredis, and the store's warning says so instead.
  const given = new URL(url);
  if (given.protocol === "redis:" && given.password !== "") {
    if (await needsPassword(given, ms) === false) {
      options.warn?.({
        code: "REDIS_NEEDLESS_PASSWORD",
        message:
          `Store "${options.storeName}": Redis at ${
            hostPort(given)
          } asks for no password, so the one in its URL is not sent; remove it from the URL, or ` +
          `set a password on the server (requirepass, or an ACL user)`,
      });
      given.username = "";
      given.password = "";
      url = given.href;
    }
  }
  const clientOptions: RedisOptions = {
    lazyConnect: true,
    connectTimeout: ms,
    connectionName: "flowstate",
    // A command waits through at most two reconnection attempts (about 0.3 s
    // when the server refuses) and then fails: the store reports the server
    // unavailable rather than hanging; the client goes on reconnecting.
    maxRetriesPerRequest: RETRIES,
    retryStrategy: retryDelay,
  };
  const redis = new Redis(url, clientOptions);
  let last: Error | undefined;
  // Without a listener, ioredis prints "[ioredis] Unhandled error event"; a
  // library never prints, so errors are kept for the messages instead.
  redis.on("error", (err: Error) => last = err);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      redis.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within connectTimeout (${options.connectTimeout} s)`)),
          ms,
        );
      }),
    ]);
  } catch (err) {
    redis.disconnect();
    let cause: unknown = last ?? err;
    const text = cause instanceof Error ? cause.message : String(cause);
    // A plain server does not answer a TLS handshake: the open only times out (or is reset).
    if (given.protocol === "rediss:" && !/^connect E/.test(text)) {
      cause = new Error(
        `${text} (the URL asks for TLS with rediss://: if the server does not speak TLS, use ` +
          `redis://)`,
        { cause },
      );
    }
    throw unavailable(`Cannot open store "${options.storeName}"`, options.storeName, url, cause);
  } finally {
    clearTimeout(timer);
  }
  // ioredis selects the URL's database on every connection, but a SELECT the server refuses
  // (a number past its `databases`) only emits an error and leaves the connection on
  // database 0, where another store may live. Select it here and wait for the answer.
  const db = redis.options.db ?? 0;
  if (db !== 0) {
    try {
      await redis.select(db);
    } catch (err) {
      redis.disconnect();
      const address = hostPort(new URL(url));
      throw new StoreUnavailableError(
        `Cannot open store "${options.storeName}": Redis at ${address} refused database ${db} ` +
          `(the number in the URL's path): ${
            (err as Error)?.message ?? String(err)
          }; use a database the server has ` +
          `(its "databases" setting), or a prefix on database 0`,
        // The server's `databases` setting does not change while it runs.
        { store: options.storeName, address, transient: false },
        { cause: err },
      );
    }
  }
  return { redis, lastError: () => last };
}

/**
 * Whether the server at `url` asks for the URL's password: `false` when its
 * `AUTH` answer says it has none, `true` when it accepts it, `undefined` when
 * it cannot tell (unreachable, another answer: ioredis says what is wrong).
 */
async function needsPassword(url: URL, ms: number): Promise<boolean | undefined> {
  let conn: Deno.TcpConn | undefined;
  const timer = setTimeout(() => {
    try {
      conn?.close();
    } catch {
      // Closed already.
    }
  }, ms);
  try {
    conn = await Deno.connect({
      hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"),
      port: Number(url.port || 6379),
    });
    const user = decodeURIComponent(url.username);
    const args = ["AUTH", ...(user === "" ? [] : [user]), decodeURIComponent(url.password)];
    const encoder = new TextEncoder();
    const command = encoder.encode(
      `*${args.length}\r\n` + args.map((a) => `$${encoder.encode(a).length}\r\n${a}\r\n`).join(""),
    );
    for (let at = 0; at < command.length;) at += await conn.write(command.subarray(at));
    const answer = new Uint8Array(512);
    const n = await conn.read(answer);
    const line = new TextDecoder().decode(answer.subarray(0, n ?? 0));
    if (/without any password configured|no password is set/i.test(line)) return false;
    return line.startsWith("+OK") ? true : undefined;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch {
      // Closed by the timer, or never opened.
    }
  }
}

/**
 * The `StoreUnavailableError` for a server that cannot be reached or refuses
 * us, the password scrubbed: `<action>: cannot reach Redis at host:port: <cause>`.
 */
export function unavailable(
  action: string,
  storeName: string,
  url: string,
  cause: unknown,
): StoreUnavailableError {
  const address = hostPort(new URL(url));
  const text = (cause instanceof Error ? cause.message : String(cause))
    .replaceAll(url, redactRedisUrl(url));
  const refused = /^(NOAUTH|WRONGPASS|NOPERM|ERR)\b/.test(text);
  const reach = refused ? `Redis at ${address} refused` : `cannot reach Redis at ${address}`;
  const fix = /^(NOAUTH|WRONGPASS)\b/.test(text)
    ? `; give the server's user and password in the URL, redis://[user]:password@host:port, ` +
      `kept in an environment variable (url: "\${env.REDIS_URL}")`
    : "";
  return new StoreUnavailableError(`${action}: ${reach}: ${text}${fix}`, {
    store: storeName,
    address,
    // A wrong password or a missing permission stays so; anything else (down, loading its data,
    // out of clients) may pass.
    transient: !/^(NOAUTH|WRONGPASS|NOPERM)\b/.test(text),
  }, { cause });
}
