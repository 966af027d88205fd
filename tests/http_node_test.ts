// The built-in http node through the CLI (and mod.ts for a node timeout), against a real server in this process: requests and
// responses, failures that retry: retries, limits, the hosts its permissions: net allow (a
// redirect elsewhere, a literal url at validate, a templated one at run), a node timeout
// aborting a request in flight, and secrets kept out of everything a run records.
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, cliOk, type ProjectCli, withCliProject } from "./_cli_sandbox.ts";
import { killQuietly, outputOf, within } from "./_deadline.ts";
import { openRuntime } from "../mod.ts";
import { firedTimers } from "./_fired_timers.ts";

const CONFIG = "home: home\nstores:\n  main: { plugin: sqlite, path: home/main.db }\n";

/** A local server that counts the requests to each path and answers as the path says. */
function testServer() {
  const hits = new Map<string, number>();
  const hanging = Promise.withResolvers<void>();
  const hangAborted = Promise.withResolvers<void>();
  const server: Deno.HttpServer<Deno.NetAddr> = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
  }, async (req): Promise<Response> => {
    const url = new URL(req.url);
    hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
    const echo = async () => ({
      method: req.method,
      query: Object.fromEntries(url.searchParams),
      contentType: req.headers.get("content-type"),
      authorization: req.headers.get("authorization"),
      body: await req.text(),
    });
    switch (url.pathname) {
      case "/json":
        return Response.json({ hello: "world", ...(await echo()) });
      case "/text":
        return new Response("plain words", { headers: { "x-thing": "yes" } });
      case "/missing":
        return new Response("no such thing here", { status: 404 });
      case "/down":
        return new Response("the service is down", { status: 503 });
      case "/big":
        return new Response("x".repeat(5000));
      case "/away":
        return Response.redirect(`http://localhost:${server.addr.port}/elsewhere`, 302);
      case "/url":
        return Response.json({ url: req.url });
      case "/away-keyed":
        return Response.redirect(`http://localhost:${server.addr.port}/headers`, 302);
      case "/near-keyed":
        return Response.redirect(`${url.origin}/headers`, 302);
      case "/headers":
        return Response.json(Object.fromEntries(req.headers));
      case "/echo-fail":
        return new Response(JSON.stringify(await echo()), { status: 500 });
      case "/hang":
        hanging.resolve();
        // Answered only once the client gave up (so that the server can shut down).
        await new Promise((resolve) =>
          req.signal.addEventListener("abort", resolve, { once: true })
        );
        hangAborted.resolve();
        return new Response("too late");
      default:
        return Response.json(await echo());
    }
  });
  return {
    base: `http://127.0.0.1:${server.addr.port}`,
    port: server.addr.port,
    hits,
    hanging: hanging.promise,
    hangAborted: hangAborted.promise,
    close: () => server.shutdown(),
  };
}

type Server = ReturnType<typeof testServer>;

/** A flow of one http node `call` (YAML lines of its body after `type: http`). */
function flowOf(node: string, extra = ""): string {
  return `id: call\n${extra}nodes:\n  - id: call\n    type: http\n${node}\noutputs:\n  result: "\${{ nodes.call.output }}"\n`;
}

async function withServerProject(
  fn: (run: ProjectCli, dir: string, server: Server) => Promise<void>,
  env?: Record<string, string>,
): Promise<void> {
  const server = testServer();
  try {
    await withCliProject(CONFIG, (run, dir) => fn(run, dir, server), {
      prefix: "flowstate-http-",
      ...(env === undefined ? {} : { env }),
    });
  } finally {
    await server.close();
  }
}

/** `flowstate run <file> --json` of `yaml`: the run record (whatever the exit code). */
async function runJson(run: ProjectCli, dir: string, yaml: string, ...args: string[]) {
  await Deno.writeTextFile(join(dir, "call.flow.yaml"), yaml);
  const r = await run("run", "call.flow.yaml", "--json", ...args);
  assert.ok(r.stdout.trim() !== "", `no record printed (exit ${r.code}): ${r.stderr}`);
  return { code: r.code, record: JSON.parse(r.stdout), stderr: r.stderr };
}

/** `flowstate validate call.flow.yaml --json`, which must fail: its problems as `line:column path: message`. */
async function validateProblems(run: ProjectCli): Promise<string[]> {
  const r = await run("validate", "call.flow.yaml", "--json");
  assert.equal(r.code, 2, r.stderr);
  return JSON.parse(r.stdout)[0].problems.map((
    p: { line: number; column: number; path: string; message: string },
  ) => `${p.line}:${p.column} ${p.path}: ${p.message}`);
}

/** {@linkcode runJson} of a flow whose http node may call 127.0.0.1 (`node`: its lines after that). */
function runLocal(run: ProjectCli, dir: string, node: string, ...args: string[]) {
  return runJson(run, dir, flowOf(`    permissions: { net: ["127.0.0.1"] }\n${node}`), ...args);
}

Deno.test("http node: GET returns { status, headers, body } with a JSON body parsed", async () => {
  await withServerProject(async (run, dir, server) => {
    const { code, record } = await runLocal(
      run,
      dir,
      `    with:\n      url: ${server.base}/json\n      query: { page: 2, tags: [a, b], on: true }`,
    );
    assert.equal(code, 0, JSON.stringify(record));
    const result = record.outputs.result;
    assert.equal(result.status, 200);
    assert.equal(result.headers["content-type"], "application/json");
    assert.equal(result.body.hello, "world");
    assert.equal(result.body.method, "GET");
    // query: appended, a list repeating its parameter (the server keeps the last of each)
    assert.deepEqual(result.body.query, { page: "2", tags: "b", on: "true" });
  });
});

Deno.test("http node: POST sends a JSON body as application/json; a string body as it is", async () => {
  await withServerProject(async (run, dir, server) => {
    const json = await runLocal(
      run,
      dir,
      `    with:\n      url: ${server.base}/post\n      method: post\n      body: { n: 1, list: [x] }`,
    );
    assert.equal(json.code, 0, JSON.stringify(json.record));
    assert.deepEqual(json.record.outputs.result.body, {
      method: "POST",
      query: {},
      contentType: "application/json",
      authorization: null,
      body: '{"n":1,"list":["x"]}',
    });
    const text = await runLocal(
      run,
      dir,
      `    with:\n      url: ${server.base}/put\n      method: PUT\n      headers: { content-type: text/csv }\n      body: "a,b"`,
    );
    assert.equal(text.record.outputs.result.body.contentType, "text/csv");
    assert.equal(text.record.outputs.result.body.body, "a,b");
  });
});

Deno.test("http node: a text response is text; responseType: json of a text body fails clearly", async () => {
  await withServerProject(async (run, dir, server) => {
    const ok = await runLocal(run, dir, `    with: { url: "${server.base}/text" }`);
    assert.equal(ok.record.outputs.result.body, "plain words");
    assert.equal(ok.record.outputs.result.headers["x-thing"], "yes");
    const bad = await runLocal(
      run,
      dir,
      `    with: { url: "${server.base}/text", responseType: json }`,
    );
    assert.equal(bad.code, 1);
    assert.match(
      bad.record.nodes.call.error,
      /^GET http:\/\/127\.0\.0\.1:\d+\/text: the response body is not JSON .*"plain words"$/,
    );
  });
});

Deno.test("http node: a status outside expectStatus fails the attempt and retry: retries it", async () => {
  await withServerProject(async (run, dir, server) => {
    const { code, record } = await runLocal(
      run,
      dir,
      `    retry: { attempts: 3, delay: 1 }\n    with: { url: "${server.base}/down" }`,
    );
    assert.equal(code, 1);
    assert.equal(record.nodes.call.attempts, 3);
    assert.equal(server.hits.get("/down"), 3, "each attempt sent the request");
    assert.match(
      record.nodes.call.error,
      /^GET http:\/\/127\.0\.0\.1:\d+\/down answered 503 Service Unavailable \(expected 2xx\): "the service is down"$/,
    );
    // expectStatus: the status the flow expects succeeds, its body given as usual
    const expected = await runLocal(
      run,
      dir,
      `    with: { url: "${server.base}/missing", expectStatus: [200, 404] }`,
    );
    assert.equal(expected.code, 0, JSON.stringify(expected.record));
    assert.equal(expected.record.outputs.result.status, 404);
    assert.equal(expected.record.outputs.result.body, "no such thing here");
  });
});

Deno.test("http node: a response larger than maxBytes fails, naming the limit", async () => {
  await withServerProject(async (run, dir, server) => {
    const { code, record } = await runLocal(
      run,
      dir,
      `    with: { url: "${server.base}/big", maxBytes: 1000 }`,
    );
    assert.equal(code, 1);
    assert.match(
      record.nodes.call.error,
      /\/big: the response body is larger than maxBytes \(1,000 bytes; it declares 5,000\); raise maxBytes or ask for less$/,
    );
  });
});

Deno.test("http node: a redirect to a host its permissions: net does not list is refused by the sandbox", async () => {
  await withServerProject(async (run, dir, server) => {
    const { code, record } = await runLocal(run, dir, `    with: { url: "${server.base}/away" }`);
    assert.equal(code, 1);
    assert.equal(server.hits.get("/away"), 1);
    assert.equal(server.hits.get("/elsewhere"), undefined, "the redirect was not followed");
    assert.equal(
      record.nodes.call.error,
      `GET ${server.base}/away (redirected to http://localhost:${server.port}/elsewhere): Requires net access to "localhost:${server.port}" (permission denied: the node may only do what its permissions: in the flow declare; hint: add to the node in its flow file: permissions: { net: ["localhost:${server.port}"] })`,
    );
  });
});

Deno.test("flowstate validate refuses an http node whose literal url's host is not declared, at its line and column", async () => {
  await withServerProject(async (run, dir, server) => {
    await Deno.writeTextFile(
      join(dir, "call.flow.yaml"),
      flowOf(
        `    permissions: { net: ["127.0.0.1:1"] }\n    with:\n      url: ${server.base}/json`,
      ),
    );
    const r = await run("validate", "call.flow.yaml");
    assert.equal(r.code, 2, r.stderr);
    assert.ok(
      r.stderr.includes(
        `call.flow.yaml:7:12: nodes[0].with.url: http: host 127.0.0.1:${server.port} is not in the node's permissions: net (127.0.0.1:1); an http node may call only the hosts it declares: add to the node in its flow file: permissions: { net: ["127.0.0.1:1", "127.0.0.1:${server.port}"] }`,
      ),
      r.stderr,
    );
    // Without permissions: at all, the same, with the line to write.
    await Deno.writeTextFile(
      join(dir, "call.flow.yaml"),
      flowOf(`    with:\n      url: ${server.base}/json`),
    );
    const none = await run("validate", "call.flow.yaml");
    assert.equal(none.code, 2);
    assert.match(
      none.stderr,
      /call\.flow\.yaml:6:12: .*\(none declared\); .*permissions: \{ net: \["127\.0\.0\.1:\d+"\] \}/,
    );
    // Declared: valid, and validate says where it runs and what it may reach.
    await Deno.writeTextFile(
      join(dir, "call.flow.yaml"),
      flowOf(`    permissions: { net: ["127.0.0.1"] }\n    with:\n      url: ${server.base}/json`),
    );
    const ok = await run("validate", "call.flow.yaml");
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(
      ok.stdout,
      /^ {2}call \(http\): requests from a Worker, permissions: net=127\.0\.0\.1$/m,
    );
    assert.equal(ok.stderr, "");
    // A credential written in the flow file: valid, with a warning (the flow's versions keep it).
    await Deno.writeTextFile(
      join(dir, "call.flow.yaml"),
      flowOf(
        `    permissions: { net: ["127.0.0.1"] }\n    with:\n      url: http://u:hunter22@127.0.0.1/x?page=1&api_key=k123\n      headers: { Authorization: Bearer abc, X-Token: "\${{ env.T }}", Accept: text/plain }`,
        "env: [T]\n",
      ),
    );
    const warned = await run("validate", "call.flow.yaml");
    assert.equal(warned.code, 0, warned.stderr);
    assert.match(
      warned.stderr,
      /^warning: call\.flow\.yaml: node call \(http\) holds the url's password, the url's api_key=, header Authorization as written in the flow file, which every recorded version of the flow keeps; pass it from the environment instead/m,
    );
    assert.equal(server.hits.size, 0, "nothing was requested");
  });
});

Deno.test("flowstate validate reports an http node's bad options at their place", async () => {
  await withServerProject(async (run, dir) => {
    await Deno.writeTextFile(
      join(dir, "call.flow.yaml"),
      [
        "id: call",
        "nodes:",
        "  - id: call",
        "    type: http",
        '    permissions: { net: ["127.0.0.1"], read: [.] }',
        "    with:",
        "      url: 127.0.0.1/x",
        "      method: FETCH",
        "      headers: { Authorization: 5 }",
        "      bodyy: {}",
        "",
      ].join("\n"),
    );
    assert.deepEqual(await validateProblems(run), [
      "5:46 nodes[0].permissions.read: an http node takes only net: under permissions: (the hosts it may call); remove read:",
      '7:12 nodes[0].with.url: http: expected an absolute http:// or https:// URL, got "127.0.0.1/x"',
      '8:15 nodes[0].with.method: http: expected one of "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", got "FETCH" (did you mean "PATCH"?)',
      "9:33 nodes[0].with.headers.Authorization: http: expected a string (quote it in YAML), got a number",
      '10:7 nodes[0].with.bodyy: unknown option "bodyy" for http (did you mean "body"?)',
    ]);
  });
});

Deno.test("http node: a templated url is checked against permissions: net when the run evaluates it", async () => {
  await withServerProject(async (run, dir, server) => {
    const { code, record } = await runJson(
      run,
      dir,
      flowOf(
        `    permissions: { net: ["127.0.0.1"] }\n    with: { url: "\${{ inputs.url }}" }`,
        "inputs:\n  url: { type: string }\n",
      ),
      "--input",
      `url=http://localhost:${server.port}/json`,
    );
    assert.equal(code, 1);
    assert.equal(
      record.nodes.call.error,
      `call.flow.yaml:8:18: nodes[0].with.url: invalid options for http: host localhost:${server.port} is not in the node's permissions: net (127.0.0.1); an http node may call only the hosts it declares: add to the node in its flow file: permissions: { net: ["127.0.0.1", "localhost:${server.port}"] }`,
    );
    // A template after the host: the host is known before the run, so validate refuses it.
    await Deno.writeTextFile(
      join(dir, "call.flow.yaml"),
      flowOf(
        `    permissions: { net: ["127.0.0.1"] }\n    with:\n      url: "http://localhost:${server.port}/x/\${{ inputs.id }}"`,
        "inputs:\n  id: { type: string }\n",
      ),
    );
    const validated = await run("validate", "call.flow.yaml");
    assert.equal(validated.code, 2);
    assert.ok(
      validated.stderr.includes(
        `call.flow.yaml:9:12: nodes[0].with.url: http: host localhost:${server.port} is not in the node's permissions: net (127.0.0.1); an http node may call only the hosts it declares: add to the node in its flow file: permissions: { net: ["127.0.0.1", "localhost:${server.port}"] }`,
      ),
      validated.stderr,
    );
    assert.equal(server.hits.size, 0, "nothing was requested");
  });
});

Deno.test("http node: a node timeout aborts the request in flight", async () => {
  // Through mod.ts with the node's timeout as a sleep the test fires once the request has
  // reached the server: a real timeout (300ms) could fire before the request is even sent on
  // a loaded machine, and then no request would ever arrive.
  const server = testServer();
  const rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  try {
    const { timers, nth } = firedTimers();
    const running = rt.runFlow({
      id: "call",
      nodes: [{
        id: "call",
        type: "http",
        timeout: "7m",
        permissions: { net: ["127.0.0.1"] },
        with: { url: `${server.base}/hang` },
      }],
    }, { timers });
    await within(server.hanging, "the request to reach the server");
    (await within(nth(0), "the node's timeout timer"))();
    const record = await within(running, "the run's end");
    assert.equal(record.status, "failed");
    assert.equal(record.nodes.call.status, "timed-out");
    await within(server.hangAborted, "the request to be given up"); // the connection was given up
  } finally {
    await rt.close();
    await server.close();
  }
});

Deno.test("http node: secrets in headers, userinfo and query never reach the records, the CLI's output or an archive", async () => {
  const token = "tok-4f9a1c77e2d04b6bb0c1";
  const password = "pw-91d2ae55b3";
  const apiKey = "key-0b7d3e9c81aa";
  await withServerProject(async (run, dir, server) => {
    const hostPart = `h:${password}@127.0.0.1:${server.port}`;
    const yaml = [
      "id: call",
      "env: [API_TOKEN, API_PASSWORD, API_KEY]",
      "nodes:",
      "  - id: ok",
      "    type: http",
      '    permissions: { net: ["127.0.0.1"] }',
      "    with:",
      `      url: "http://h:\${{ env.API_PASSWORD }}@127.0.0.1:${server.port}/json"`,
      '      query: { api_key: "${{ env.API_KEY }}" }',
      '      headers: { Authorization: "Bearer ${{ env.API_TOKEN }}", X-Api-Key: "${{ env.API_TOKEN }}" }',
      "  - id: bad",
      "    type: http",
      "    needs: [ok]",
      '    permissions: { net: ["127.0.0.1"] }',
      "    with:",
      `      url: "http://h:\${{ env.API_PASSWORD }}@127.0.0.1:${server.port}/echo-fail?api_key=\${{ env.API_KEY }}"`,
      '      headers: { Authorization: "Bearer ${{ env.API_TOKEN }}" }',
      "",
    ].join("\n");
    await Deno.writeTextFile(join(dir, "call.flow.yaml"), yaml);
    const printed: string[] = [];
    const cli = async (...args: string[]) => {
      const r = await run(...args);
      printed.push(r.stdout, r.stderr);
      return r;
    };
    const ran = await cli("run", "call.flow.yaml", "--json");
    assert.equal(ran.code, 1, ran.stderr);
    const record = JSON.parse(ran.stdout);
    // The server did get them: the requests were made with the secrets.
    assert.equal(server.hits.get("/json"), 1);
    assert.equal(server.hits.get("/echo-fail"), 1);
    assert.equal(record.nodes.ok.output.body.authorization, "[redacted]");
    assert.equal(record.nodes.ok.output.body.query.api_key, "[redacted]");
    assert.match(
      record.nodes.bad.error,
      /^GET http:\/\/127\.0\.0\.1:\d+\/echo-fail\?api_key=\[redacted\] answered 500/,
    );
    await cli("run", "call.flow.yaml"); // the human-readable summary, with logs
    await cli("runs", "show", record.id);
    await cli("runs", "show", record.id, "--json");
    await cli("runs", "ls", "--json");
    await cliOk(run, "jobs", "run", "archive", "--option", "olderThan=0", "--json", "--quiet");
    await cli("runs", "ls", "--archived", "--json");
    await cli("runs", "show", record.id, "--json");
    const files: string[] = [];
    const walk = async (path: string) => {
      for await (const entry of Deno.readDir(path)) {
        const full = join(path, entry.name);
        if (entry.isDirectory) await walk(full);
        else if (entry.isFile) files.push(full);
      }
    };
    await walk(join(dir, "home"));
    assert.ok(files.some((f) => f.endsWith("main.db")), files.join(", "));
    const stored = await Promise.all(
      files.map(async (f) => new TextDecoder("latin1").decode(await Deno.readFile(f))),
    );
    for (const secret of [token, password, apiKey, btoa(`h:${password}`), hostPart]) {
      for (const [i, text] of stored.entries()) {
        assert.ok(!text.includes(secret), `${secret} is in ${files[i]}`);
      }
      for (const text of printed) {
        assert.ok(!text.includes(secret), `${secret} was printed: ${text}`);
      }
    }
    assert.ok(printed.join("").includes("[redacted]"));
  }, { API_TOKEN: token, API_PASSWORD: password, API_KEY: apiKey });
});

Deno.test("http node: a sandboxed node's ctx.runFlow cannot reach hosts beyond its own permissions through an http node", async () => {
  await withServerProject(async (run, dir, server) => {
    await Deno.writeTextFile(
      join(dir, "caller.ts"),
      `export default {
  kind: "flowstate.node",
  optionsSchema: { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } },
  async run(ctx) {
    try {
      return (await ctx.runFlow("./call.flow.yaml")).status;
    } catch (e) {
      return e.message;
    }
  },
};
`,
    );
    await Deno.writeTextFile(
      join(dir, "call.flow.yaml"),
      flowOf(`    permissions: { net: ["127.0.0.1"] }\n    with: { url: "${server.base}/json" }`),
    );
    await Deno.writeTextFile(
      join(dir, "outer.flow.yaml"),
      "id: outer\nnodes:\n  - { id: caller, type: ./caller.ts }\n",
    );
    const r = await run("run", "outer.flow.yaml", "--json");
    const record = JSON.parse(r.stdout);
    assert.match(
      record.nodes.caller.output,
      /^Cannot start sub-flow call .*: node call \(http\) declares net: \[127\.0\.0\.1\]; a sub-flow started by a sandboxed node runs within that node's own permissions \(none\)/,
    );
    assert.equal(server.hits.size, 0, "nothing was requested");
  });
});

Deno.test("flowstate validate: an http node needs permissions: net with hosts Deno takes", async () => {
  await withCliProject(CONFIG, async (run, dir) => {
    await Deno.writeTextFile(
      join(dir, "call.flow.yaml"),
      [
        "id: call",
        "inputs:",
        "  u: { type: string }",
        "nodes:",
        "  - id: open",
        "    type: http",
        '    with: { url: "${{ inputs.u }}" }',
        "  - id: odd",
        "    type: http",
        '    permissions: { net: ["api.test", "bad host"] }',
        '    with: { url: "https://api.test/" }',
        "",
      ].join("\n"),
    );
    assert.deepEqual(await validateProblems(run), [
      '6:11 nodes[0].type: an http node may call only the hosts listed under its permissions: net:, and it lists none; add the hosts its url may name, like permissions: { net: ["api.example.com:443"] }',
      '10:38 nodes[1].permissions.net[1]: "bad host" is not a net permission: expected a host name or IP address, optionally with :port (like "api.example.com:443" or "*.example.com")',
    ]);
  });
});

Deno.test("http node: flowstate runs cancel aborts the request in flight", async () => {
  await withServerProject(async (run, dir, server) => {
    await Deno.writeTextFile(
      join(dir, "call.flow.yaml"),
      flowOf(`    permissions: { net: ["127.0.0.1"] }\n    with: { url: "${server.base}/hang" }`),
    );
    const child = cliCommand(dir, ["run", "call.flow.yaml", "--json"]).spawn();
    await within(server.hanging, "the request to reach the server", {
      onHang: () => killQuietly(child),
    }); // the request is in flight
    const running = JSON.parse(await cliOk(run, "runs", "ls", "--status", "running", "--json"));
    assert.equal(running.length, 1);
    await cliOk(run, "runs", "cancel", running[0].id);
    const result = await outputOf(child);
    assert.equal(result.code, 1, result.stderr);
    const record = JSON.parse(result.stdout);
    assert.equal(record.status, "cancelled");
    assert.equal(record.nodes.call.status, "cancelled");
    await within(server.hangAborted, "the request to be given up"); // the connection was given up
  });
});

Deno.test("http node: a secret query value the server echoes form-encoded (a space as +, ! as %21) is [redacted] in its output", async () => {
  const apiKey = "k3y with space!";
  await withServerProject(async (run, dir, server) => {
    const { code, record } = await runJson(
      run,
      dir,
      flowOf(
        `    permissions: { net: ["127.0.0.1"] }\n    with:\n      url: ${server.base}/url\n      query: { api_key: "\${{ env.API_KEY }}" }`,
        "env: [API_KEY]\n",
      ),
    );
    assert.equal(code, 0, JSON.stringify(record));
    // The server got it, and answered its URL as the request sent it.
    assert.equal(server.hits.get("/url"), 1);
    assert.equal(record.nodes.call.output.body.url, `${server.base}/url?api_key=[redacted]`);
    assert.ok(!JSON.stringify(record).includes("k3y+with+space%21"), JSON.stringify(record));
  }, { API_KEY: apiKey });
});

Deno.test("http node: a redirect to another origin drops every credential header (X-Api-Key too), not Idempotency-Key; one to the same origin keeps them", async () => {
  await withServerProject(async (run, dir, server) => {
    const headers =
      `headers: { X-Api-Key: "\${{ env.API_KEY }}", Private-Token: "\${{ env.API_KEY }}", X-Trace: t-1, Idempotency-Key: order-77 }`;
    const { code, record } = await runJson(
      run,
      dir,
      `id: call
env: [API_KEY]
nodes:
  - id: away
    type: http
    permissions: { net: ["127.0.0.1", "localhost"] }
    with: { url: "${server.base}/away-keyed", ${headers} }
  - id: near
    type: http
    permissions: { net: ["127.0.0.1"] }
    with: { url: "${server.base}/near-keyed", ${headers} }
`,
    );
    assert.equal(code, 0, JSON.stringify(record));
    assert.equal(server.hits.get("/headers"), 2);
    // localhost is another origin than 127.0.0.1: only the header that carries no credential goes.
    const away = record.nodes.away.output.body;
    assert.equal(away["x-api-key"], undefined, JSON.stringify(away));
    assert.equal(away["private-token"], undefined, JSON.stringify(away));
    assert.equal(away["x-trace"], "t-1");
    // An idempotency key is no credential: a retried POST must still carry it (its value is
    // masked in the record, as any header named like a key).
    assert.equal(away["idempotency-key"], "[redacted]", JSON.stringify(away));
    const near = record.nodes.near.output.body;
    assert.equal(near["x-api-key"], "[redacted]", JSON.stringify(near));
    assert.equal(near["private-token"], "[redacted]", JSON.stringify(near));
  }, { API_KEY: "k-5c1d9e0f7a2b" });
});
