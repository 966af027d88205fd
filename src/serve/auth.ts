/**
 * Who may talk to `flowstate serve`.
 *
 * - **Token.** With a token (required for any host but 127.0.0.1, given or
 *   generated), every request but `GET /health` and the webhooks carries it
 *   as `Authorization: Bearer <token>` or in the cookie `flowstate_token`
 *   (set by `POST /api/session`); tokens are compared in constant time.
 *   Missing or wrong: 401.
 * - **Same origin.** A mutating request (POST, PUT, PATCH, DELETE) without
 *   `Authorization: Bearer` must come from the server's own page: its
 *   `Origin` (or, without one, `Sec-Fetch-Site: same-origin` or `none`) must
 *   be the server's origin, else 403. Browsers cannot add `Authorization` to
 *   a cross-site request without a CORS preflight, which this server never
 *   grants, so a bearer request is a non-browser client's.
 * - **Host.** Without a token, the `Host` header must name a loopback
 *   address (127.0.0.1, localhost, [::1]), else 403: a web page that
 *   rebinds its own domain name to 127.0.0.1 is refused.
 *
 * @module
 */
import { randomFillSync } from "node:crypto";
import { HttpError } from "./http.ts";

/** The cookie the page's session lives in. */
export const SESSION_COOKIE = "flowstate_token";

/** A fresh token: 32 random bytes, base64url. */
export function generateToken(): string {
  // The system's CSPRNG itself (`crypto.getRandomValues` repeats under `deno run --seed N`).
  const bytes = randomFillSync(new Uint8Array(32));
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

const encoder = new TextEncoder();

/**
 * Why `token` (`what`, in the message) cannot be this server's token, or `undefined`: a client must be able to send it as
 * `Authorization: Bearer <token>` (no space, control character or non-ASCII) and the page keep it
 * in its cookie (no `"`, `,`, `;` or `\`). A token holding one could never be sent whole: every
 * request would be a 401 that says the token is wrong (a token file's extra blank line, a quoted
 * value pasted with its quotes).
 */
export function tokenProblem(token: string, what = "the token"): string | undefined {
  const bad = /[^\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]/.exec(token);
  if (bad === null) return undefined;
  const at = bad.index;
  return `${what} holds ${JSON.stringify(bad[0])} (at character ${
    at + 1
  } of ${token.length}), which a client cannot send in "Authorization: Bearer <token>" or the page keep in its cookie; use letters, digits and -._~+/= (as openssl rand -base64 32 prints)`;
}

/** Whether `given` equals `expected`, in time that depends on neither's content. */
export async function sameToken(given: string, expected: string): Promise<boolean> {
  // Comparing digests hides the length of the expected token as well.
  const [a, b] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(given)),
    crypto.subtle.digest("SHA-256", encoder.encode(expected)),
  ]);
  const x = new Uint8Array(a);
  const y = new Uint8Array(b);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}

/** The bearer token of `request`, or `undefined`. */
export function bearerOf(request: Request): string | undefined {
  const header = request.headers.get("authorization");
  const match = header === null ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

/** The value of cookie `name` in `request`, or `undefined`. */
export function cookieOf(request: Request, name: string): string | undefined {
  for (const part of (request.headers.get("cookie") ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The `Set-Cookie` value of a session holding `token`. */
export function sessionCookie(token: string): string {
  return `${SESSION_COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`;
}

const LOOPBACK_NAMES = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** Whether `hostname` is the loopback address the server may bind without a token. */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === "127.0.0.1" || hostname === "localhost";
}

/** The `Host` a request was addressed to. */
export function hostOf(request: Request): string {
  return request.headers.get("host") ?? new URL(request.url).host;
}

/**
 * Whether `request` was addressed to a loopback name (its `Host`): what a
 * server without a token requires, since a web page that rebinds its own
 * domain name to 127.0.0.1 sends its own name.
 */
export function addressedToLoopback(request: Request): boolean {
  return LOOPBACK_NAMES.has(hostOf(request).replace(/:\d+$/, "").toLowerCase());
}

/** The rules of one server. */
export interface AuthRules {
  /** The token, or `undefined` when none is required. */
  token: string | undefined;
  /** The port the server listens on. */
  port: number;
}

/**
 * Check `request` against the rules; throws a 401 or 403 {@linkcode HttpError}.
 * `open` routes (`GET /health`, `POST /api/session`) skip the token;
 * `mutating` requests are checked for their origin.
 */
export async function checkRequest(
  request: Request,
  rules: AuthRules,
  route: { open: boolean },
): Promise<void> {
  const url = new URL(request.url);
  const host = hostOf(request);
  if (rules.token === undefined && !addressedToLoopback(request)) {
    throw new HttpError(
      "forbidden",
      `Refused: the Host header "${host}" is not a loopback address; this server has no token and answers only http://127.0.0.1:${rules.port}/ (serve with a token to reach it by another name)`,
    );
  }
  const bearer = bearerOf(request);
  if (rules.token !== undefined && !route.open) {
    const given = bearer ?? cookieOf(request, SESSION_COOKIE);
    if (given === undefined || !(await sameToken(given, rules.token))) {
      throw new HttpError(
        "unauthorized",
        given === undefined
          ? 'This server requires its token: send "Authorization: Bearer <token>" (or open the URL with #token=… printed at start)'
          : "The token is wrong: send the token printed when the server started",
      );
    }
  }
  const mutating = request.method !== "GET" && request.method !== "HEAD";
  if (mutating && bearer === undefined) {
    const origin = request.headers.get("origin");
    const own = `${url.protocol}//${host}`;
    if (origin !== null) {
      if (origin !== own) {
        throw new HttpError(
          "forbidden",
          `Refused: a ${request.method} from origin ${origin} (this server is ${own}); other programs send "Authorization: Bearer <token>"`,
        );
      }
    } else {
      const site = request.headers.get("sec-fetch-site");
      if (site !== "same-origin" && site !== "none") {
        throw new HttpError(
          "forbidden",
          `Refused: a ${request.method} without an Origin header; send "Authorization: Bearer <token>" (or "Origin: ${own}")`,
        );
      }
    }
  }
}
