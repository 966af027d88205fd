import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { sha256Hex } from "./_sha256.ts";

Deno.test("sha256Hex matches node:crypto's SHA-256 on every length around the block sizes", () => {
  const chars = 'abcdefghijklmnopqrstuvwxyz0123456789é€\u{1F600}"[],';
  for (let length = 0; length < 300; length++) {
    let text = "";
    for (let i = 0; i < length; i++) text += chars[(i * 7 + length) % chars.length];
    assert.equal(
      sha256Hex(text),
      createHash("sha256").update(text).digest("hex"),
      `length ${length}`,
    );
  }
  const long = JSON.stringify(["flow", "x".repeat(5000), "ü".repeat(700)]);
  assert.equal(sha256Hex(long), createHash("sha256").update(long).digest("hex"));
  const bytes = new Uint8Array(1000).map((_, i) => (i * 31) & 0xff);
  assert.equal(sha256Hex(bytes), createHash("sha256").update(bytes).digest("hex"));
  assert.equal(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
});
