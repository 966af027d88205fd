/**
 * The redis driver: a Flowstate store in four Redis keys under a prefix, every
 * write one Lua script (see `scripts.ts` for the layout and the scripts).
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import type { Redis } from "ioredis";
import {
  type ClearRange,
  type CommitRequest,
  decodeKey,
  type DriverCommitResult,
  type KeyRange,
  type RawEntry,
  StoreCorruptError,
  type StoreDriver,
  StoreMissingError,
  StoreUnavailableError,
} from "@flowstate/core/plugin";
import type { Key } from "@flowstate/core";
import { after, lexRange, member } from "./bounds.ts";
import {
  connect,
  type Connection,
  hostPort,
  isRedisUrl,
  PREFIX,
  PREFIX_RULE,
  redactRedisUrl,
  redisDefaults,
  RETRIES,
  type StoreKeys,
  storeKeys,
  unavailable,
} from "./connect.ts";
import { CLEAR, COMMIT, COUNT, LIST, OPEN, PURGE } from "./scripts.ts";

/** The `format` a store's meta hash holds. */
export const FORMAT = "flowstate.redis";
/** The layout version this driver reads and writes. */
export const LAYOUT_VERSION = 1;
/**
 * The most entries one `list` round trip fetches (Lua's `unpack` has a stack
 * limit), and how many it fetches unless the listing asks for fewer
 * (`batchSize`, or a `limit`, which reaches this driver since it filters
 * expiry itself). A round trip costs more than the entries it brings, so
 * pages are as large as the script allows.
 */
const MAX_PAGE = 1000;

/**
 * Options for {@linkcode RedisDriver.open}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RedisDriver, type RedisDriverOptions } from "@flowstate/redis";
 *
 * const options: RedisDriverOptions = { prefix: "has space", storeName: "cache" };
 * // options are checked before any connection is made
 * await assert.rejects(() => RedisDriver.open("redis://127.0.0.1:6379", options), /prefix/);
 * ```
 */
export interface RedisDriverOptions {
  /** Every Redis key of the store starts with this (default `flowstate:`). */
  prefix?: string;
  /** Seconds to wait for the server when opening (default 10). */
  connectTimeout?: number;
  /** The store's name, for messages (default `redis`). */
  storeName?: string;
  /** Create nothing: a store that does not exist yet is a `StoreMissingError`. */
  mustExist?: boolean;
  /**
   * Receives the store's warnings (the plugin passes `PluginContext.warn`):
   * `REDIS_NEEDLESS_PASSWORD` when the URL gives a password the server does
   * not ask for. Nothing is ever printed.
   */
  warn?: (warning: { code: string; message: string }) => void;
}

/** The scripts, as the commands ioredis defines for them (EVALSHA, loaded on first use). */
interface Scripts {
  flowstateCommit(...args: (string | Buffer | number)[]): Promise<number[]>;
  flowstateListBuffer(...args: (string | Buffer | number)[]): Promise<(Buffer | null)[]>;
  flowstateCount(...args: (string | Buffer | number)[]): Promise<number>;
  flowstateClear(...args: (string | Buffer | number)[]): Promise<number>;
  flowstatePurge(...args: (string | Buffer | number)[]): Promise<number>;
  flowstateOpen(...args: (string | Buffer | number)[]): Promise<string[]>;
}

function defineScripts(redis: Redis): Redis & Scripts {
  // Every script but OPEN takes the meta hash as its last key (see ALIVE in scripts.ts); a get
  // sends EXISTS on it beside its HGET/HMGET (one round trip).
  redis.defineCommand("flowstateCommit", { numberOfKeys: 4, lua: COMMIT });
  redis.defineCommand("flowstateList", { numberOfKeys: 3, lua: LIST });
  redis.defineCommand("flowstateCount", { numberOfKeys: 3, lua: COUNT });
  redis.defineCommand("flowstateClear", { numberOfKeys: 4, lua: CLEAR });
  redis.defineCommand("flowstatePurge", { numberOfKeys: 4, lua: PURGE });
  redis.defineCommand("flowstateOpen", { numberOfKeys: 4, lua: OPEN });

  return redis as Redis & Scripts;
}

/** An entry as stored (`version \n expiresAt \n value`) back into a RawEntry. */
function parseEntry(key: Key, record: string): RawEntry {
  const a = record.indexOf("\n");
  const b = record.indexOf("\n", a + 1);
  const expires = record.slice(a + 1, b);
  return {
    key,
    value: record.slice(b + 1),
    version: record.slice(0, a),
    expiresAt: expires === "" ? null : expires === "inf" ? Infinity : Number(expires),
  };
}

/** A JS number as text Redis and Lua parse back to the same double. */
function numberArg(n: number): string {
  return n === Infinity ? "inf" : n === -Infinity ? "-inf" : String(n);
}

/**
 * The redis driver. Open it with {@linkcode RedisDriver.open}; applications
 * open a store with `openStore({ plugin: redis, url, prefix })`.
 *
 * @example Needs a Redis server
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { RedisDriver } from "@flowstate/redis";
 *
 * const driver = await RedisDriver.open("redis://127.0.0.1:6379", { prefix: "app:" });
 * await driver.commit({
 *   checks: [],
 *   mutations: [{ type: "set", key: ["a"], value: "1", expiresAt: null }],
 *   version: "v1",
 *   now: Date.now(),
 * });
 * assert.equal((await driver.get(["a"], Date.now()))?.value, "1");
 * await driver.close();
 * ```
 */
export class RedisDriver implements StoreDriver {
  /** The server URL without the password, and the prefix. */
  readonly location: string;
  /**
   * Durable as the server is, shared by processes, counts and clears on the
   * server; skips expired entries itself (so a listing's `limit` reaches it).
   */
  readonly capabilities = {
    persistent: true,
    expiry: true,
    query: false,
    count: true,
    clear: true,
    atomicClear: true,
    multiProcess: true,
  } as const;
  #redis: Redis & Scripts;
  #keys: StoreKeys;
  #url: string;
  #storeName: string;
  #lastError: () => Error | undefined;

  private constructor(
    connection: Connection,
    url: string,
    prefix: string,
    storeName: string,
  ) {
    this.#redis = defineScripts(connection.redis);
    this.#lastError = connection.lastError;
    this.#keys = storeKeys(prefix);
    this.#url = url;
    this.#storeName = storeName;
    this.location = `${redactRedisUrl(url)} (prefix ${JSON.stringify(prefix)})`;
  }

  /**
   * Connect to the server at `url` and open the store under the prefix
   * (creating its meta hash unless `mustExist`). Throws a
   * `StoreUnavailableError` when the server cannot be reached,
   * `StoreMissingError` when `mustExist` and there is no store yet, and
   * `StoreCorruptError` when the prefix holds something that is not a
   * Flowstate store of this layout.
   *
   * @example
   * ```ts ignore
   * import { RedisDriver } from "@flowstate/redis";
   * const driver = await RedisDriver.open("redis://127.0.0.1:6379", { prefix: "app:" });
   * await driver.close();
   * ```
   */
  static async open(url: string, options: RedisDriverOptions = {}): Promise<RedisDriver> {
    const storeName = options.storeName ?? "redis";
    const what = `Cannot open store "${storeName}"`;
    const prefix = options.prefix ?? redisDefaults.prefix;
    const connectTimeout = options.connectTimeout ?? redisDefaults.connectTimeout;
    if (typeof url !== "string" || !isRedisUrl(url)) {
      throw new TypeError(
        `${what}: url must be a redis:// or rediss:// URL with a host, like "redis://127.0.0.1:6379/0"`,
      );
    }
    if (typeof prefix !== "string" || !PREFIX.test(prefix)) {
      throw new RangeError(`${what}: prefix ${JSON.stringify(prefix)} must be ${PREFIX_RULE}`);
    }
    if (typeof connectTimeout !== "number" || !(connectTimeout > 0) || connectTimeout > 3600) {
      throw new RangeError(
        `${what}: connectTimeout must be a number of seconds in (0, 3600] (got ${connectTimeout})`,
      );
    }
    const connection = await connect(url, { storeName, connectTimeout, warn: options.warn });
    const driver = new RedisDriver(connection, url, prefix, storeName);
    try {
      await driver.#checkEviction(options.warn);
      await driver.#setUp(options.mustExist === true);
    } catch (err) {
      connection.redis.disconnect();
      throw err;
    }
    return driver;
  }

  /**
   * Refuse a server whose `maxmemory-policy` may evict any key (`allkeys-*`): it would drop the
   * store's keys, and with them its entries, answering every command as if nothing happened.
   * `noeviction` and the `volatile-*` policies never evict them (they have no TTL). A user not
   * allowed `INFO` gets the warning `REDIS_EVICTION_UNCHECKED` instead.
   */
  async #checkEviction(
    warn: ((warning: { code: string; message: string }) => void) | undefined,
  ): Promise<void> {
    const what = `Cannot open store "${this.#storeName}"`;
    const address = hostPort(new URL(this.#url));
    // Asked directly: #call would make a refused INFO a refused store.
    let denied: Error | undefined;
    const info = await this.#call(what, () =>
      this.#redis.info("memory").catch((err: Error) => {
        if (!/^NOPERM\b/.test(err?.message ?? "")) throw err;
        denied = err;
        return "";
      }));
    if (denied !== undefined) {
      warn?.({
        code: "REDIS_EVICTION_UNCHECKED",
        message: `Store "${this.#storeName}": could not check the maxmemory-policy of Redis at ` +
          `${address} (INFO memory: ${denied.message}); with an allkeys-* policy the server may ` +
          `evict the store's keys and lose its entries without an error. Allow the user INFO ` +
          `(+info), or make sure the policy is noeviction`,
      });
      return;
    }
    const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
    if (policy === undefined || !policy.startsWith("allkeys-")) return;
    throw new StoreUnavailableError(
      `${what}: Redis at ${address} has maxmemory-policy ${policy}, so it may evict the store's ` +
        `keys and lose its entries without an error; set maxmemory-policy to noeviction (or a ` +
        `volatile-* policy: the store's keys have no TTL) in redis.conf or with CONFIG SET, or ` +
        `use another Redis server`,
      { store: this.#storeName, address, transient: false },
    );
  }

  async #setUp(mustExist: boolean): Promise<void> {
    const k = this.#keys;
    const what = `Cannot open store "${this.#storeName}"`;
    const [status, detail, more] = await this.#call(
      what,
      () =>
        this.#redis.flowstateOpen(
          k.meta,
          k.keys,
          k.entries,
          k.expiry,
          mustExist ? "1" : "",
          FORMAT,
          LAYOUT_VERSION,
        ),
    );
    if (status === "ok" || status === "created") return;
    if (status === "missing") {
      throw new StoreMissingError(
        `Store "${this.#storeName}" does not exist yet: there is no Flowstate store at ${this.location}`,
        { store: this.#storeName, address: this.location },
      );
    }
    const found = status === "wrongtype"
      ? `the Redis key ${JSON.stringify(detail)} is a ${more}, not a Flowstate key`
      : status === "foreign"
      ? `${k.meta} says format ${JSON.stringify(detail)}, not ${JSON.stringify(FORMAT)}`
      : `its layout version ${detail} is newer than this plugin's (${LAYOUT_VERSION}); upgrade @flowstate/redis`;
    throw new StoreCorruptError(
      `${what}: ${found}. Nothing was changed; use another prefix, or remove those keys`,
      { path: this.location, reason: status === "newer" ? "newer" : "foreign" },
    );
  }

  /**
   * Run a command; a lost connection becomes a `StoreUnavailableError` that
   * says why the client could not reconnect (`connect ECONNREFUSED…`).
   */
  async #call<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (err instanceof Error && /^(ERR )?FLOWSTATE_GONE$/.test(err.message)) {
        throw this.#gone(what);
      }
      if (err instanceof Error && /^NOPERM\b/.test(err.message)) {
        // An ACL user without a command the store runs (inside its scripts too) or without its
        // keys: say which user and what to grant, not only Redis's words.
        const url = new URL(this.#url);
        const user = decodeURIComponent(url.username) || "default";
        const prefix = this.#keys.meta.slice(0, -"meta".length);
        throw new StoreUnavailableError(
          `${what}: Redis at ${hostPort(url)} refused user ${
            JSON.stringify(user)
          }: ${err.message}; ` +
            `the store needs its keys and the commands it runs, inside its Lua scripts too: ` +
            `ACL SETUSER ${user} ~${prefix}* +@read +@write +@scripting +@connection +info`,
          { store: this.#storeName, address: hostPort(url), transient: false },
          { cause: err },
        );
      }
      if (!isConnectionError(err)) throw err;
      const last = this.#lastError();
      const cause = (err as Error).name === "MaxRetriesPerRequestError" && last !== undefined
        ? new Error(`${last.message} (gave up after ${RETRIES} reconnection attempts)`, {
          cause: err,
        })
        : err;
      throw unavailable(what, this.#storeName, this.#url, cause);
    }
  }

  /** One entry or `null` (an expired one too: the core filters it). */
  async get(key: Key): Promise<RawEntry | null> {
    const what = `Cannot get from store "${this.#storeName}"`;
    const k = this.#keys;
    // Sent together, answered in one round trip: the meta hash's presence tells a miss from a
    // store the server lost (see ALIVE in scripts.ts).
    const [record, alive] = await this.#call(
      what,
      () => Promise.all([this.#redis.hget(k.entries, member(key)), this.#redis.exists(k.meta)]),
    );
    if (alive === 0) throw this.#gone(what);
    return record === null ? null : parseEntry(key, record);
  }

  /** Several entries in one `HMGET`, in the order of `keys`. */
  async getMany(keys: readonly Key[]): Promise<(RawEntry | null)[]> {
    if (keys.length === 0) return [];
    const what = `Cannot get from store "${this.#storeName}"`;
    const k = this.#keys;
    const [records, alive] = await this.#call(
      what,
      () =>
        Promise.all([
          this.#redis.hmget(k.entries, ...keys.map(member)),
          this.#redis.exists(k.meta),
        ]),
    );
    if (alive === 0) throw this.#gone(what);
    return records.map((r, i) => r === null ? null : parseEntry(keys[i], r));
  }

  /** The error of a store whose meta hash is gone: the server lost its data. */
  #gone(what: string): StoreCorruptError {
    return new StoreCorruptError(
      `${what}: the store is gone from Redis at ${hostPort(new URL(this.#url))} (its key ` +
        `${JSON.stringify(this.#keys.meta)} is missing): the server lost its data (restarted ` +
        `without persistence, FLUSHDB or FLUSHALL, or keys evicted). Nothing was done; reopen ` +
        `the store to start it empty, and turn on persistence (appendonly yes) so a restart ` +
        `keeps it`,
      { path: this.location, reason: "damaged" },
    );
  }

  /**
   * Live entries (at `now`) in key order, a page (one script run) at a time,
   * at most `range.limit` of them. Expired entries are skipped here, so a
   * listing with a limit fetches no more than it needs.
   */
  list(range: KeyRange, now: number): AsyncIterable<RawEntry> {
    let { min, max } = lexRange(range);
    const reverse = range.reverse === true ? "1" : "";
    const pageSize = Math.min(range.batchSize ?? MAX_PAGE, MAX_PAGE);
    let remaining = range.limit ?? Infinity;
    const what = `Cannot list store "${this.#storeName}"`;
    const k = this.#keys;
    const redis = this.#redis;
    let page: (Buffer | null)[] = [];
    let at = 0;
    let more = remaining > 0;
    const fetch = async (): Promise<void> => {
      const size = Math.min(pageSize, remaining);
      page = await this.#call(
        what,
        () => redis.flowstateListBuffer(k.keys, k.entries, k.meta, min, max, reverse, size),
      );
      at = 0;
      more = page.length === 2 * size;
      if (more) {
        const last = after(page[page.length - 2]!);
        if (reverse) max = last;
        else min = last;
      }
    };
    // A hand-written iterator over the buffered page: no generator machinery per entry.
    const next = async (): Promise<IteratorResult<RawEntry>> => {
      for (;;) {
        while (at < page.length && remaining > 0) {
          const key = page[at]!;
          const record = page[at + 1];
          at += 2;
          // Never null: the scripts change both keys together.
          if (record === null) continue;
          const entry = parseEntry(decodeKey(key), record.toString("utf8"));
          if (entry.expiresAt !== null && entry.expiresAt <= now) continue;
          if (--remaining <= 0) more = false;
          return { value: entry, done: false };
        }
        if (!more) return { value: undefined, done: true };
        await fetch();
      }
    };
    return { [Symbol.asyncIterator]: () => ({ next }) };
  }

  /** Checks and mutations in one Lua script: all or nothing, across every client. */
  async commit(request: CommitRequest): Promise<DriverCommitResult> {
    const k = this.#keys;
    const args: (string | Buffer | number)[] = [
      k.keys,
      k.entries,
      k.expiry,
      k.meta,
      numberArg(request.now),
      request.version,
      request.checks.length,
    ];
    for (const check of request.checks) {
      args.push(member(check.key), check.version === null ? "" : `=${check.version}`);
    }
    for (const m of request.mutations) {
      if (m.type === "set") {
        args.push("s", member(m.key), m.expiresAt === null ? "" : numberArg(m.expiresAt), m.value);
      } else if (m.type === "delete") {
        args.push("d", member(m.key));
      } else {
        const { min, max } = lexRange(m.range);
        args.push("c", min, max);
      }
    }
    const conflicts = await this.#call(
      `Cannot write to store "${this.#storeName}"`,
      () => this.#redis.flowstateCommit(...args),
    );
    if (conflicts.length === 0) return { ok: true };
    return { ok: false, conflicts: conflicts.map((i) => request.checks[i].key) };
  }

  /** Live entries in a range: `ZLEXCOUNT` less the expired ones in it, on the server. */
  count(range: ClearRange, now: number): Promise<number> {
    const { min, max } = lexRange(range);
    return this.#call(
      `Cannot count store "${this.#storeName}"`,
      () =>
        this.#redis.flowstateCount(
          this.#keys.keys,
          this.#keys.expiry,
          this.#keys.meta,
          min,
          max,
          numberArg(now),
        ),
    );
  }

  /** Delete a range (expired entries too) in one script; resolves how many were live. */
  clear(range: ClearRange, now: number): Promise<number> {
    const { min, max } = lexRange(range);
    const k = this.#keys;
    return this.#call(
      `Cannot clear store "${this.#storeName}"`,
      () =>
        this.#redis.flowstateClear(k.keys, k.entries, k.expiry, k.meta, min, max, numberArg(now)),
    );
  }

  /** Delete every entry expired at `now` (by the store's clock), found through the expiry set. */
  purgeExpired(now: number): Promise<number> {
    const k = this.#keys;
    return this.#call(
      `Cannot purge store "${this.#storeName}"`,
      () => this.#redis.flowstatePurge(k.keys, k.entries, k.expiry, k.meta, numberArg(now)),
    );
  }

  /** Close the connection (waiting for replies to commands already sent). */
  async close(): Promise<void> {
    if (this.#redis.status === "ready") {
      try {
        await this.#redis.quit();
        return;
      } catch {
        // The connection went away meanwhile: nothing left to wait for.
      }
    }
    this.#redis.disconnect();
  }
}

/** An error of the connection (not a Redis error reply): the server is unreachable. */
function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return err.name === "MaxRetriesPerRequestError" ||
    /^(Connection is closed|Stream isn't writeable|connect E|read E|write E)/.test(err.message);
}
