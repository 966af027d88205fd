/**
 * What the built-in `http` node shares between the runner and its Worker:
 * its options as checked, which hosts its `permissions: { net }` lets it
 * call (for messages: Deno enforces the list in the Worker), and how a
 * request's secrets are kept out of what a run records.
 *
 * Secrets are: the values of headers whose names say they carry credentials
 * (`authorization`, `cookie`, `x-api-key`, anything with `auth`, `token`,
 * `secret`, `key`, `password`, `session`, `signature` or `credential`), the
 * userinfo of a URL (`https://user:pw@host/`), and the values of query
 * parameters with such names (`?api_key=…`). A URL in a message never shows
 * its userinfo, and secret query values show as `[redacted]`; any text that
 * leaves the node (an error, its output) has every such value replaced.
 *
 * A response's headers that carry credentials (`set-cookie`, and names such
 * as those: see {@linkcode isCredentialResponseHeader}) become run secrets
 * (`ctx.mask`): the nodes after it get them, the records show `***`.
 *
 * @module
 */

/** The methods the `http` node sends. */
export const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

/** One of {@linkcode HTTP_METHODS}. */
export type HttpMethod = typeof HTTP_METHODS[number];

/** The default `maxBytes`: 10 MiB. */
export const DEFAULT_MAX_BYTES = 10 * 1024 * 1024;

/** Redirects followed at most. */
export const MAX_REDIRECTS = 10;

/** What stands for a secret in messages and outputs. */
export const REDACTED = "[redacted]";

/** A query parameter's value. */
export type QueryValue = string | number | boolean;

/** The `http` node's options, as checked (defaults filled in). */
export interface HttpOptions {
  url: string;
  method: HttpMethod;
  headers: Record<string, string>;
  query: Record<string, QueryValue | QueryValue[]>;
  body?: unknown;
  responseType: "auto" | "json" | "text";
  expectStatus?: number[];
  maxBytes: number;
  followRedirects: boolean;
}

/** An HTTP header name (RFC 9110's token). */
export const HEADER_NAME: RegExp = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** What a header value may not hold (a line break would start another header). */
export const HEADER_VALUE_BAD: RegExp = /[\r\n\0]/;

const SECRET_NAME = /auth|token|secret|key|passw|pwd|session|cookie|signature|credential|^sig$/i;

/** Whether a header or query parameter named `name` carries a secret. */
export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

/**
 * Whether a response header named `name` carries a credential: `set-cookie`, and a name
 * {@linkcode isSecretName} says carries a secret (`x-auth-token`, `x-api-key`), except the
 * challenges (`www-authenticate`, `proxy-authenticate`) and the CORS headers
 * (`access-control-*`), which name credentials without holding any.
 */
export function isCredentialResponseHeader(name: string): boolean {
  const lower = name.toLowerCase();
  if (lower === "set-cookie" || lower === "set-cookie2") return true;
  if (/^(www|proxy)-authenticate$|^access-control-/.test(lower)) return false;
  return isSecretName(lower);
}

/** The length from which a cookie's value is masked alone too (a session id; not `true`). */
const COOKIE_VALUE_MIN = 8;

/**
 * The secrets of a credential response header's value, to mask: the value, and for
 * `set-cookie` each cookie's `name=value`, and its value alone when it has
 * {@linkcode COOKIE_VALUE_MIN} characters or more (the worker joins several cookies with
 * `, `), for another header the credential after a scheme (`Bearer abc` → `abc`). Those shorter
 * than `min` are left out.
 */
export function responseCredentials(name: string, value: string, min: number): string[] {
  const found = new Set<string>([value]);
  if (/^set-cookie2?$/i.test(name)) {
    // A cookie starts after ", " where a `name=` follows (an Expires date holds ", " too).
    for (const cookie of value.split(/, (?=[^;,=\s]+=)/)) {
      const pair = cookie.split(";")[0].trim();
      found.add(pair);
      // The value alone only when it can be a credential: a flag (`consent=true`) or a locale
      // (`lang=en-US`) masked alone would turn every such word of the run's records into ***.
      const eq = pair.indexOf("=");
      const alone = eq >= 0 ? pair.slice(eq + 1).trim() : "";
      if (alone.length >= COOKIE_VALUE_MIN) found.add(alone);
    }
  } else {
    const space = value.trim().indexOf(" ");
    if (space > 0) found.add(value.trim().slice(space + 1).trim());
  }
  return [...found].filter((v) => v.length >= min);
}

/**
 * Why `text` is not a URL the node can call, or `undefined`. The message
 * quotes it without its userinfo.
 */
export function httpUrlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // Not its query: it may hold a secret, which a URL that does not parse cannot show redacted.
    const shown = stripUserinfo(text).replace(/[?#][\s\S]*$/, "?…");
    return `expected an absolute http:// or https:// URL, got ${JSON.stringify(shorten(shown))}`;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return `expected an http:// or https:// URL, got a ${url.protocol} URL`;
  }
  return undefined;
}

function shorten(text: string): string {
  return text.length > 100 ? `${text.slice(0, 97)}...` : text;
}

/** Any `scheme://user:pw@` (or `//user:pw@`) in `text` without its userinfo. */
export function stripUserinfo(text: string): string {
  return text.replace(/((?:[A-Za-z][A-Za-z0-9+.-]*:)?\/\/)[^/?#\s@]*@/g, "$1");
}

/**
 * `url` with `query` appended (a list repeats the parameter), as the
 * request goes.
 */
export function requestUrl(url: string, query: HttpOptions["query"]): URL {
  const out = new URL(url);
  for (const [name, value] of Object.entries(query)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      out.searchParams.append(name, String(item));
    }
  }
  return out;
}

/**
 * `url` as messages show it: no userinfo, and the value of each query
 * parameter whose name says it is a secret as `[redacted]`.
 */
export function displayUrl(url: URL | string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return stripUserinfo(String(url));
  }
  parsed.username = "";
  parsed.password = "";
  if (parsed.search === "") return parsed.href;
  const parts = parsed.search.slice(1).split("&").map((part) => {
    const at = part.indexOf("=");
    const name = at < 0 ? part : part.slice(0, at);
    let decoded = name;
    try {
      decoded = decodeURIComponent(name.replace(/\+/g, " "));
    } catch {
      // shown as it is
    }
    return at >= 0 && isSecretName(decoded) ? `${name}=${REDACTED}` : part;
  });
  return `${parsed.origin}${parsed.pathname}?${parts.join("&")}${parsed.hash}`;
}

/** The shortest secret replaced in texts: shorter ones would replace ordinary words. */
const MIN_SECRET_LENGTH = 4;

/**
 * The secret values of a request to `url` with `headers` (see the module
 * doc): each header value, and its credential after the scheme
 * (`Bearer abc` → `abc`), the userinfo's parts, and secret query values,
 * also percent-encoded (as `encodeURIComponent` and a query string encode
 * them). Longest first.
 */
export function secretValues(url: URL, headers: Record<string, string>): string[] {
  const found = new Set<string>();
  const add = (value: string) => {
    for (const v of [value, value.trim()]) {
      if (v.length >= MIN_SECRET_LENGTH) found.add(v);
      // As encodeURIComponent encodes it, and as a query string does (the request's own query:
      // a space as +, ! as %21), which a server may echo.
      for (
        const encoded of [encodeURIComponent(v), new URLSearchParams([["", v]]).toString().slice(1)]
      ) {
        if (encoded !== v && encoded.length >= MIN_SECRET_LENGTH) found.add(encoded);
      }
    }
  };
  for (const [name, value] of Object.entries(headers)) {
    if (!isSecretName(name)) continue;
    add(value);
    const space = value.trim().indexOf(" ");
    if (space > 0) add(value.trim().slice(space + 1));
  }
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  if (url.username !== "") add(decode(url.username));
  if (url.password !== "") {
    add(decode(url.password));
    add(`${decode(url.username)}:${decode(url.password)}`);
    add(basicCredentials(decode(url.username), decode(url.password)));
  }
  for (const [name, value] of url.searchParams) if (isSecretName(name)) add(value);
  return [...found].sort((a, b) => b.length - a.length);
}

/** The credentials of `Authorization: Basic …` for `user` and `password` (UTF-8, base64). */
export function basicCredentials(user: string, password: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(`${user}:${password}`)));
}

/** `text` with each of `secrets` (longest first) replaced by `[redacted]`, and no URL userinfo. */
export function scrub(text: string, secrets: readonly string[]): string {
  return stripUserinfo(scrubString(text, secrets));
}

/** `value` (JSON) with {@linkcode scrub} applied to every string in it, keys included. */
export function scrubValue(value: unknown, secrets: readonly string[]): unknown {
  if (secrets.length === 0) return value;
  if (typeof value === "string") return scrubString(value, secrets);
  if (Array.isArray(value)) return value.map((v) => scrubValue(v, secrets));
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [scrubString(k, secrets), scrubValue(v, secrets)]),
    );
  }
  return value;
}

/** Secrets replaced, without touching anything else (an output's text stays as it came). */
function scrubString(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  return out;
}

/** `host:port` of `url` as Deno names it in a net permission (the port always given). */
export function netEntryOf(url: URL): string {
  return `${url.hostname}:${effectivePort(url)}`;
}

function effectivePort(url: URL): string {
  return url.port !== "" ? url.port : url.protocol === "https:" ? "443" : "80";
}

/**
 * Whether a net permission `allowed` (as Deno takes it: `true`, or a list of
 * `host`, `host:port`, `*.domain`, `*.domain:port`) lets a request reach
 * `url`. Deno's own check in the Worker is what enforces it; this answers
 * first, for a message that names the line to add.
 */
export function netAllows(allowed: boolean | readonly string[], url: URL): boolean {
  if (allowed === true) return true;
  if (allowed === false) return false;
  const host = url.hostname.toLowerCase();
  const port = effectivePort(url);
  return allowed.some((entry) => {
    const m = entry.toLowerCase().match(/^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/);
    if (m === null) return false;
    const [, name, entryPort] = m;
    if (entryPort !== undefined && Number(entryPort) !== Number(port)) return false;
    if (name.startsWith("*.")) {
      const base = name.slice(2);
      return host === base || host.endsWith(`.${base}`);
    }
    return host === name;
  });
}

/**
 * Why a request to `url` is outside `allowed` (the node's declared
 * `permissions: { net }`), with the exact `permissions:` line that would
 * allow it; `undefined` when it is inside.
 */
export function netProblem(allowed: boolean | readonly string[], url: URL): string | undefined {
  if (netAllows(allowed, url)) return undefined;
  const entry = netEntryOf(url);
  const list = [...(Array.isArray(allowed) ? allowed : []), entry];
  return `host ${entry} is not in the node's permissions: net${
    Array.isArray(allowed) && allowed.length > 0 ? ` (${allowed.join(", ")})` : " (none declared)"
  }; an http node may call only the hosts it declares: add to the node in its flow file: permissions: { net: [${
    list.map((h) => JSON.stringify(h)).join(", ")
  }] }`;
}

/**
 * Where an `http` node's `with` (as written) holds a secret literally, not by
 * a template: each a phrase such as `header Authorization` (a flow's text is
 * kept in its recorded versions, so such a value would be too).
 */
export function literalSecrets(written: unknown): string[] {
  if (typeof written !== "object" || written === null) return [];
  const w = written as Record<string, unknown>;
  const literal = (v: unknown) => typeof v === "string" && v !== "" && !v.includes("${{");
  const found: string[] = [];
  if (typeof w.url === "string") {
    const userinfo = w.url.match(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#@]*)@/)?.[1];
    if (userinfo !== undefined && literal(userinfo.split(":").slice(1).join(":"))) {
      found.push("the url's password");
    }
    const query = w.url.split("#")[0].split("?")[1];
    for (const part of query?.split("&") ?? []) {
      const [name, ...value] = part.split("=");
      if (isSecretName(name) && literal(value.join("="))) found.push(`the url's ${name}=`);
    }
  }
  for (const field of ["headers", "query"] as const) {
    const map = w[field];
    if (typeof map !== "object" || map === null) continue;
    for (const [name, value] of Object.entries(map)) {
      if (isSecretName(name) && literal(value)) {
        found.push(`${field === "headers" ? "header" : "query parameter"} ${name}`);
      }
    }
  }
  return found;
}
