/**
 * Webhooks: a flow declaring `trigger: { http: { path: /hooks/x } }` runs
 * when a request comes to that path of `flowstate serve`. The request's body,
 * headers and query become inputs through the declared mappings; a declared
 * secret is checked as an HMAC-SHA256 of the raw body, in constant time.
 *
 * @module
 */
import { relative } from "node:path";
import { ConfigError, messageOf } from "../errors.ts";
import { FlowValidationError, loadFlowFile } from "../flow/parse.ts";
import type { HttpTrigger, InputType } from "../flow/types.ts";
import type { Runtime } from "../runtime.ts";
import { flowFiles } from "../scheduler/from_config.ts";
import { rawFlowData } from "../flow_files.ts";
import { addressedToLoopback, hostOf, sameToken } from "./auth.ts";
import {
  errorResponse,
  HttpError,
  json,
  readBytes,
  runtimeClosed,
  storeUnavailable,
} from "./http.ts";
import { enqueueOverHttp, httpDedupeKey } from "./queued.ts";
import { booleanQueryProblem } from "./router.ts";
import { parseJson } from "../_json.ts";
import { EnvFileError, envOrFile, fileVariableOf } from "../_env_file.ts";

/** The largest webhook body read (bytes). */
export const MAX_WEBHOOK_BODY = 1024 * 1024;

/** How long a client may take to send its body (ms). */
export const WEBHOOK_BODY_TIMEOUT = 10_000;

/**
 * A webhook's shared secret: the variable `name`, or (when it is unset) the
 * content of the file `<name>_FILE` names, one trailing newline removed; or
 * why the server has none (unset, empty, both set, a file it cannot read).
 */
export function webhookSecret(name: string): { value: string } | { problem: string } {
  let value: string | undefined;
  try {
    value = envOrFile(name, (n) => Deno.env.get(n));
  } catch (err) {
    if (err instanceof EnvFileError) return { problem: err.message };
    throw err;
  }
  if (value === undefined || value === "") {
    const file = fileVariableOf(name);
    return {
      problem: value === undefined
        ? `neither ${name} nor ${file} is set`
        : Deno.env.get(name) === ""
        ? `${name} is empty`
        : `${file}=${Deno.env.get(file)}: the file is empty (the value of ${name} is read from it)`,
    };
  }
  return { value };
}

/** One flow's webhook. */
export interface WebhookRoute {
  /** `/hooks/…`. */
  path: string;
  /** `POST` or `PUT`. */
  method: "POST" | "PUT";
  /** The flow's id. */
  flowId: string;
  /** The flow file. */
  file: string;
  /** The trigger as declared. */
  trigger: HttpTrigger;
  /** Why the flow cannot run: its file is invalid (its YAML still declares this path). */
  problem?: string;
  /** The declared type of each input the flow declares. */
  inputTypes?: Record<string, InputType>;
}

interface Cached {
  mtime: number | null;
  size: number;
  trigger: HttpTrigger | undefined;
  flowId: string;
  problem?: string;
  inputTypes?: Record<string, InputType>;
}

const caches = new WeakMap<Runtime, Map<string, Cached>>();

/**
 * The webhooks the config's flows declare, by path. Flow files are re-read
 * when they change. Two flows declaring one path are a {@linkcode ConfigError}
 * naming both; an invalid flow file is skipped here (`flowstate validate`
 * reports it).
 */
export async function webhookRoutes(runtime: Runtime): Promise<Map<string, WebhookRoute>> {
  let cache = caches.get(runtime);
  if (!cache) caches.set(runtime, cache = new Map());
  const routes = new Map<string, WebhookRoute>();
  for (const file of await flowFiles(runtime.config)) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(file);
    } catch {
      continue;
    }
    const mtime = info.mtime?.getTime() ?? null;
    let entry = cache.get(file);
    if (!entry || entry.mtime !== mtime || entry.size !== info.size || mtime === null) {
      try {
        const parsed = await loadFlowFile(file, { stores: runtime.storeNames });
        entry = {
          mtime,
          size: info.size,
          trigger: parsed.definition.trigger?.http,
          flowId: parsed.definition.id,
          inputTypes: Object.fromEntries(
            Object.entries(parsed.definition.inputs ?? {}).map(([name, spec]) => [
              name,
              spec.type ?? "any",
            ]),
          ),
        };
      } catch (err) {
        if (!(err instanceof FlowValidationError)) throw err;
        // Its YAML may still declare a path: a request there is told what is wrong.
        const raw = await rawFlowData(file);
        const http = (raw?.trigger as { http?: { path?: unknown } } | undefined)?.http;
        entry = typeof http?.path === "string"
          ? {
            mtime,
            size: info.size,
            trigger: { path: http.path } as HttpTrigger,
            flowId: typeof raw?.id === "string" ? raw.id : "?",
            problem: err.message.split("\n")[0],
          }
          : { mtime, size: info.size, trigger: undefined, flowId: "" };
      }
      cache.set(file, entry);
    }
    if (entry.trigger === undefined) continue;
    const other = routes.get(entry.trigger.path);
    if (other !== undefined) {
      throw new ConfigError(
        `flows ${other.flowId} (${shown(other.file)}) and ${entry.flowId} (${
          shown(file)
        }) both declare the webhook ${entry.trigger.path}: give each flow its own trigger.http.path`,
      );
    }
    routes.set(entry.trigger.path, {
      path: entry.trigger.path,
      method: entry.trigger.method ?? "POST",
      flowId: entry.flowId,
      file,
      trigger: entry.trigger,
      ...(entry.problem === undefined ? {} : { problem: entry.problem }),
      ...(entry.inputTypes === undefined ? {} : { inputTypes: entry.inputTypes }),
    });
  }
  return routes;
}

function shown(file: string): string {
  const rel = relative(Deno.cwd(), file);
  return rel.startsWith("..") ? file : rel;
}

function error(status: number, message: string, headers?: Record<string, string>): Response {
  const code = status === 404
    ? "not_found"
    : status === 401
    ? "unauthorized"
    : status === 403
    ? "forbidden"
    : status >= 500
    ? "internal"
    : "bad_request";
  return json({ error: { code, message } }, status, headers);
}

/** Hex HMAC-SHA256 of `body` with `secret`. */
async function hmacHex(secret: string, body: Uint8Array): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, body as BufferSource));
  return [...mac].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The body as a value: JSON, form fields, or text; `text` when its values are text (form fields,
 * a text body), which an input of another type reads as the command line's `--input` does.
 */
function parseBody(request: Request, raw: Uint8Array): { value: unknown; text: boolean } {
  if (raw.length === 0) return { value: null, text: false };
  const type = (request.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  const text = new TextDecoder("utf-8", { fatal: true }).decode(raw);
  if (type === "application/json" || type.endsWith("+json")) {
    try {
      return { value: parseJson(text), text: false };
    } catch (err) {
      throw new HttpError("bad_request", `the body is not valid JSON: ${messageOf(err)}`);
    }
  }
  if (type === "application/x-www-form-urlencoded") {
    return { value: Object.fromEntries(new URLSearchParams(text)), text: true };
  }
  return { value: text, text: true };
}

/** Input types whose values, given as text, are parsed (`"5"` → 5, `"true"` → true, JSON). */
const PARSED_FROM_TEXT: ReadonlySet<InputType> = new Set(["number", "boolean", "object", "array"]);

/**
 * The inputs a request gives through `trigger.inputs` (or its JSON object body), and the names
 * of those given as text (a header, a query parameter, a form field, a text body) that an input
 * of type number, boolean, object or array reads as `flowstate run --input` does: a form or a
 * query string can give only text, so `count: query.count` of a number input could never be given.
 */
function inputsOf(
  route: WebhookRoute,
  request: Request,
  body: { value: unknown; text: boolean },
): { input: Record<string, unknown>; fromStrings: string[] } {
  const { trigger } = route;
  const textual = new Set<string>();
  const parsedFromText = () =>
    [...textual].filter((name) => PARSED_FROM_TEXT.has(route.inputTypes?.[name] ?? "any"));
  if (trigger.inputs === undefined) {
    if (body.value === null) return { input: {}, fromStrings: [] };
    if (typeof body.value !== "object" || Array.isArray(body.value)) {
      throw new HttpError(
        "bad_request",
        `the body is not a JSON object of inputs; the flow can map it with trigger.http.inputs (e.g. payload: body)`,
      );
    }
    const input = body.value as Record<string, unknown>;
    if (body.text) { for (const name of Object.keys(input)) textual.add(name); }
    return { input, fromStrings: parsedFromText() };
  }
  const query = new URL(request.url).searchParams;
  const inputs: Record<string, unknown> = {};
  for (const [name, source] of Object.entries(trigger.inputs)) {
    const [root, ...path] = source.split(".");
    let value: unknown;
    if (root === "headers") value = request.headers.get(path.join(".")) ?? undefined;
    else if (root === "query") value = query.get(path.join(".")) ?? undefined;
    else {
      if (body.text) textual.add(name);
      value = body.value;
      for (const part of path) {
        if (value === null || typeof value !== "object") {
          value = undefined;
          break;
        }
        value = Object.hasOwn(value, part) ? (value as Record<string, unknown>)[part] : undefined;
      }
    }
    if (value !== undefined) inputs[name] = value;
    if (root === "headers" || root === "query") textual.add(name);
  }
  return { input: inputs, fromStrings: parsedFromText() };
}

/**
 * Answer a request to `path` (`/hooks/…`): enqueue a run of the flow
 * declaring it, with the request's inputs (an `Idempotency-Key` header is its
 * dedupe key). 202 `{ runId, status, existing }` once queued (`?wait=true`:
 * 200 `{ run }` at its end, whichever worker runs it); 404 for a path no flow declares, 405 for another
 * method, 401 for a missing or wrong signature, 400 for bad inputs.
 */
export async function handleWebhook(
  runtime: Runtime,
  request: Request,
  path: string,
  options: {
    bodyTimeoutMs?: number;
    /** Aborted when the server stops: a waiting request (`?wait=true`) stops waiting. */
    signal?: AbortSignal;
    /**
     * The server has no token: a webhook without `secret:` then answers only
     * requests addressed to a loopback name (see `auth.ts`).
     */
    tokenless?: boolean;
  } = {},
): Promise<Response> {
  let routes: Map<string, WebhookRoute>;
  try {
    routes = await webhookRoutes(runtime);
  } catch (err) {
    return error(500, messageOf(err));
  }
  const route = routes.get(path);
  if (!route) {
    return error(
      404,
      `no flow declares the webhook ${path}: add trigger: { http: { path: ${path} } } to a flow under the config's flows:`,
    );
  }
  if (route.problem !== undefined) {
    return error(
      500,
      `the flow ${route.flowId} (${
        shown(route.file)
      }), which declares the webhook ${path}, is invalid: ${route.problem}; fix it (flowstate validate ${
        shown(route.file)
      })`,
    );
  }
  if (
    options.tokenless === true && route.trigger.secret === undefined &&
    !addressedToLoopback(request)
  ) {
    // A page that rebinds its own name to 127.0.0.1 would run it (and, with ?wait=true, read
    // its run's outputs): the rule the rest of a server without a token follows.
    return error(
      403,
      `Refused: the webhook ${path} has no secret: and this server has no token, so it answers only requests addressed to a loopback name (the Host header "${
        hostOf(request)
      }" is not one); give the webhook a secret: (its senders sign the body) or serve with a token`,
    );
  }
  if (request.method !== route.method) {
    return error(
      405,
      `the webhook ${path} takes ${route.method}, not ${request.method}`,
      { allow: route.method },
    );
  }
  try {
    const raw = await readBytes(
      request,
      MAX_WEBHOOK_BODY,
      options.bodyTimeoutMs ?? WEBHOOK_BODY_TIMEOUT,
    );
    const secret = route.trigger.secret;
    if (secret !== undefined) {
      const found = webhookSecret(secret.env);
      if ("problem" in found) {
        return error(
          500,
          `the webhook ${path} needs its secret in the environment variable ${secret.env} (or a file named by ${
            fileVariableOf(secret.env)
          }), which the server does not have (${found.problem}): set it where flowstate serve runs`,
        );
      }
      const value = found.value;
      const given = request.headers.get("x-flowstate-signature") ??
        request.headers.get("x-hub-signature-256");
      const expected = `sha256=${await hmacHex(value, raw)}`;
      if (given === null || !(await sameToken(given.trim().toLowerCase(), expected))) {
        return error(
          401,
          given === null
            ? `the webhook ${path} needs a signature: X-Flowstate-Signature: sha256=<hex HMAC-SHA256 of the body with the shared secret>`
            : `the signature of the request to ${path} does not match its body`,
        );
      }
    }
    let body: { value: unknown; text: boolean };
    try {
      body = parseBody(request, raw);
    } catch (err) {
      if (err instanceof TypeError) {
        throw new HttpError("bad_request", "the body is not valid UTF-8");
      }
      throw err;
    }
    const { input, fromStrings } = inputsOf(route, request, body);
    const waitParam = new URL(request.url).searchParams.get("wait");
    const waitProblem = waitParam === null ? undefined : booleanQueryProblem("wait", waitParam);
    if (waitProblem !== undefined) throw new HttpError("bad_request", waitProblem);
    const wait = waitParam === "true";
    const key = httpDedupeKey(route.flowId, request, undefined);
    const signals = [request.signal, ...(options.signal ? [options.signal] : [])];
    const answer = await enqueueOverHttp(
      runtime,
      route.file,
      { input, inputFromStrings: fromStrings, ...(key === undefined ? {} : { key }) },
      wait ? { signal: AbortSignal.any(signals) } : undefined,
    );
    if (answer.record) return json({ run: answer.record });
    return json(
      { runId: answer.runId, status: answer.status, existing: answer.existing },
      202,
      { location: `/api/runs/${answer.runId}` },
    );
  } catch (err) {
    if (err instanceof HttpError) return errorResponse(err);
    const unavailable = storeUnavailable(err) ?? runtimeClosed(err);
    if (unavailable !== undefined) return errorResponse(unavailable);
    if (err instanceof FlowValidationError) {
      return json({
        error: { code: "bad_request", message: err.message, problems: err.problems },
      }, 400);
    }
    return error(500, messageOf(err));
  }
}
