/**
 * The route table of `flowstate serve` and the router that walks it: a
 * method and a path pattern with `{param}` segments. Each route also
 * describes itself (summary, query parameters, request and response
 * schemas), and the OpenAPI document is built from the same table
 * (`openapi.ts`), so the two cannot drift.
 *
 * @module
 */
import type { z } from "zod";
import { didYouMean } from "../_suggest.ts";

/** A query parameter of a route. */
export interface QueryParam {
  /** Its name. */
  name: string;
  /** What it does. */
  description: string;
  /** Its type. */
  type: "string" | "integer" | "boolean";
  /** Whether it may be repeated (`key=a&key=b`). */
  repeated?: boolean;
  /** Whether it must be given. */
  required?: boolean;
}

/** A request header a route reads. */
export interface HeaderParam {
  /** Its name. */
  name: string;
  /** What it does. */
  description: string;
}

/** One documented response of a route. */
export interface RouteResponse {
  /** What it means. */
  description: string;
  /** The shape of its JSON body (none for an empty body or non-JSON). */
  schema?: z.ZodType;
  /** Its content type, when not JSON. */
  contentType?: string;
}

/** What a handler gets. */
export interface RouteContext<S> {
  /** The request. */
  request: Request;
  /** Its URL. */
  url: URL;
  /** The path parameters, decoded. */
  params: Record<string, string>;
  /** What the server shares with every handler. */
  server: S;
}

/** One route. */
export interface Route<S> {
  /** The HTTP method. */
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** The path pattern: `/api/runs/{id}`. */
  path: string;
  /** One line about it. */
  summary: string;
  /** The OpenAPI tag it is listed under. */
  tag: string;
  /** No token needed (`GET /health`, `POST /api/session`). */
  open?: boolean;
  /** Its query parameters (none: a request with one is a 400, unless `anyQuery`). */
  query?: QueryParam[];
  /**
   * It takes any query parameter and reads none (`GET /health`, `GET /metrics`: a probe or a
   * scraper may add its own).
   */
  anyQuery?: boolean;
  /** Request headers it reads. */
  headers?: HeaderParam[];
  /** The shape of its JSON request body. */
  body?: z.ZodType;
  /** Its responses by status. */
  responses: Record<number, RouteResponse>;
  /** Serves it. */
  handler(ctx: RouteContext<S>): Promise<Response> | Response;
}

/** A route that matched a request, with its path parameters. */
export interface Match<S> {
  /** The route. */
  route: Route<S>;
  /** The path parameters, decoded. */
  params: Record<string, string>;
}

/** The path parameter names of a pattern, in order. */
export function pathParams(pattern: string): string[] {
  return [...pattern.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
}

/** Finds the route of a request among a table of routes. */
export class Router<S> {
  readonly #routes: { route: Route<S>; parts: string[] }[];

  /** A router over `routes`. */
  constructor(routes: readonly Route<S>[]) {
    this.#routes = routes.map((route) => ({ route, parts: route.path.split("/") }));
  }

  /**
   * The route of `method` and `path`; `"method"` when the path is known but
   * not with this method; `null` when nothing matches.
   */
  match(method: string, path: string): Match<S> | "method" | null {
    const parts = path.split("/");
    let pathKnown = false;
    for (const { route, parts: pattern } of this.#routes) {
      if (pattern.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < pattern.length && ok; i++) {
        const p = pattern[i];
        if (p.startsWith("{") && p.endsWith("}")) {
          if (parts[i] === "") ok = false;
          else {
            try {
              params[p.slice(1, -1)] = decodeURIComponent(parts[i]);
            } catch {
              ok = false;
            }
          }
        } else if (p !== parts[i]) ok = false;
      }
      if (!ok) continue;
      const head = method === "HEAD" && route.method === "GET";
      if (route.method === method || head) return { route, params };
      pathKnown = true;
    }
    return pathKnown ? "method" : null;
  }

  /** The methods `path` takes (`HEAD` beside `GET`), for the `Allow` header of a 405. */
  allowed(path: string): string[] {
    const methods = new Set<string>();
    for (const { route } of this.#routes) {
      const found = this.match(route.method, path);
      if (found !== null && found !== "method" && found.route === route) {
        methods.add(route.method);
        if (route.method === "GET") methods.add("HEAD");
      }
    }
    return [...methods];
  }
}

/**
 * Why `url`'s query does not suit `route`: the first parameter it does not take (with the
 * closest it does, all of them, and a sibling route that takes it), or `undefined` when every
 * one is known. A route without query parameters takes none (but one marked `anyQuery`). A
 * misspelt or misplaced parameter would otherwise be ignored: `entries?key=a` listed the whole
 * store, `versions?limit=1` answered every version.
 */
export function unknownQueryParam<S>(
  route: Route<S>,
  url: URL,
  routes: readonly Route<S>[],
): string | undefined {
  if (route.anyQuery) return undefined;
  const known = (route.query ?? []).map((q) => q.name);
  for (const name of new Set(url.searchParams.keys())) {
    if (known.includes(name)) continue;
    const parent = route.path.slice(0, route.path.lastIndexOf("/") + 1);
    const sibling = routes.find((r) =>
      r !== route && r.method === route.method && r.path.startsWith(parent) &&
      r.path.indexOf("/", parent.length) === -1 && r.query?.some((q) => q.name === name)
    );
    return `Unknown query parameter ${JSON.stringify(name)} for ${route.method} ${route.path}${
      didYouMean(name, known)
    }: it takes ${known.length === 0 ? "none" : known.join(", ")}${
      sibling === undefined ? "" : ` (${sibling.method} ${sibling.path} takes ${name})`
    }`;
  }
  return undefined;
}

/**
 * Why the value of boolean query parameter `name` is not one, or `undefined`: only `true` and
 * `false` are, since a script's `?wait=1` or `?wait` would otherwise be read as false in silence.
 */
export function booleanQueryProblem(name: string, value: string): string | undefined {
  return value === "true" || value === "false"
    ? undefined
    : `Invalid query parameter ${name}=${value}: expected true or false`;
}

/**
 * Why a value in `url`'s query does not suit `route`'s parameter of that name, or `undefined`:
 * one not `repeated` is given once (else all but the first would be dropped in silence:
 * `status=running&status=failed` listed the running runs only), a boolean parameter's must be
 * `true` or `false` ({@linkcode booleanQueryProblem}).
 */
export function badQueryValue<S>(route: Route<S>, url: URL): string | undefined {
  for (const param of route.query ?? []) {
    const values = url.searchParams.getAll(param.name);
    if (!param.repeated && values.length > 1) {
      return `Query parameter ${param.name} is given ${values.length} times (${
        values.map((v) => `${param.name}=${v}`).join("&")
      }) for ${route.method} ${route.path}, which takes one: give it once`;
    }
    if (param.type !== "boolean") continue;
    for (const value of values) {
      const problem = booleanQueryProblem(param.name, value);
      if (problem !== undefined) return problem;
    }
  }
  return undefined;
}
