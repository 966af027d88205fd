import assert from "node:assert/strict";
import { readSecrets, SECRET_MASK, SecretMasker } from "./secrets.ts";

Deno.test("SecretMasker masks a value anywhere in a string, every time", () => {
  const masker = new SecretMasker(["tok-123"]);
  assert.equal(masker.maskText("tok-123"), SECRET_MASK);
  assert.equal(masker.maskText("a tok-123 b tok-123tok-123"), "a *** b ******");
  assert.equal(masker.maskText("tok-12 is not it"), "tok-12 is not it");
});

Deno.test("SecretMasker masks JSON-escaped (once and twice) and URL-encoded forms", () => {
  const secret = 'p"a\\ss w/rd';
  const masker = new SecretMasker([secret]);
  const once = JSON.stringify({ token: secret });
  assert.equal(masker.maskText(once), '{"token":"***"}');
  const twice = JSON.stringify({ body: once });
  assert.equal(masker.maskText(twice), JSON.stringify({ body: '{"token":"***"}' }));
  assert.equal(masker.maskText(`?t=${encodeURIComponent(secret)}&x=1`), "?t=***&x=1");
  // Out of scope: a derived form (base64) is not found.
  const b64 = btoa(`user:${secret}`);
  assert.equal(masker.maskText(b64), b64);
});

Deno.test("SecretMasker masks the longest value first and several secrets", () => {
  const masker = new SecretMasker(["abcd"]);
  masker.add(["abcdefgh", "zzzz"]);
  assert.equal(masker.maskText("abcdefgh abcd zzzz"), "*** *** ***");
});

Deno.test("SecretMasker ignores values under 4 characters", () => {
  const masker = new SecretMasker(["abc", ""]);
  assert.ok(masker.empty);
  assert.equal(masker.maskText("abc"), "abc");
});

Deno.test("SecretMasker.mask copies objects, arrays, keys and Errors, leaving the original", () => {
  const masker = new SecretMasker(["s3cret"]);
  const value = {
    type: "node.end",
    n: 3,
    ok: true,
    nothing: null,
    list: ["x s3cret", { deep: ["s3cret"] }],
    "s3cret-key": 1,
  };
  const before = structuredClone(value);
  assert.deepEqual(masker.mask(value), {
    type: "node.end",
    n: 3,
    ok: true,
    nothing: null,
    list: ["x ***", { deep: ["***"] }],
    "***-key": 1,
  });
  assert.deepEqual(value, before);
  const err = masker.mask(new TypeError("bad s3cret"));
  assert.ok(err instanceof Error);
  assert.equal(err.message, "bad ***");
  assert.equal(err.name, "TypeError");
  assert.ok(!err.stack?.includes("s3cret"));
});

Deno.test("SecretMasker without secrets returns the same value", () => {
  const value = { a: "b" };
  assert.equal(new SecretMasker().mask(value), value);
});

Deno.test("SecretMasker.contains finds a value in strings and keys", () => {
  const masker = new SecretMasker(["s3cret"]);
  assert.ok(masker.contains({ input: { a: ["x", "ys3cret"] } }));
  assert.ok(masker.contains({ s3cret: 1 }));
  assert.ok(!masker.contains({ input: { a: ["x", "s3cre"] } }));
  assert.ok(!new SecretMasker().contains("s3cret"));
});

Deno.test("readSecrets: values, and a problem for each unset or too short one", () => {
  const flow = { id: "f", secrets: ["A_TOKEN", "B_TOKEN", "C_TOKEN"], nodes: [] };
  const { values, problems } = readSecrets(flow, { A_TOKEN: "long-enough", C_TOKEN: "abc" });
  assert.deepEqual(values, { A_TOKEN: "long-enough" });
  assert.deepEqual(problems.map((p) => p.path), [["secrets", 1], ["secrets", 2]]);
  assert.match(problems[0].message, /^secret B_TOKEN is not set: export it/);
  assert.match(problems[1].message, /^secret C_TOKEN is 3 character\(s\) long, under 4/);
  assert.deepEqual(readSecrets({ id: "f", nodes: [] }, {}), { values: {}, problems: [] });
});

Deno.test("SecretMasker.find() places every masked form, also right after contains() matched", () => {
  const masker = new SecretMasker(['s3cr3t"tok']);
  assert.ok(masker.contains('x s3cr3t"tok'));
  assert.deepEqual(masker.find('a s3cr3t"tok b s3cr3t%22tok'), [[2, 12], [15, 27]]);
  assert.deepEqual(masker.find('{"k":"s3cr3t\\"tok"}'), [[6, 17]]);
  assert.deepEqual(masker.find("nothing here"), []);
  assert.deepEqual(new SecretMasker().find('s3cr3t"tok'), []);
});

Deno.test('SecretMasker: a value with spaces around it (a file\'s "token \\n") is masked without them too', () => {
  const masker = new SecretMasker([" padded-token\t", "line-one \nline-two"]);
  assert.equal(masker.maskText("echo padded-token"), "echo ***");
  assert.equal(masker.maskText("line-one"), "***");
  assert.ok(masker.contains({ out: "padded-token" }));
});
