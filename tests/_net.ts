/**
 * Listeners for the tests' TCP proxies (not published).
 *
 * @module
 */

/**
 * A listener on 127.0.0.1, on a free port below Linux's ephemeral range
 * (32768–60999). A proxy that gives its port up for a while (a cut, until it
 * listens on the same port again) must not hold a port of that range: the
 * kernel may meanwhile make it the local port of any outgoing connection (of
 * any process), and listening on it again fails with AddrInUse (it did once
 * in CI). Ports below the range are never handed out that way.
 */
export function listenOutsideEphemeral(): Deno.Listener {
  const first = 20_000 + Math.floor(Math.random() * 10_000);
  for (let port = first; port < 32_768; port++) {
    try {
      return Deno.listen({ hostname: "127.0.0.1", port });
    } catch (err) {
      if (!(err instanceof Deno.errors.AddrInUse)) throw err;
    }
  }
  throw new Error(`no free port from ${first} to 32767 for the proxy`);
}
