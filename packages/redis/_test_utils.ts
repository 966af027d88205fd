/**
 * Helpers shared by the redis plugin's test files (not published).
 *
 * Tests that need a server read its URL from FLOWSTATE_TEST_REDIS_URL (CI:
 * redis://127.0.0.1:6379). Without it {@linkcode redisTest} registers them as
 * ignored, with the reason in their name. Every store a test file opens lives
 * under that file's own {@linkcode PREFIX} (each test file runs in its own
 * isolate), and the file's last test, registered by
 * {@linkcode removeTestKeys}, deletes every key under it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Redis } from "ioredis";

/** The server to test against, or `undefined` to ignore the tests that need one. */
export const REDIS_URL: string | undefined = Deno.env.get("FLOWSTATE_TEST_REDIS_URL") ||
  undefined;
/** Why a test that needs a server is ignored. */
export const NEEDS_SERVER = "set FLOWSTATE_TEST_REDIS_URL to run";
/** This test file's own key prefix; every store it opens lives under it. */
export const PREFIX = `flowstate_test:${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}:`;
/** The redis package's directory. */
export const PACKAGE: string = new URL("./", import.meta.url).pathname;
/** The package's test scripts. */
export const TESTDATA: string = new URL("./testdata/", import.meta.url).pathname;

/** Register a test that needs a server, or an ignored one saying why. */
export function redisTest(name: string, fn: (url: string) => Promise<void>): void {
  if (REDIS_URL === undefined) {
    Deno.test({ name: `${name} (ignored: ${NEEDS_SERVER})`, ignore: true, fn: () => {} });
  } else {
    Deno.test(name, () => fn(REDIS_URL));
  }
}

let stores = 0;
/** A new prefix under {@linkcode PREFIX} for one store. */
export function newPrefix(label: string): string {
  return `${PREFIX}${++stores}_${label}:`;
}

/** A plain ioredis client, for inspecting and tampering with a store's keys. */
export async function withAdmin(url: string, fn: (redis: Redis) => Promise<void>): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    await fn(redis);
  } finally {
    await redis.quit();
  }
}

/** Every Redis key under `prefix` (SCAN, not KEYS: it never blocks the server). */
export async function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    found.push(...keys);
    cursor = next;
  } while (cursor !== "0");
  return found.sort();
}

/** Register the test that deletes every key under {@linkcode PREFIX}: call it last in a test file. */
export function removeTestKeys(): void {
  redisTest("redis test keys are removed", async (url) => {
    await withAdmin(url, async (redis) => {
      const keys = await keysUnder(redis, PREFIX);
      if (keys.length > 0) await redis.unlink(...keys);
      assert.deepEqual(await keysUnder(redis, PREFIX), []);
    });
  });
}

/** Whether `redis-server` is on PATH (tests that start their own server are ignored without it). */
function hasRedisServer(): boolean {
  try {
    return new Deno.Command("redis-server", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/** A `redis-server` of a test's own, on a free port: restart it, reconfigure it, stop it. */
export interface OwnServer {
  /** `redis://127.0.0.1:<port>`. */
  url: string;
  /** A plain client of it (logged in with the `--requirepass` of the args, if any). */
  admin: Redis;
  /** Kill it (SIGKILL) and start it again on the same port with the same arguments. */
  restart(): Promise<void>;
}

let ownServerChecked: boolean | undefined;

/**
 * Register a test that starts its own `redis-server` with `args` (no persistence unless the
 * args say) on a free port, and kills it at the end; ignored when `redis-server` is not on PATH.
 */
export function ownServerTest(
  name: string,
  args: string[],
  fn: (server: OwnServer) => Promise<void>,
): void {
  ownServerChecked ??= hasRedisServer();
  if (!ownServerChecked) {
    Deno.test({
      name: `${name} (ignored: needs redis-server on PATH)`,
      ignore: true,
      fn: () => {},
    });
    return;
  }
  Deno.test(name, async () => {
    const dir = await Deno.makeTempDir({ prefix: "flowstate_redis_" });
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    let child: Deno.ChildProcess | undefined;
    const start = async () => {
      child = new Deno.Command("redis-server", {
        args: [
          "--port",
          String(port),
          "--bind",
          "127.0.0.1",
          "--save",
          "",
          "--appendonly",
          "no",
          "--dir",
          dir,
          ...args,
        ],
        stdout: "null",
        stderr: "null",
      }).spawn();
      // Ready once it answers PING.
      for (let i = 0; i < 200; i++) {
        try {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port });
          await conn.write(new TextEncoder().encode("PING\r\n"));
          const buf = new Uint8Array(16);
          const n = await conn.read(buf);
          conn.close();
          // A server with requirepass answers before the login too.
          if (/^(\+PONG|-NOAUTH)/.test(new TextDecoder().decode(buf.subarray(0, n ?? 0)))) return;
        } catch {
          // Not listening yet.
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`redis-server on port ${port} did not answer PING`);
    };
    const stop = async () => {
      if (child === undefined) return;
      try {
        child.kill("SIGKILL");
      } catch {
        // Exited already.
      }
      await child.status;
      child = undefined;
    };
    await start();
    const url = `redis://127.0.0.1:${port}`;
    const password = args[args.indexOf("--requirepass") + 1];
    const admin = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      ...(args.includes("--requirepass") ? { password } : {}),
    });
    admin.on("error", () => {});
    try {
      await admin.connect();
      await fn({
        url,
        admin,
        async restart() {
          await stop();
          await start();
        },
      });
    } finally {
      admin.disconnect();
      await stop();
      await Deno.remove(dir, { recursive: true });
    }
  });
}
