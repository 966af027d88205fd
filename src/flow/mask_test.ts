import assert from "node:assert/strict";
import { maskedValues, parseMaskPath } from "./_mask_paths.ts";
import { isCredentialResponseHeader, responseCredentials } from "./_http.ts";
import { readWorkerMessage } from "./_sandbox_messages.ts";
import { maskProblem } from "./_context_args.ts";
import { openRuntime } from "../../mod.ts";
import type { RunEvent } from "../records/types.ts";

Deno.test("parseMaskPath: dotted steps, [n], quoted keys; what is wrong with a bad one", () => {
  assert.deepEqual(parseMaskPath("body.access_token"), ["body", "access_token"]);
  assert.deepEqual(parseMaskPath("headers.set-cookie"), ["headers", "set-cookie"]);
  assert.deepEqual(parseMaskPath("items[0].id"), ["items", 0, "id"]);
  assert.deepEqual(parseMaskPath("items.0"), ["items", 0]);
  assert.deepEqual(parseMaskPath(`body['a.b']["c d"]`), ["body", "a.b", "c d"]);
  assert.deepEqual(parseMaskPath("[0]"), [0]);
  for (const bad of ["", " ", "a..b", "a.", ".a", "a[", "a[x]", "a b", "a]"]) {
    const parsed = parseMaskPath(bad);
    assert.ok(!Array.isArray(parsed), bad);
    assert.match(parsed.problem, /in mask path .*; expected a path into the node's output/, bad);
  }
});

Deno.test("maskedValues: strings and numbers at or under the paths; missing and short ones apart", () => {
  const output = {
    body: { access_token: "t0k3n-abc", expires_in: 3600, scope: "", ok: true, none: null },
    lines: ["line-one", "ab", "line-three"],
    headers: { "set-cookie": "sid=s3ssion; Path=/" },
  };
  assert.deepEqual(maskedValues(["body.access_token", "headers.set-cookie"], output), {
    values: ["t0k3n-abc", "sid=s3ssion; Path=/"],
    missing: [],
    short: [],
  });
  // Under a path: every string and number (an empty string, true and null hide nothing).
  assert.deepEqual(maskedValues(["body", "nope.deeper", "body.access_token.x"], output), {
    values: ["t0k3n-abc", "3600"],
    missing: ["nope.deeper", "body.access_token.x"],
    short: [],
  });
  assert.deepEqual(maskedValues(["lines"], output), {
    values: ["line-one", "line-three"],
    missing: [],
    short: [{ path: "lines[1]", length: 2, index: 0 }],
  });
  assert.deepEqual(maskedValues(["lines[2]", "lines.0"], output).values, [
    "line-three",
    "line-one",
  ]);
  assert.deepEqual(maskedValues(true, "a-whole-output"), {
    values: ["a-whole-output"],
    missing: [],
    short: [],
  });
  assert.deepEqual(maskedValues(true, { "a.b": "xy" }).short, [{ path: "['a.b']", length: 2 }]);
  assert.deepEqual(maskedValues(["x"], null).missing, ["x"]);
});

Deno.test("http: which response headers carry credentials, and their secrets", () => {
  for (const name of ["set-cookie", "Set-Cookie", "x-auth-token", "x-api-key", "authorization"]) {
    assert.ok(isCredentialResponseHeader(name), name);
  }
  for (
    const name of [
      "www-authenticate",
      "proxy-authenticate",
      "access-control-allow-credentials",
      "access-control-allow-headers",
      "content-type",
      "etag",
    ]
  ) {
    assert.ok(!isCredentialResponseHeader(name), name);
  }
  assert.deepEqual(
    responseCredentials(
      "set-cookie",
      "sid=s3ssion-1; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Path=/, lang=en; Path=/",
      4,
    ),
    [
      "sid=s3ssion-1; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Path=/, lang=en; Path=/",
      "sid=s3ssion-1",
      "s3ssion-1",
      "lang=en",
    ],
  );
  // A flag or a locale is not masked alone (every "true" of the run would be ***), its pair is.
  assert.deepEqual(responseCredentials("set-cookie", "consent=true, lang=en-US; Path=/", 4), [
    "consent=true, lang=en-US; Path=/",
    "consent=true",
    "lang=en-US",
  ]);
  assert.deepEqual(responseCredentials("x-auth-token", "Bearer abc123", 4), [
    "Bearer abc123",
    "abc123",
  ]);
});

Deno.test("ctx.mask's argument checks, and the Worker's mask message", () => {
  assert.equal(maskProblem("long-enough"), undefined);
  assert.equal(maskProblem(""), undefined);
  assert.ok(maskProblem("abc") instanceof RangeError);
  assert.ok(maskProblem(1234) instanceof TypeError);
  assert.ok(maskProblem("x".repeat(64 * 1024 + 1)) instanceof RangeError);
  assert.deepEqual(readWorkerMessage(JSON.stringify({ op: "mask", run: 1, value: "abcd" })), {
    op: "mask",
    run: 1,
    value: "abcd",
  });
  for (const bad of [{ op: "mask", run: 1 }, { op: "mask", run: 1, value: 5 }, { op: "mask" }]) {
    assert.ok("problem" in readWorkerMessage(JSON.stringify(bad)), JSON.stringify(bad));
  }
});

/** A trusted (in-process) custom node: masks `value` with ctx.mask, then logs and returns it. */
const TRUSTED_NODE = `import { defineNode } from ${
  JSON.stringify(new URL("../../mod.ts", import.meta.url).href)
};
export default defineNode({
  optionsSchema: { "~standard": { version: 1, vendor: "t", validate: (value) => ({ value }) } },
  run(ctx, { value }) {
    ctx.log("before " + value);
    ctx.mask(value);
    ctx.log("after " + value);
    return { value };
  },
});
`;

Deno.test("runFlow: mask: per forEach item, with continueOnError and retries; ctx.mask in-process", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/masking.ts`, TRUSTED_NODE);
  try {
    await using rt = await openRuntime({
      cwd: dir,
      config: { stores: { main: { plugin: "memory" } }, nodes: { trusted: ["./masking.ts"] } },
    });
    const events: RunEvent[] = [];
    const run = await rt.runFlow({
      id: "items",
      nodes: [
        {
          id: "each",
          type: "transform",
          forEach: ["alpha-secret", "x", "gamma-secret"],
          continueOnError: true,
          mask: true,
          with: { value: "${{ upper(item) }}" },
        },
        {
          id: "use",
          type: "log",
          needs: ["each"],
          with: { message: "${{ join(nodes.each.output, ',') }}" },
        },
        { id: "own", type: "./masking.ts", with: { value: "own-masked-value" } },
        { id: "show", type: "log", needs: ["own"], with: { message: "${{ nodes.own.output }}" } },
      ],
      outputs: { seen: "${{ nodes.each.output }}" },
    }, { onEvent: (event) => events.push(event) });
    // The item too short to mask failed (continueOnError: its output is null); the others are
    // secrets from their item's end.
    assert.deepEqual(run.nodes.each.output, ["***", null, "***"]);
    assert.match(run.nodes.each.error ?? "", /^item 1: .*the output is 1 character\(s\) long/);
    assert.deepEqual(run.outputs, { seen: ["***", null, "***"] });
    assert.equal(run.nodes.each.masked, true);
    assert.deepEqual(run.nodes.own.output, { value: "***" });
    const logs = events.filter((e) => e.type === "node.log").map((e) =>
      (e as { message: string }).message
    );
    assert.ok(logs.includes("***,null,***"), logs.join("\n"));
    // A line logged before ctx.mask() is as it was; from the call on, masked.
    assert.ok(logs.includes("before own-masked-value"), logs.join("\n"));
    assert.ok(logs.includes("after ***"), logs.join("\n"));
    assert.ok(logs.includes('{"value":"***"}'), logs.join("\n"));
    const text = JSON.stringify(events) + JSON.stringify(run);
    assert.ok(!text.includes("ALPHA-SECRET") && !text.includes("GAMMA-SECRET"), text);

    // Only the paths named are masked; a value too short fails each attempt (retried as any
    // failure), and no output is recorded.
    const retried = await rt.runFlow({
      id: "retried",
      nodes: [{
        id: "token",
        type: "transform",
        mask: ["token"],
        with: {
          value: { token: "${{ upper('retried-token') }}", pin: "${{ upper('ab') }}" },
        },
      }, {
        id: "pin",
        type: "transform",
        retry: { attempts: 2, delay: 0 },
        mask: ["pin"],
        with: { value: { pin: "${{ upper('ab') }}" } },
      }],
    });
    assert.deepEqual(retried.nodes.token.output, { token: "***", pin: "AB" });
    assert.equal(retried.nodes.pin.status, "failed");
    assert.equal(retried.nodes.pin.attempts, 2);
    assert.match(retried.nodes.pin.error ?? "", /nodes\[1\]\.mask\[0\]: pin of the output is 2/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
