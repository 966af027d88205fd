/**
 * The security rules of `flowstate serve` through real HTTP: the token (bearer
 * and session cookie), the same-origin check of mutating requests, the
 * loopback Host check, body limits (413 counted while reading, 415, 408 for
 * a slow body over a raw TCP connection), and JSON that is always JSON.
 */
import assert from "node:assert/strict";
import { documented, withServed } from "./_serve.ts";
import { hangSignal } from "./_deadline.ts";

const memory = () => ({ main: { plugin: "memory" } });
const TOKEN = "test-token-of-enough-length-0123456789";

/**
 * Send `head` over a raw connection (and `rest` after `pauseMs`), and read
 * until a whole response has come (its head, and its body by Content-Length).
 */
async function rawRequest(port: number, head: string, rest?: { pauseMs: number; text: string }) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const encoder = new TextEncoder();
  await conn.write(encoder.encode(head));
  const reading = (async () => {
    const decoder = new TextDecoder();
    let text = "";
    const buffer = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buffer).catch(() => null);
      if (n === null) return text;
      text += decoder.decode(buffer.subarray(0, n), { stream: true });
      const end = text.indexOf("\r\n\r\n");
      if (end === -1) continue;
      const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end));
      if (length && text.length - end - 4 >= Number(length[1])) return text;
    }
  })();
  if (rest) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const answered = await Promise.race([
      reading.then(() => true),
      new Promise<false>((r) => timer = setTimeout(() => r(false), rest.pauseMs)),
    ]);
    clearTimeout(timer);
    if (!answered) await conn.write(encoder.encode(rest.text)).catch(() => {});
  }
  const text = await reading;
  conn.close();
  return text;
}

Deno.test("serve with a token: 401 without it, bearer or session cookie with it; /health is open", async () => {
  await withServed(memory, async ({ request, server }) => {
    assert.equal(server.token, TOKEN);
    const anonymous = await request("/api/stores");
    assert.equal(anonymous.status, 401);
    const body = await anonymous.json();
    assert.equal(body.error.code, "unauthorized");
    assert.match(body.error.message, /Authorization: Bearer/);
    assert.equal(
      (await request("/api/stores", { headers: { authorization: "Bearer wrong" } })).status,
      401,
    );
    assert.equal((await request("/metrics")).status, 401);
    assert.equal((await request("/api/openapi.json")).status, 401);
    const withBearer = await request("/api/stores", {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(withBearer.status, 200);
    await withBearer.body?.cancel();
    const health = await request("/health");
    assert.equal(health.status, 200);
    await health.body?.cancel();

    const json = { "content-type": "application/json" };
    const wrong = await request("/api/session", {
      method: "POST",
      headers: json,
      body: JSON.stringify({ token: "nope" }),
    });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers.get("set-cookie"), null);
    await wrong.body?.cancel();
    const session = await request("/api/session", {
      method: "POST",
      headers: json,
      body: JSON.stringify({ token: TOKEN }),
    });
    assert.equal(session.status, 204);
    const cookie = session.headers.get("set-cookie") ?? "";
    assert.match(cookie, /^flowstate_token=/);
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    assert.match(cookie, /Path=\//);
    const pair = cookie.split(";")[0];
    const withCookie = await request("/api/stores", { headers: { cookie: pair } });
    assert.equal(withCookie.status, 200);
    await withCookie.body?.cancel();
    // The cookie alone does not make a cross-origin write pass.
    const crossWithCookie = await request("/api/flows/hello/runs", {
      method: "POST",
      headers: { cookie: pair, origin: "http://evil.example", ...json },
      body: "{}",
    });
    assert.equal(crossWithCookie.status, 403);
    await crossWithCookie.body?.cancel();
  }, { hostname: "127.0.0.1", token: TOKEN });
});

Deno.test("serve: a mutating request from another origin, or without origin and bearer, is 403", async () => {
  await withServed(memory, async ({ request, server }) => {
    const put = (headers: Record<string, string>) =>
      request("/api/stores/main/entry?key=k", {
        method: "PUT",
        headers: { "content-type": "application/json", "if-none-match": "*", ...headers },
        body: JSON.stringify({ value: 1 }),
      });
    const cross = await put({ origin: "http://evil.example" });
    assert.equal(cross.status, 403);
    assert.equal((await cross.json()).error.code, "forbidden");
    // No Origin (fetch in Deno sends none) and no Sec-Fetch-Site: refused.
    const bare = await fetch(new URL("/api/stores/main/entry?key=k", server.url), {
      signal: hangSignal(),
      method: "PUT",
      headers: { "content-type": "application/json", "if-none-match": "*" },
      body: JSON.stringify({ value: 1 }),
    });
    assert.equal(bare.status, 403);
    await bare.body?.cancel();
    const crossSite = await fetch(new URL("/api/stores/main/entry?key=k", server.url), {
      signal: hangSignal(),
      method: "PUT",
      headers: {
        "content-type": "application/json",
        "if-none-match": "*",
        "sec-fetch-site": "cross-site",
      },
      body: JSON.stringify({ value: 1 }),
    });
    assert.equal(crossSite.status, 403);
    await crossSite.body?.cancel();
    // A bearer request (a program, not a browser) needs no origin.
    const program = await fetch(new URL("/api/stores/main/entry?key=k", server.url), {
      signal: hangSignal(),
      method: "PUT",
      headers: {
        "content-type": "application/json",
        "if-none-match": "*",
        authorization: "Bearer x",
      },
      body: JSON.stringify({ value: 1 }),
    });
    assert.equal(program.status, 200);
    await program.body?.cancel();
    const sameOrigin = await put({
      "sec-fetch-site": "same-origin",
      "if-none-match": "",
      "if-match": '"nope"',
    });
    assert.equal(sameOrigin.status, 409, "passes the origin check, then meets the version check");
    await sameOrigin.body?.cancel();
  });
});

Deno.test("serve without a token answers only a loopback Host (DNS rebinding)", async () => {
  await withServed(memory, async ({ server }) => {
    const evil = await rawRequest(
      server.port,
      "GET /api/stores HTTP/1.1\r\nHost: evil.example:8377\r\nConnection: close\r\n\r\n",
    );
    assert.match(evil, /^HTTP\/1\.1 403/);
    assert.match(evil, /not a loopback address/);
    const local = await rawRequest(
      server.port,
      `GET /api/stores HTTP/1.1\r\nHost: localhost:${server.port}\r\nConnection: close\r\n\r\n`,
    );
    assert.match(local, /^HTTP\/1\.1 200/);
  });
});

Deno.test("serve: bodies over the limit are 413 (also without Content-Length), non-JSON 415", async () => {
  await withServed(memory, async ({ request }) => {
    const path = "/api/stores/main/entry?key=big";
    const headers = { "content-type": "application/json", "if-none-match": "*" };
    const big = JSON.stringify({ value: "x".repeat(2000) });
    const declared = await request(path, { method: "PUT", headers, body: big });
    assert.equal(declared.status, 413);
    assert.equal((await declared.json()).error.code, "too_large");
    // A streamed body has no Content-Length: it is counted while read.
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 10; i++) controller.enqueue(new TextEncoder().encode("x".repeat(300)));
        controller.close();
      },
    });
    const streamed = await request(path, { method: "PUT", headers, body: stream });
    assert.equal(streamed.status, 413);
    await streamed.body?.cancel();
    const text = await request(path, {
      method: "PUT",
      headers: { "content-type": "text/plain", "if-none-match": "*" },
      body: JSON.stringify({ value: 1 }),
    });
    assert.equal(text.status, 415);
    assert.equal((await text.json()).error.code, "unsupported_media_type");
    const notJson = await request(path, { method: "PUT", headers, body: "{nope" });
    assert.equal(notJson.status, 400);
    await notJson.body?.cancel();
  }, { maxBodyBytes: 1024 });
});

Deno.test("serve: a body sent too slowly is cut off with 408 after 10 s", async () => {
  await withServed(memory, async ({ server }) => {
    const origin = server.url.slice(0, -1);
    const answer = await rawRequest(
      server.port,
      `PUT /api/stores/main/entry?key=slow HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n` +
        `Origin: ${origin}\r\nContent-Type: application/json\r\nIf-None-Match: *\r\n` +
        `Content-Length: 100\r\n\r\n{"value":`,
      // The rest never comes in time (a minute: the server's 10 s count starts when its handler
      // begins to read, which a loaded machine may delay; the answer ends the wait).
      { pauseMs: 60_000, text: '"late"}' + " ".repeat(84) },
    );
    assert.match(answer, /^HTTP\/1\.1 408/);
    assert.match(answer, /did not arrive within 10 s/);
  });
});

Deno.test("serve: values are JSON with the JSON content type and nosniff, never HTML", async () => {
  await withServed(memory, async ({ request, runtime }) => {
    const value = { html: "<script>alert(1)</script>", quote: "\u2028</script>" };
    await (await runtime.store("main")).set(["xss"], value);
    const res = await request("/api/stores/main/entry?key=xss");
    assert.equal(res.headers.get("content-type"), "application/json; charset=utf-8");
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    const entry = await documented<{ value: unknown }>("GET", "/api/stores/{store}/entry", res);
    assert.deepEqual(entry.value, value);
    for (const path of ["/", "/nope", "/metrics", "/api/runs/x"]) {
      const other = await request(path);
      assert.equal(other.headers.get("x-content-type-options"), "nosniff", path);
      await other.body?.cancel();
    }
    const page = await request("/");
    assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'self'/);
    assert.equal(page.headers.get("cache-control"), "no-cache");
    await page.body?.cancel();
    const missing = await request("/nope");
    assert.equal(missing.status, 404);
    assert.equal((await request("/api/stores", { method: "DELETE" })).status, 405);
  });
});

Deno.test("serve: a store that does not answer is 503 on /health, and no password leaves in any message", async () => {
  const stores = (dir: string) => ({
    main: { plugin: "memory" },
    files: { plugin: "sqlite", path: `${dir}/data.db` },
    remote: {
      plugin: "postgres",
      url: "postgres://app:s3cret-pw@127.0.0.1:1/db?password=s3cret-pw",
    },
  });
  await withServed(stores, async ({ request }) => {
    const health = await request("/health");
    assert.equal(health.status, 503);
    const text = await health.clone().text();
    assert.ok(!text.includes("s3cret-pw"), text);
    const body = await documented<{ status: string; stores: Record<string, { ok: boolean }> }>(
      "GET",
      "/health",
      health,
    );
    assert.equal(body.status, "unavailable");
    assert.equal(body.stores.main.ok, true);
    assert.equal(body.stores.remote.ok, false);

    const res = await request("/api/stores");
    const listed = await res.clone().text();
    assert.ok(!listed.includes("s3cret-pw"), listed);
    const stores = await documented<
      {
        name: string;
        ok: boolean;
        location: string | null;
        sizeBytes: number | null;
        error?: string;
      }[]
    >("GET", "/api/stores", res);
    const remote = stores.find((s) => s.name === "remote");
    assert.equal(remote?.ok, false);
    assert.ok(remote?.error, "the reason is given");
    const files = stores.find((s) => s.name === "files");
    assert.equal(files?.ok, true);
    assert.ok((files?.sizeBytes ?? 0) > 0, "a file store has a size");
    const metrics = await (await request("/metrics")).text();
    assert.ok(!metrics.includes("s3cret-pw"));
  });
});

Deno.test("serve without a token: a webhook without secret: answers only a loopback Host (a rebound page cannot run it); one with a secret, or a server with a token, answers any", async () => {
  const hook = (id: string, secret = "") =>
    `id: ${id}\ntrigger: { http: { path: /hooks/${id}${secret} } }\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n`;
  const post = (port: number, path: string, host: string) =>
    rawRequest(
      port,
      `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`,
    );
  await withServed(memory, async ({ dir, server, runtime }) => {
    await Deno.writeTextFile(`${dir}/flows/open.flow.yaml`, hook("open"));
    await Deno.writeTextFile(
      `${dir}/flows/signed.flow.yaml`,
      hook("signed", ", secret: { env: SERVE_SECURITY_HOOK_SECRET }"),
    );
    const evil = await post(server.port, "/hooks/open?wait=true", "evil.example:8377");
    assert.match(evil, /^HTTP\/1\.1 403/);
    assert.match(
      evil,
      /the webhook \/hooks\/open has no secret: and this server has no token, so it answers only requests addressed to a loopback name \(the Host header \\"evil\.example:8377\\" is not one\); give the webhook a secret:/,
    );
    const records = await runtime.records();
    assert.deepEqual((await records.listRuns({ flowId: "open" })).runs, [], "nothing was queued");
    const local = await post(server.port, "/hooks/open", `127.0.0.1:${server.port}`);
    assert.match(local, /^HTTP\/1\.1 202/);
    // A signed webhook is authenticated by its signature, whatever its Host.
    Deno.env.set("SERVE_SECURITY_HOOK_SECRET", "s3cret-s3cret");
    try {
      const signed = await post(server.port, "/hooks/signed", "evil.example:8377");
      assert.match(signed, /^HTTP\/1\.1 401/);
      assert.match(signed, /needs a signature/);
    } finally {
      Deno.env.delete("SERVE_SECURITY_HOOK_SECRET");
    }
  });
  // With a token, a webhook without secret: is open to whoever reaches it, by any name (a proxy
  // in front may keep the sender's Host), as documented.
  await withServed(memory, async ({ dir, server }) => {
    await Deno.writeTextFile(`${dir}/flows/open.flow.yaml`, hook("open"));
    const proxied = await post(server.port, "/hooks/open", "flows.example.com");
    assert.match(proxied, /^HTTP\/1\.1 202/);
  }, { token: TOKEN });
});
