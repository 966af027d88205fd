/**
 * `NAME_FILE` for the server's own secrets (Docker and Kubernetes secrets
 * mounted as files): the API token from `FLOWSTATE_SERVE_TOKEN_FILE`, and a
 * webhook's shared secret (`secret: { env: NAME }`) from `NAME_FILE`, as a
 * flow's `secrets:` and the config's `${env.X}` already are.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand } from "./_cli_sandbox.ts";
import { drain, waitFor } from "./_stderr_lines.ts";
import { exitOf, hangSignal } from "./_deadline.ts";

const TOKEN = "tok-from-a-file-0123456789";
const HOOK_SECRET = "hook-secret-from-a-file";

async function withDir(fn: (dir: string, secrets: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-serve-env-file-" });
  // Outside the project, as /run/secrets is.
  const secrets = await Deno.makeTempDir({ prefix: "flowstate-serve-secrets-" });
  try {
    await fn(dir, secrets);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(secrets, { recursive: true });
  }
}

/** Serve in `dir` with `env`, run `fn` with the port, stop with SIGTERM; what stderr said. */
async function serving(
  dir: string,
  env: Record<string, string>,
  fn: (port: string) => Promise<void>,
  args: string[] = [],
): Promise<string> {
  const child = cliCommand(dir, ["serve", "--port", "0", ...args], { stdout: "null", env })
    .spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  const seen = { text: "" };
  try {
    const [, port] = await waitFor(reader, /^Serving http:\/\/[\d.]+:(\d+)\/$/m, seen);
    await fn(port);
  } finally {
    child.kill("SIGTERM");
    await drain(reader, seen);
    assert.equal((await exitOf(child, () => seen.text)).code, 0, seen.text);
  }
  return seen.text;
}

/** `serve` in `dir` with `env` expected to stop at start; one that serves is stopped (not left hanging). */
async function refused(
  dir: string,
  env: Record<string, string>,
): Promise<{ code: number; stderr: string }> {
  const child = cliCommand(dir, ["serve", "--port", "0"], { stdout: "null", env }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  const seen = { text: "" };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    seen.text += value;
    if (/^Serving /m.test(seen.text)) {
      child.kill("SIGTERM");
      await drain(reader, seen);
      break;
    }
  }
  return { code: (await exitOf(child)).code, stderr: seen.text };
}

async function statusOf(response: Promise<Response>): Promise<number> {
  const res = await response;
  await res.body?.cancel();
  return res.status;
}

async function sign(secret: string, body: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body)));
  return `sha256=${Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

Deno.test("flowstate serve: the token from FLOWSTATE_SERVE_TOKEN_FILE is required and never printed", async () => {
  await withDir(async (dir, secrets) => {
    const file = join(secrets, "token");
    await Deno.writeTextFile(file, `${TOKEN}\n`); // one trailing newline is not part of it
    const stderr = await serving(dir, { FLOWSTATE_SERVE_TOKEN_FILE: file }, async (port) => {
      assert.equal(
        await statusOf(fetch(`http://127.0.0.1:${port}/api/stores`, { signal: hangSignal() })),
        401,
      );
      assert.equal(
        await statusOf(
          fetch(`http://127.0.0.1:${port}/api/stores`, {
            signal: hangSignal(),
            headers: { authorization: `Bearer ${TOKEN}` },
          }),
        ),
        200,
      );
    }, ["--host", "0.0.0.0"]);
    assert.doesNotMatch(stderr, /Generated a token/);
    assert.ok(!stderr.includes(TOKEN), stderr);
  });
});

Deno.test("flowstate serve: a FLOWSTATE_SERVE_TOKEN_FILE that cannot give the token is exit 2 before serving", async () => {
  await withDir(async (dir, secrets) => {
    const file = join(secrets, "token");
    await Deno.writeTextFile(file, TOKEN);
    const both = await refused(dir, {
      FLOWSTATE_SERVE_TOKEN: "other-token-value",
      FLOWSTATE_SERVE_TOKEN_FILE: file,
    });
    assert.equal(both.code, 2, both.stderr);
    assert.match(both.stderr, /both FLOWSTATE_SERVE_TOKEN and FLOWSTATE_SERVE_TOKEN_FILE are set/);
    assert.doesNotMatch(both.stderr, /^Serving/m);
    assert.ok(!both.stderr.includes(TOKEN) && !both.stderr.includes("other-token-value"));

    const missing = join(secrets, "nope");
    const gone = await refused(dir, { FLOWSTATE_SERVE_TOKEN_FILE: missing });
    assert.equal(gone.code, 2, gone.stderr);
    assert.ok(
      gone.stderr.includes(`FLOWSTATE_SERVE_TOKEN_FILE=${missing}: the file does not exist`),
      gone.stderr,
    );

    // A secret mounted empty would otherwise serve 127.0.0.1 with no token at all.
    const empty = join(secrets, "empty");
    await Deno.writeTextFile(empty, "\n");
    const none = await refused(dir, { FLOWSTATE_SERVE_TOKEN_FILE: empty });
    assert.equal(none.code, 2, none.stderr);
    assert.ok(
      none.stderr.includes(`FLOWSTATE_SERVE_TOKEN_FILE=${empty}: the file is empty`),
      none.stderr,
    );

    // --token wins: the variables are not read.
    const flag = await serving(dir, { FLOWSTATE_SERVE_TOKEN_FILE: missing }, async (port) => {
      assert.equal(
        await statusOf(
          fetch(`http://127.0.0.1:${port}/api/stores`, {
            signal: hangSignal(),
            headers: { authorization: "Bearer flag-token-value" },
          }),
        ),
        200,
      );
    }, ["--token", "flag-token-value"]);
    assert.doesNotMatch(flag, /does not exist/);
  });
});

Deno.test("flowstate serve: a webhook's secret from NAME_FILE checks signatures; one that cannot be read is warned of and refused", async () => {
  await withDir(async (dir, secrets) => {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: { plugin: memory }\nflows: [./flows]\n",
    );
    await Deno.writeTextFile(
      join(dir, "flows", "deploy.flow.yaml"),
      "id: deploy\ntrigger: { http: { path: /hooks/deploy, secret: { env: DEPLOY_HOOK_SECRET } } }\n" +
        "nodes:\n  - { id: a, type: log, with: { message: hi } }\n",
    );
    const file = join(secrets, "hook");
    await Deno.writeTextFile(file, `${HOOK_SECRET}\r\n`);
    const body = "{}";
    const good = await serving(dir, { DEPLOY_HOOK_SECRET_FILE: file }, async (port) => {
      const url = `http://127.0.0.1:${port}/hooks/deploy`;
      const headers = { "content-type": "application/json" };
      assert.equal(
        await statusOf(fetch(url, { signal: hangSignal(), method: "POST", headers, body })),
        401,
      );
      assert.equal(
        await statusOf(
          fetch(url, {
            signal: hangSignal(),
            method: "POST",
            headers: { ...headers, "x-flowstate-signature": await sign("wrong-secret", body) },
            body,
          }),
        ),
        401,
      );
      assert.equal(
        await statusOf(
          fetch(url, {
            signal: hangSignal(),
            method: "POST",
            headers: { ...headers, "x-flowstate-signature": await sign(HOOK_SECRET, body) },
            body,
          }),
        ),
        202,
      );
    });
    assert.doesNotMatch(good, /WEBHOOK_BROKEN|warning: webhook/);

    const missing = join(secrets, "nope");
    const bad = await serving(dir, { DEPLOY_HOOK_SECRET_FILE: missing }, async (port) => {
      const res = await fetch(`http://127.0.0.1:${port}/hooks/deploy`, {
        signal: hangSignal(),
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-flowstate-signature": await sign(HOOK_SECRET, body),
        },
        body,
      });
      assert.equal(res.status, 500);
      const answer = await res.text();
      assert.ok(
        answer.includes(`DEPLOY_HOOK_SECRET_FILE=${missing}: the file does not exist`),
        answer,
      );
    });
    assert.ok(
      bad.includes(
        `warning: webhook /hooks/deploy: its secret cannot be read (DEPLOY_HOOK_SECRET_FILE=${missing}: the file does not exist`,
      ),
      bad,
    );
  });
});
