/**
 * Secrets a run obtains while it runs, through the CLI: a node's `mask:`
 * (an OAuth token an `http` node got, a token an `exec` program printed), a
 * custom node's `ctx.mask()`, and the credential headers of an `http` node's
 * response. The next nodes (and a sub-run) get the real values, which the
 * test server sees; nothing the run records or shows holds them (stdout,
 * stderr, `runs show`, the store's files, an archive). Bad `mask:` is refused
 * at its place, a value too short to mask fails the node, and `runs resume`
 * runs a masked node again rather than reuse its output.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Result, type Sandbox, withSandbox } from "./_cli_sandbox.ts";

const MOD = JSON.stringify(new URL("../mod.ts", import.meta.url).href);

/** With a `/`, so that its JSON-escaped and URL-encoded forms differ from it. */
const TOKEN = "tok3n/Access-7f1c2e9b";
const REFRESH = "refr3sh-5a6b7c8d";
const COOKIE = "c00kie-sid-0d9e8f7a";
const PRINTED = "vault-s.9XyZ7wQ1";
const FETCHED = "fetch3d-cred-4e5f6a";
/** Every value the run obtains: no record may hold any of them. */
const SECRETS = [TOKEN, REFRESH, COOKIE, PRINTED, FETCHED, btoa(TOKEN)];

/** What the test server saw: each request's path and its credentials. */
interface Seen {
  path: string;
  authorization: string | null;
  cookie: string | null;
}

/**
 * A token endpoint (`POST /token`: the tokens, and a session cookie) and an API that answers
 * 200 only to the right token and cookie (`/api`, `/sub`); `/api` fails the first `failApi`
 * times it is called. `seen` lists the requests.
 */
function tokenServer(failApi = 0): { port: number; seen: Seen[]; close(): Promise<void> } {
  const seen: Seen[] = [];
  let apiCalls = 0;
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    const authorization = req.headers.get("authorization");
    seen.push({ path, authorization, cookie: req.headers.get("cookie") });
    if (path === "/token") {
      const headers = new Headers({ "content-type": "application/json" });
      headers.append("set-cookie", `sid=${COOKIE}; Path=/; HttpOnly`);
      headers.append("set-cookie", "lang=en; Path=/");
      headers.set("www-authenticate", 'Bearer realm="api"');
      headers.set("x-session", "ab1"); // a credential too short to mask
      return new Response(
        JSON.stringify({
          access_token: TOKEN,
          refresh_token: REFRESH,
          token_type: "Bearer",
          expires_in: 3600,
        }),
        { headers },
      );
    }
    if (path === "/api" && ++apiCalls <= failApi) {
      return Response.json({ error: "try again" }, { status: 503 });
    }
    if (authorization !== `Bearer ${TOKEN}`) {
      return Response.json({ error: "bad token" }, { status: 401 });
    }
    return Response.json({ ok: true, path });
  });
  return { port: server.addr.port, seen, close: () => server.shutdown() };
}

const SUB_FLOW = (port: number) =>
  `id: sub
inputs:
  token: { type: string }
nodes:
  - id: call
    type: http
    permissions: { net: ["127.0.0.1"] }
    with:
      url: http://127.0.0.1:${port}/sub
      headers: { Authorization: "Bearer \${{ inputs.token }}" }
  - { id: say, type: log, with: { message: "sub got \${{ inputs.token }}" } }
`;

const OAUTH_FLOW = (port: number) =>
  `id: oauth
nodes:
  - id: token
    type: http
    permissions: { net: ["127.0.0.1"] }
    mask: [body.access_token, body.refresh_token, body.id_token]
    with:
      url: http://127.0.0.1:${port}/token
      method: POST
      body: { grant_type: client_credentials }
  - id: call
    type: http
    needs: [token]
    permissions: { net: ["127.0.0.1"] }
    with:
      url: http://127.0.0.1:${port}/api
      headers:
        Authorization: "Bearer \${{ nodes.token.output.body.access_token }}"
        Cookie: "\${{ split(nodes.token.output.headers['set-cookie'], ';')[0] }}"
  - id: say
    type: log
    needs: [token]
    with:
      message: "got \${{ nodes.token.output.body.access_token }} (\${{ base64(nodes.token.output.body.access_token) }}), refresh \${{ nodes.token.output.body.refresh_token }}"
  - id: keep
    type: transform
    needs: [token]
    with: { value: { header: "Bearer \${{ nodes.token.output.body.access_token }}" } }
  - id: sub
    type: flow
    needs: [token]
    with: { flow: ./sub.flow.yaml, input: { token: "\${{ nodes.token.output.body.access_token }}" } }
outputs:
  called: "\${{ nodes.call.output.body.ok }}"
  kept: "\${{ nodes.keep.output.header }}"
`;

function assertNoSecret(text: string, where: string): void {
  for (const secret of SECRETS) {
    assert.ok(!text.includes(secret), `${where} holds ${secret}:\n${text}`);
  }
}

function assertNoSecretIn(result: Result, where: string): void {
  assertNoSecret(result.stdout, `${where}: stdout`);
  assertNoSecret(result.stderr, `${where}: stderr`);
}

/** Every file under `dir` (gzip'd ones decompressed), as text. */
async function filesUnder(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) {
      for (const [p, text] of await filesUnder(path)) out.set(p, text);
    } else if (entry.isFile) {
      let bytes = await Deno.readFile(path);
      if (entry.name.endsWith(".gz")) {
        const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
        bytes = new Uint8Array(await new Response(stream).arrayBuffer());
      }
      out.set(path, new TextDecoder("latin1").decode(bytes));
    }
  }
  return out;
}

async function write(sandbox: Sandbox, files: Record<string, string>): Promise<void> {
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(join(sandbox.dir, name), text);
  }
}

Deno.test("cli: a token an http node obtains (mask:) reaches the next nodes and a sub-run, and is *** in everything recorded and shown", async () => {
  const server = tokenServer();
  try {
    await withSandbox(async (sandbox) => {
      await write(sandbox, {
        "oauth.flow.yaml": OAUTH_FLOW(server.port),
        "sub.flow.yaml": SUB_FLOW(server.port),
      });
      const run = await sandbox.run("run", "oauth.flow.yaml", "--json");
      assertNoSecretIn(run, "run --json");
      assert.equal(run.code, 0, run.stderr);
      const record = JSON.parse(run.stdout);
      assert.equal(record.status, "succeeded");

      // The server got the real values: the token from the next node and the sub-run, the cookie.
      const api = server.seen.find((s) => s.path === "/api")!;
      assert.equal(api.authorization, `Bearer ${TOKEN}`);
      assert.equal(api.cookie, `sid=${COOKIE}`);
      assert.equal(server.seen.find((s) => s.path === "/sub")?.authorization, `Bearer ${TOKEN}`);
      assert.deepEqual(record.outputs, { called: true, kept: "Bearer ***" });

      // The node's own output as recorded: the masked paths and its credential header are ***;
      // a path it did not return (id_token) is a warning; the rest is as it came.
      const token = record.nodes.token;
      assert.equal(token.masked, true);
      assert.deepEqual(token.output.body, {
        access_token: "***",
        refresh_token: "***",
        token_type: "Bearer",
        expires_in: 3600,
      });
      assert.equal(token.output.headers["set-cookie"], "***");
      assert.equal(token.output.headers["www-authenticate"], 'Bearer realm="api"');
      assert.equal(token.output.headers["x-session"], "[redacted]");

      const shown = await sandbox.run("runs", "show", record.id, "--json");
      assert.equal(shown.code, 0, shown.stderr);
      assertNoSecretIn(shown, "runs show --json");
      const text = JSON.stringify(JSON.parse(shown.stdout));
      assert.ok(text.includes("got *** (***), refresh ***"), text);
      assert.ok(
        text.includes(
          "mask: body.id_token is not in the node's output, so nothing was masked for it",
        ),
        text,
      );
      assertNoSecretIn(await sandbox.run("runs", "show", record.id), "runs show");

      const runs = await sandbox.run("runs", "ls", "--json");
      assertNoSecretIn(runs, "runs ls");
      const sub = (JSON.parse(runs.stdout) as { id: string; flowId: string }[])
        .find((r) => r.flowId === "sub")!;
      const subShown = await sandbox.run("runs", "show", sub.id, "--json");
      assertNoSecretIn(subShown, "runs show of the sub-run");
      const subRecord = JSON.parse(subShown.stdout);
      assert.deepEqual(subRecord.run.inputs, { token: "***" });
      assert.ok(JSON.stringify(subRecord).includes("sub got ***"), subShown.stdout);

      // The store's files, then the archive.
      const files = await filesUnder(sandbox.home);
      for (const [path, text] of files) assertNoSecret(text, path);
      assert.ok(
        [...files.values()].some((t) => t.includes("got *** (***)")),
        "the store is readable as text (else the search above proves nothing)",
      );
      const archive = await sandbox.run(
        "jobs",
        "run",
        "archive",
        "--option",
        "olderThan=0",
        "--json",
        "--quiet",
      );
      assert.equal(archive.code, 0, archive.stderr);
      const archived = [...(await filesUnder(join(sandbox.home, "archive"))).entries()];
      assert.ok(archived.some(([, text]) => text.includes("got *** (***)")), "archived runs");
      for (const [path, text] of archived) assertNoSecret(text, path);
    });
  } finally {
    await server.close();
  }
});

Deno.test("cli: runs resume runs a node whose output was masked at run time again, not reused", async () => {
  const server = tokenServer(1);
  try {
    await withSandbox(async (sandbox) => {
      await write(sandbox, {
        "oauth.flow.yaml": OAUTH_FLOW(server.port),
        "sub.flow.yaml": SUB_FLOW(server.port),
      });
      const failed = await sandbox.run("run", "oauth.flow.yaml", "--json");
      assertNoSecretIn(failed, "run");
      assert.equal(failed.code, 1, failed.stderr);
      const first = JSON.parse(failed.stdout);
      assert.equal(first.nodes.call.status, "failed");
      assert.equal(server.seen.filter((s) => s.path === "/token").length, 1);

      const resumed = await sandbox.run(
        "runs",
        "resume",
        first.id,
        "--flow",
        "oauth.flow.yaml",
        "--json",
      );
      assertNoSecretIn(resumed, "runs resume");
      assert.equal(resumed.code, 0, resumed.stderr);
      const record = JSON.parse(resumed.stdout);
      assert.equal(record.status, "succeeded");
      // Its recorded output held ***, not the token: it ran again, and got a token to send.
      assert.equal(record.nodes.token.reused, undefined);
      assert.equal(server.seen.filter((s) => s.path === "/token").length, 2);
      assert.equal(server.seen.at(-1)?.authorization, `Bearer ${TOKEN}`);
      for (const [path, text] of await filesUnder(sandbox.home)) assertNoSecret(text, path);
    });
  } finally {
    await server.close();
  }
});

/** A custom node (a sandboxed Worker) that fetches a credential and masks it with ctx.mask. */
const FETCH_NODE = `import { defineNode } from ${MOD};
import { z } from "zod";
export default defineNode({
  optionsSchema: z.strictObject({}),
  run(ctx) {
    // As a vault or a token endpoint would give it (made here: this file's text is no record).
    const credential = ${JSON.stringify(FETCHED.slice(0, 8))} + ${JSON.stringify(FETCHED.slice(8))};
    ctx.mask(credential);
    ctx.log("fetched " + credential);
    const refused = [];
    for (const bad of ["abc", 42]) {
      try {
        ctx.mask(bad);
      } catch (err) {
        refused.push(err.name + ": " + err.message);
      }
    }
    ctx.mask(""); // nothing to hide: ignored
    return { credential, refused };
  },
});
`;

const CUSTOM_FLOW = `id: custom
nodes:
  - { id: fetch, type: ./fetch.ts }
  - id: vault
    type: exec
    permissions: { run: [sh] }
    mask: [stdout]
    with: { command: sh, args: [-c, "printf '${PRINTED.slice(0, 6)}%s\\n' ${PRINTED.slice(6)}"] }
  - id: use
    type: transform
    needs: [fetch, vault]
    with:
      value:
        upper: "\${{ upper(nodes.fetch.output.credential) }}"
        length: "\${{ length(nodes.fetch.output.credential) }}"
        printed: "\${{ trim(nodes.vault.output.stdout) }}"
        printedLength: "\${{ length(trim(nodes.vault.output.stdout)) }}"
  - id: say
    type: log
    needs: [use]
    with: { message: "use \${{ nodes.fetch.output.credential }} and \${{ trim(nodes.vault.output.stdout) }}" }
outputs:
  use: "\${{ nodes.use.output }}"
  refused: "\${{ nodes.fetch.output.refused }}"
`;

Deno.test("cli: a custom node's ctx.mask() and an exec node's mask: make run secrets", async () => {
  await withSandbox(async (sandbox) => {
    await write(sandbox, { "fetch.ts": FETCH_NODE, "custom.flow.yaml": CUSTOM_FLOW });
    const run = await sandbox.run("run", "custom.flow.yaml", "--json");
    assertNoSecretIn(run, "run --json");
    assert.ok(!run.stderr.includes(FETCHED.toUpperCase()), run.stderr);
    assert.equal(run.code, 0, run.stderr);
    const record = JSON.parse(run.stdout);
    assert.deepEqual(record.outputs, {
      // The later node got the real values (their lengths); what it derived is *** too.
      use: { upper: "***", length: FETCHED.length, printed: "***", printedLength: PRINTED.length },
      refused: [
        "RangeError: ctx.mask(): the value is 3 character(s) long, under 4: too short to be masked in the records (masking it would hide those characters wherever they appear, and give it away)",
        "TypeError: ctx.mask(): expected the secret as a string, got number; pass String(value) for a number",
      ],
    });
    assert.equal(record.nodes.fetch.output.credential, "***");
    assert.equal(record.nodes.vault.output.stdout.trim(), "***");
    const shown = await sandbox.run("runs", "show", record.id, "--json");
    assertNoSecretIn(shown, "runs show --json");
    assert.ok(!shown.stdout.includes(FETCHED.toUpperCase()), shown.stdout);
    const text = JSON.stringify(JSON.parse(shown.stdout));
    assert.ok(text.includes("fetched ***"), text);
    assert.ok(text.includes("use *** and ***"), text);
    for (const [path, text] of await filesUnder(sandbox.home)) {
      assertNoSecret(text, path);
      assert.ok(!text.includes(FETCHED.toUpperCase()), path);
    }
  });
});

Deno.test("cli: a value mask: finds too short to mask fails the node at its mask: path, unrecorded", async () => {
  await withSandbox(async (sandbox) => {
    await write(sandbox, {
      "short.flow.yaml": `id: short
nodes:
  - id: pin
    type: transform
    mask: [code, items]
    with: { value: { code: "\${{ upper('q7z') }}", items: ["\${{ upper('long-enough') }}", "ab"] } }
`,
    });
    const run = await sandbox.run("run", "short.flow.yaml", "--json");
    assert.equal(run.code, 1, run.stderr);
    const record = JSON.parse(run.stdout);
    assert.equal(record.nodes.pin.status, "failed");
    assert.equal(record.nodes.pin.output, undefined);
    assert.equal(
      record.nodes.pin.error,
      "short.flow.yaml:5:12: nodes[0].mask[0]: code of the output is 3 character(s) long (and 1 more), under 4: too short to be masked in the records (masking it would hide those characters wherever they appear, and give it away), so the attempt fails rather than record it; mask only secrets, each of 4 characters or more",
    );
    for (const [path, text] of await filesUnder(sandbox.home)) {
      assert.ok(!text.includes("Q7Z") && !text.includes("LONG-ENOUGH"), path);
    }
  });
});

Deno.test("cli: validate places each bad mask: with what to write", async () => {
  await withSandbox(async (sandbox) => {
    await write(sandbox, {
      "bad.flow.yaml": `id: bad
nodes:
  - { id: a, type: transform, with: { value: 1 }, mask: "body.token" }
  - { id: b, type: transform, with: { value: 1 }, mask: [] }
  - { id: c, type: transform, with: { value: 1 }, mask: [body..token, "items[x]", 3] }
  - { id: d, type: transform, with: { value: 1 }, mask: false }
  - { id: e, type: transform, with: { value: 1 }, mask: ["headers.set-cookie", "items[0].id", "body['a.b']"] }
  - { id: f, type: transform, with: { value: 1 }, mask: true }
`,
    });
    const result = await sandbox.run("validate", "bad.flow.yaml");
    assert.equal(result.code, 2, result.stderr);
    const errors = result.stdout.concat(result.stderr).split("\n").filter((l) =>
      l.startsWith("error:")
    );
    const hint =
      "a path into the node's output such as body.access_token, headers.set-cookie, items[0] or body['a.b']";
    assert.deepEqual(errors, [
      `error: bad.flow.yaml:3:57: nodes[0].mask: expected a list of paths into the node's output (${hint}), or true for the whole output, got a string: write it as a list, mask: [body.token]`,
      `error: bad.flow.yaml:4:57: nodes[1].mask: expected a list of paths into the node's output (${hint}), or true for the whole output, got an empty list`,
      `error: bad.flow.yaml:5:58: nodes[2].mask[0]: an empty step at character 6 in mask path "body..token"; expected ${hint}`,
      `error: bad.flow.yaml:5:71: nodes[2].mask[1]: a bad [ at character 6 in mask path "items[x]"; expected ${hint}`,
      `error: bad.flow.yaml:5:83: nodes[2].mask[2]: expected ${hint}, got 3`,
      `error: bad.flow.yaml:6:57: nodes[3].mask: expected a list of paths into the node's output (${hint}), or true for the whole output, got false`,
    ]);
  });
});
