import assert from "node:assert/strict";
import { httpRequest } from "./http_worker.ts";
import {
  displayUrl,
  type HttpOptions,
  netAllows,
  netProblem,
  scrub,
  secretValues,
} from "./_http.ts";
import { builtinNodes, httpOptionsSchema } from "./nodes.ts";

function options(url: string, more: Partial<HttpOptions> = {}): HttpOptions {
  return {
    url,
    method: "GET",
    headers: {},
    query: {},
    responseType: "auto",
    maxBytes: 1024,
    followRedirects: true,
    ...more,
  };
}

/** A server on 127.0.0.1 (this process) answering with `handler`. */
async function withServer(
  handler: (req: Request, base: string) => Response | Promise<Response>,
  fn: (base: string) => Promise<void>,
): Promise<void> {
  let base = "";
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => handler(req, base),
  );
  base = `http://127.0.0.1:${server.addr.port}`;
  try {
    await fn(base);
  } finally {
    await server.shutdown();
  }
}

Deno.test("httpRequest() aborts the request in flight when its signal aborts", async () => {
  const arrived = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  await withServer(async () => {
    arrived.resolve();
    await release.promise;
    return new Response("late");
  }, async (base) => {
    const controller = new AbortController();
    const request = httpRequest(options(`${base}/slow`), controller.signal);
    await arrived.promise;
    controller.abort(new Error("the run was cancelled"));
    // The answer comes after the abort: a request that ignored the signal would get it.
    release.resolve();
    await assert.rejects(request, (err: Error) => {
      assert.equal(err.name, "AbortError");
      assert.equal(err.message, `GET ${base}/slow: aborted (the run was cancelled)`);
      return true;
    });
  });
});

Deno.test("httpRequest() follows redirects (303 as a GET without its body), at most 10", async () => {
  const seen: string[] = [];
  await withServer(async (req, base) => {
    const url = new URL(req.url);
    seen.push(`${req.method} ${url.pathname} ${await req.text()}`);
    const n = Number(url.searchParams.get("n") ?? "0");
    if (url.pathname === "/see-other") return Response.redirect(`${base}/done`, 303);
    if (url.pathname === "/loop") return Response.redirect(`${base}/loop?n=${n + 1}`, 307);
    return Response.json({ at: url.pathname });
  }, async (base) => {
    const result = await httpRequest(
      options(`${base}/see-other`, { method: "POST", body: { a: 1 } }),
    );
    assert.deepEqual(result.body, { at: "/done" });
    assert.deepEqual(seen, ['POST /see-other {"a":1}', "GET /done "]);
    await assert.rejects(
      httpRequest(options(`${base}/loop`)),
      new RegExp(
        `^Error: GET ${base}/loop: more than 10 redirects \\(the last to ${base}/loop\\?n=11\\)$`,
      ),
    );
    // followRedirects: false gives the redirect itself (a 3xx is not 2xx: expectStatus says so)
    const manual = await httpRequest(
      options(`${base}/see-other`, { followRedirects: false, expectStatus: [303] }),
    );
    assert.equal(manual.status, 303);
    assert.equal(manual.headers.location, `${base}/done`);
  });
});

Deno.test("httpRequest() drops credentials on a redirect to another origin", async () => {
  const seen: (string | null)[] = [];
  const record = (req: Request) => {
    seen.push(req.headers.get("authorization"));
    return new Response("ok");
  };
  // Another origin: the same host, another port.
  await withServer(record, async (other) => {
    await withServer((req) => {
      record(req);
      return Response.redirect(`${other}/there`, 302);
    }, async (base) => {
      await httpRequest(options(`${base}/hop`, { headers: { Authorization: "Bearer abcdef" } }));
    });
  });
  assert.deepEqual(seen, ["Bearer abcdef", null]);
});

Deno.test("httpRequest() sends a URL's userinfo as basic credentials, never in a message", async () => {
  await withServer((req) => {
    return new Response(`no: ${req.headers.get("authorization")}`, { status: 401 });
  }, async (base) => {
    const url = base.replace("http://", "http://ada:s3cr%C3%A9t@");
    await assert.rejects(httpRequest(options(`${url}/x`)), (err: Error) => {
      assert.equal(err.name, "HttpStatusError");
      assert.equal(
        err.message,
        `GET ${base}/x answered 401 Unauthorized (expected 2xx): "no: Basic [redacted]"`,
      );
      return true;
    });
  });
});

Deno.test("netAllows() follows Deno's net entries: host, host:port, *.domain", () => {
  const url = (u: string) => new URL(u);
  assert.ok(netAllows(["api.example.com"], url("https://api.example.com/x")));
  assert.ok(netAllows(["api.example.com:443"], url("https://API.example.com/x")));
  assert.ok(!netAllows(["api.example.com:80"], url("https://api.example.com/x")));
  assert.ok(netAllows(["api.example.com:8080"], url("http://api.example.com:8080/")));
  assert.ok(netAllows(["*.example.com"], url("https://a.b.example.com/")));
  assert.ok(netAllows(["*.example.com"], url("https://example.com/")));
  assert.ok(!netAllows(["*.example.com"], url("https://badexample.com/")));
  assert.ok(!netAllows(["example.com"], url("https://a.example.com/")));
  assert.ok(netAllows(["[::1]:8000"], url("http://[::1]:8000/")));
  assert.ok(netAllows(true, url("https://anything.test/")));
  assert.ok(!netAllows(false, url("https://anything.test/")));
  assert.equal(
    netProblem(["a.test"], url("https://b.test/x")),
    'host b.test:443 is not in the node\'s permissions: net (a.test); an http node may call only the hosts it declares: add to the node in its flow file: permissions: { net: ["a.test", "b.test:443"] }',
  );
});

Deno.test("displayUrl() and scrub() keep userinfo and secret query values out of messages", () => {
  assert.equal(
    displayUrl("https://u:p@h.test/a?page=2&api_key=xyz&Token=t&q=1#f"),
    "https://h.test/a?page=2&api_key=[redacted]&Token=[redacted]&q=1#f",
  );
  const url = new URL("https://ada:pa55word@h.test/?access_token=tok12345");
  const secrets = secretValues(url, {
    Authorization: "Bearer abc.def.ghi",
    "X-Api-Key": "k-123456",
    Accept: "application/json",
  });
  assert.equal(
    scrub(
      "saw Bearer abc.def.ghi, abc.def.ghi, k-123456, pa55word, tok12345 at https://ada:pa55word@h.test/; application/json",
      secrets,
    ),
    "saw [redacted], [redacted], [redacted], [redacted], [redacted] at https://h.test/; application/json",
  );
});

Deno.test("the http node's options: defaults, and its host checked against permissions: net", async () => {
  const validate = builtinNodes.get("http")!.optionsSchema["~standard"].validate;
  assert.deepEqual(await validate({ url: "https://a.test/x" }), {
    value: {
      url: "https://a.test/x",
      method: "GET",
      headers: {},
      query: {},
      responseType: "auto",
      maxBytes: 10 * 1024 * 1024,
      followRedirects: true,
    },
  });
  const checked = httpOptionsSchema(["a.test"])["~standard"];
  assert.equal((await checked.validate({ url: "https://a.test/x" })).issues, undefined);
  const refused = await checked.validate({ url: "https://b.test/x", method: "post" });
  assert.deepEqual(refused.issues?.map((i) => i.path), [["url"]]);
  assert.match(
    refused.issues![0].message,
    /^host b\.test:443 is not in the node's permissions: net/,
  );
});

Deno.test("httpRequest() fails clearly when it cannot connect", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close(); // nothing listens there now
  await assert.rejects(
    httpRequest(options(`http://127.0.0.1:${port}/x?token=abcdef`)),
    (err: Error) => {
      assert.match(
        err.message,
        new RegExp(`^GET http://127\\.0\\.0\\.1:${port}/x\\?token=\\[redacted\\]: .*[Cc]onnect`),
      );
      assert.ok(!err.message.includes("abcdef"), err.message);
      return true;
    },
  );
});

Deno.test("an http node's url that is no URL is quoted without its userinfo or query", async () => {
  const validate = builtinNodes.get("http")!.optionsSchema["~standard"].validate;
  const result = await validate({ url: "//user:pw@host/x?token=abcdef" });
  assert.deepEqual(result.issues?.map((i) => i.message), [
    'expected an absolute http:// or https:// URL, got "//host/x?…"',
  ]);
  const local = await validate({ url: "api.test/x?api_key=abcdef#f" });
  assert.deepEqual(local.issues?.map((i) => i.message), [
    'expected an absolute http:// or https:// URL, got "api.test/x?…"',
  ]);
});
