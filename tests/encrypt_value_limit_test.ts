// An encrypted store stores a value as base64 ciphertext, a third larger than its JSON: a value
// the store would hold in clear may be over the 16 MiB limit once sealed. The refusal says both
// sizes and what an encrypted store holds, and writes nothing.
import assert from "node:assert/strict";
import { openStore } from "../mod.ts";

const KEY = "44".repeat(32);

Deno.test("an encrypted store refuses a value over the limit once sealed, naming both sizes", async () => {
  await using store = await openStore({ plugin: "memory", encrypt: { key: KEY } });
  const value = "x".repeat(13 * 1024 * 1024); // 13 MiB of JSON: fine in clear, not once sealed
  for (
    const write of [
      () => store.set(["big"], value),
      () => store.atomic().set(["big"], value).commit(),
    ]
  ) {
    await assert.rejects(write, (err: Error) => {
      assert.ok(err instanceof RangeError, String(err));
      assert.match(
        err.message,
        /^Cannot write: the value is 13,631,490 bytes as JSON and [\d,]+ bytes once encrypted \(base64 ciphertext\); values are at most 16,777,216 bytes \(16 MiB\) stored, so an encrypted store holds values up to about 12 MiB of JSON/,
      );
      return true;
    });
  }
  assert.equal(await store.get(["big"]), null);
  // Under the limit once sealed, it is stored.
  await store.set(["fits"], "x".repeat(11 * 1024 * 1024));
  assert.equal(((await store.get(["fits"]))?.value as string).length, 11 * 1024 * 1024);
});
