/**
 * `@flowstate/redis`: a Flowstate storage plugin on Redis, through
 * [ioredis](https://github.com/redis/ioredis) (loaded only when a store opens).
 *
 * ```yaml
 * # flowstate.yaml, with "@flowstate/redis": "jsr:@flowstate/redis@^0.4" in deno.json's imports
 * stores:
 *   shared: { plugin: "@flowstate/redis", url: "${env.REDIS_URL}", prefix: "myapp:" }
 * ```
 *
 * - A store is four Redis keys under its `prefix`: a sorted set of the
 *   encoded keys (all score 0, so `ZRANGEBYLEX` is Flowstate key order), a
 *   hash of entries, a sorted set of expiry times and a small meta hash.
 *   Several stores share one server under different prefixes.
 * - Every commit is one Lua script: its checks and all its writes happen
 *   with no other client's command in between, so compare-and-set is exact
 *   across processes and machines, in one round trip.
 * - `count`, `clear` and purging expired entries run on the server (`ZLEXCOUNT`,
 *   range deletes in Lua, the expiry set by score), not as scans from here.
 * - Expiry follows the store's clock, which the core injects: an entry's
 *   expiry time is stored with it and compared with the caller's `now`. Redis
 *   TTLs are not used (they follow the server's clock, and a store opened
 *   with a test clock, or run on a machine whose clock differs, would
 *   disagree with them). `flowstate jobs run gc` (or `store.purgeExpired()`)
 *   removes expired entries.
 * - Deno permissions: `--allow-net` for the server and `--allow-env` (ioredis's
 *   `debug` dependency reads the environment when it loads).
 * - Not for Redis Cluster: a store's keys must live on one node.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import redis, { redisOptions } from "@flowstate/redis";
 *
 * // What `{ plugin: "@flowstate/redis" }` in a config becomes, defaults filled in.
 * // (Opening a store needs a server: `await openStore({ plugin: redis, url })`.)
 * const options = redisOptions.parse({});
 * assert.equal(redis.name, "redis");
 * assert.equal(options.url, "redis://127.0.0.1:6379");
 * assert.equal(options.prefix, "flowstate:");
 * ```
 *
 * @module
 */
import { z } from "zod";
import { definePlugin, type ParsingSchema, type Plugin } from "@flowstate/core/plugin";
import { isRedisUrl, PREFIX, PREFIX_RULE, redisDefaults } from "./connect.ts";
import { RedisDriver } from "./driver.ts";

export { redactRedisUrl, redisDefaults } from "./connect.ts";
export { RedisDriver, type RedisDriverOptions } from "./driver.ts";

/**
 * Validated options of the redis plugin (see {@linkcode redisOptions}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type RedisOptions, redisOptions } from "@flowstate/redis";
 *
 * const options: RedisOptions = redisOptions.parse({ prefix: "jobs:" });
 * assert.deepEqual(options, { url: "redis://127.0.0.1:6379", prefix: "jobs:", connectTimeout: 10 });
 * ```
 */
export interface RedisOptions {
  /** A `redis://` or `rediss://` URL (default `redis://127.0.0.1:6379`). */
  url: string;
  /** Every Redis key of the store starts with this (default `flowstate:`). */
  prefix: string;
  /** Seconds to wait for the server when opening (default 10). */
  connectTimeout: number;
}

/**
 * The schema of the redis plugin's options (a zod schema): an unknown option
 * is refused with a suggestion, a bad one with what it must be.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { redisOptions } from "@flowstate/redis";
 *
 * const options = redisOptions.parse({ url: "redis://cache:6379/2", prefix: "jobs:" });
 * assert.equal(options.connectTimeout, 10);
 * assert.equal(redisOptions.safeParse({ prefix: "has space" }).success, false);
 * ```
 */
export const redisOptions: ParsingSchema<RedisOptions> = z.strictObject({
  /**
   * `redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS. Put a
   * password in an environment variable: `"${env.REDIS_URL}"`.
   */
  url: z.string().refine(isRedisUrl, {
    message:
      'must be a redis:// or rediss:// URL with a host and an optional database number, like "redis://127.0.0.1:6379/0"',
  }).default(redisDefaults.url),
  /** Every Redis key of the store starts with this, so several stores share a server. */
  prefix: z.string().regex(PREFIX, { message: `must be ${PREFIX_RULE}` }).default(
    redisDefaults.prefix,
  ),
  /** Seconds to wait for the server to answer when opening, before failing. */
  connectTimeout: z.number().positive().max(3600).default(redisDefaults.connectTimeout),
});

/**
 * The redis plugin. Name it in a config as `plugin: "@flowstate/redis"` (an
 * import map entry) or `plugin: "jsr:@flowstate/redis@^0.4"`, or pass it to
 * `openStore` directly.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import redis from "@flowstate/redis";
 *
 * // await using store = await openStore({ plugin: redis, prefix: "app:" });
 * assert.equal(redis.kind, "flowstate.plugin");
 * assert.match(redis.description ?? "", /Redis/);
 * ```
 */
const redisPlugin: Plugin<RedisOptions> = definePlugin({
  name: "redis",
  description: "Redis through ioredis; shared by processes, atomic Lua commits, prefix per store",
  optionsSchema: redisOptions,
  open(options, context) {
    return RedisDriver.open(options.url, {
      prefix: options.prefix,
      connectTimeout: options.connectTimeout,
      storeName: context.storeName,
      mustExist: context.mustExist ?? false,
      ...(context.warn === undefined ? {} : { warn: context.warn }),
    });
  },
});
export default redisPlugin;
