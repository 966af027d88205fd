/**
 * `flowstate serve [--port 8377] [--host 127.0.0.1] [--token T] [--no-worker]
 * [--concurrency N]`: the HTTP API, `/metrics`, the event feed and the
 * inspector page, and a queue worker running the runs it enqueues (and any
 * other queued run), until SIGINT or SIGTERM; then the worker's runs get
 * `runs.abortGrace` and go back to the queue, the jobs it started are
 * cancelled (recorded cancelled), every connection and event stream is
 * closed, and it exits 0.
 *
 * Settings: the flags, else the config's `serve:` section (`port`, `host`,
 * `token`, which may be `${env.NAME}`); the token also from
 * `$FLOWSTATE_SERVE_TOKEN` (or the file `$FLOWSTATE_SERVE_TOKEN_FILE` names). Any host but 127.0.0.1 requires a token: without
 * one, a token is generated and printed once on stderr with the URL to open.
 *
 * The worker waits for a records store that cannot be reached (its server
 * down or starting; `--wait-for-store` bounds that at start) while the
 * server serves: `/health` answers 503 with `worker.status`
 * `waiting-for-store` meanwhile, and a request that needs a store that
 * cannot be reached is answered 503 `store_unavailable` naming it.
 *
 * Output (stderr): `Serving http://127.0.0.1:8377/` once listening (with
 * `--port 0`, the port picked), and `Server stopped` at the end; (stdout) the
 * worker's lines, as `flowstate worker` prints them.
 *
 * @module
 */
import { checkOnFailure, openRuntime, type Runtime, setRunSource } from "../runtime.ts";
import type { ResolvedConfig } from "../config.ts";
import type { ScheduleSource } from "../scheduler/listing.ts";
import { type FlowstateServer, serve } from "../serve/server.ts";
import { tokenProblem } from "../serve/auth.ts";
import { flowFiles } from "../flow_files.ts";
import type { SchedulerStatus } from "../serve/api.ts";
import { type GlobalOptions, interruptible, printWarning } from "./common.ts";
import { UsageError } from "./input.ts";
import { EnvFileError, envOrFile, fileVariableOf } from "../_env_file.ts";
import { jsonLogs, logEvent } from "./log_format.ts";
import { heldRunsAtExit, queuedRunLogs, waitForStoreSetting, workerPrinter } from "./queue.ts";
import { DEFAULT_LEASE_MS, type Worker, type WorkerOptions } from "../queue/worker.ts";

/** The environment variable a token may come from. */
export const SERVE_TOKEN_ENV = "FLOWSTATE_SERVE_TOKEN";

/** Options of `flowstate serve` (and the server of `daemon --serve`). */
export interface ServeCommandOptions {
  /** `--port N`. */
  port?: number;
  /** `--host H`. */
  host?: string;
  /** `--token T`. */
  token?: string;
  /** `--no-worker`: `false` runs no queue worker here. */
  worker?: boolean;
  /** `--concurrency N`: the worker's runs at once. */
  concurrency?: number;
  /** `--quiet`: worker lines only for runs that did not succeed. */
  quiet?: boolean;
  /** `--wait-for-store 5m`: how long the worker waits for an unreachable records store at start. */
  waitForStore?: string;
}

/** Start the server of `runtime` with the flags over the config's `serve:`, and say where on stderr. */
export async function startServer(
  runtime: Runtime,
  options: ServeCommandOptions,
  extra: {
    signal?: AbortSignal;
    scheduler?: () => SchedulerStatus;
    worker?: WorkerOptions | false;
    workerBeside?: Worker;
    config?: () => ResolvedConfig;
    schedules?: () => ScheduleSource;
  } = {},
): Promise<FlowstateServer> {
  // A flows: entry that cannot be read is refused now, as the daemon refuses it: otherwise
  // every flow route and webhook would answer it as an internal error.
  await flowFiles(runtime.config);
  await warnOfBrokenWebhooks(runtime);
  const config = runtime.config.serve;
  const fromEnv = options.token === undefined ? tokenFromEnv() : undefined;
  const token = options.token ?? fromEnv ?? config.token;
  const source = options.token !== undefined
    ? "--token"
    : fromEnv === undefined
    ? "serve.token in the config"
    : Deno.env.get(fileVariableOf(SERVE_TOKEN_ENV))
    ? `the file ${fileVariableOf(SERVE_TOKEN_ENV)} names`
    : `$${SERVE_TOKEN_ENV}`;
  const problem = token === undefined ? undefined : tokenProblem(token, `the token of ${source}`);
  if (problem !== undefined) throw new UsageError(`Cannot serve: ${problem}`);
  const hostname = options.host ?? config.host ?? "127.0.0.1";
  const port = options.port ?? config.port;
  let server: FlowstateServer;
  try {
    server = await serve(runtime, {
      hostname,
      ...(port === undefined ? {} : { port }),
      ...(token === undefined ? {} : { token }),
      ...extra,
    });
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) {
      throw new UsageError(
        `Cannot serve on ${hostname}:${
          port ?? 8377
        }: the address is in use; pick another with --port (or serve.port in the config)`,
      );
    }
    if (
      err instanceof Deno.errors.AddrNotAvailable || err instanceof Deno.errors.PermissionDenied
    ) {
      throw new UsageError(
        `Cannot serve on ${hostname}:${port ?? 8377}: ${(err as Error).message}`,
      );
    }
    // A name that does not resolve (a typo, an address out of range: 999.1.1.1) is a plain Error.
    if (err instanceof Error && /lookup address/i.test(err.message)) {
      throw new UsageError(
        `Cannot serve on ${hostname}:${
          port ?? 8377
        }: ${err.message}; give --host (or serve.host in the config) an address of this machine, like 127.0.0.1 or 0.0.0.0, or a name that resolves to one`,
      );
    }
    throw err;
  }
  if (jsonLogs()) {
    logEvent("info", `Serving ${server.url}`, { event: "server.start", url: server.url });
  } else console.error(`Serving ${server.url}`);
  if (server.tokenGenerated) {
    const wildcard = hostname === "0.0.0.0" || hostname === "::";
    let shown = server.url;
    if (wildcard) {
      let name = "127.0.0.1";
      try {
        name = Deno.hostname();
      } catch {
        // Without --allow-sys=hostname: the loopback name works on this machine.
      }
      shown = `http://${name}:${server.port}/`;
    }
    const lines = [
      `Generated a token (shown only now; pass --token or set ${SERVE_TOKEN_ENV} to choose one):`,
      `  open ${shown}#token=${server.token}`,
      `  or send "Authorization: Bearer ${server.token}"`,
    ];
    // Shown once: with --log-format json, one warn line (--quiet keeps it, as in text).
    if (jsonLogs()) {
      logEvent("warn", lines.join("\n"), {
        event: "server.token",
        url: `${shown}#token=${server.token}`,
      });
    } else for (const line of lines) console.error(line);
  }
  return server;
}

/**
 * `$FLOWSTATE_SERVE_TOKEN`, or the content of the file
 * `$FLOWSTATE_SERVE_TOKEN_FILE` names (one trailing newline removed); empty is
 * unset, but an empty file is an error (a secret mounted wrong would otherwise
 * serve without a token on 127.0.0.1).
 */
function tokenFromEnv(): string | undefined {
  let token: string | undefined;
  try {
    token = envOrFile(SERVE_TOKEN_ENV, (name) => {
      const value = Deno.env.get(name);
      return value === "" ? undefined : value;
    });
  } catch (err) {
    if (err instanceof EnvFileError) throw new UsageError(`Cannot serve: ${err.message}`);
    throw err;
  }
  if (token === "") {
    throw new UsageError(
      `Cannot serve: ${fileVariableOf(SERVE_TOKEN_ENV)}=${
        Deno.env.get(fileVariableOf(SERVE_TOKEN_ENV))
      }: the file is empty (the token is read from it); write the token in it, or unset ${
        fileVariableOf(SERVE_TOKEN_ENV)
      }`,
    );
  }
  return token;
}

/**
 * Warn of each webhook that cannot work: its flow is invalid, or the variable
 * of its secret is not set. Each request would be refused with a 500 the
 * sender sees and the operator, reading this output, would not.
 */
async function warnOfBrokenWebhooks(runtime: Runtime): Promise<void> {
  const { webhookRoutes, webhookSecret } = await import("../serve/webhooks.ts");
  for (const route of (await webhookRoutes(runtime)).values()) {
    const secret = route.trigger.secret?.env;
    const found = secret === undefined ? undefined : webhookSecret(secret);
    const why = route.problem !== undefined
      ? `its flow ${route.flowId} (${route.file}) is invalid, so every request to it is refused (500): ${route.problem}`
      : found === undefined || "value" in found
      ? undefined
      : !Deno.env.get(fileVariableOf(secret!))
      ? `its secret's variable ${secret} is not set here, so every request to it is refused (500) until it is`
      : `its secret cannot be read (${found.problem}), so every request to it is refused (500) until it can`;
    if (why !== undefined) {
      printWarning({ code: "WEBHOOK_BROKEN", message: `webhook ${route.path}: ${why}` });
    }
  }
}

/** `serve [--port N] [--host H] [--token T] [--no-worker] [--concurrency N]`: exit 0 after a clean stop. */
export async function serveCommand(
  options: ServeCommandOptions,
  global: GlobalOptions,
): Promise<number> {
  const waitForStore = waitForStoreSetting(options.waitForStore);
  await using runtime = await openRuntime({ config: global.config, onWarning: printWarning });
  setRunSource(runtime, "api");
  // A bad runs.onFailure flow is said at the start, not at the first failure.
  await checkOnFailure(runtime);
  await interruptible("Stopping the server", async (signal) => {
    const printLine = workerPrinter(false, options.quiet === true);
    using held = heldRunsAtExit(DEFAULT_LEASE_MS);
    const runLogs = queuedRunLogs(options.quiet === true);
    const server = await startServer(runtime, options, {
      worker: options.worker === false ? false : {
        ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
        ...waitForStore,
        ...(runLogs.onRunEvent === undefined ? {} : { onRunEvent: runLogs.onRunEvent }),
        onEvent(event) {
          held.track(event);
          runLogs.track(event);
          printLine(event);
        },
      },
    });
    const stopped = Promise.withResolvers<void>();
    signal.addEventListener("abort", () => stopped.resolve(), { once: true });
    if (signal.aborted) stopped.resolve();
    await stopped.promise;
    await server.shutdown();
    await server.finished;
  });
  if (jsonLogs()) logEvent("info", "Server stopped", { event: "server.stop" });
  else console.error("Server stopped");
  return 0;
}
