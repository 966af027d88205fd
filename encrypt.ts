/**
 * Encryption at rest over any store: values sealed with AES-256-GCM
 * (WebCrypto), bound to their key, with key ids for rotation (the `rekey`
 * job). The same through the config: `encrypt: { key: "${env.FLOWSTATE_KEY}" }`
 * on a store.
 *
 * @example
 * ```ts
 * import { encrypted } from "@flowstate/core/encrypt";
 * import { openStore } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const key = "0f".repeat(32); // 32 bytes: 64 hex digits or base64
 * await using store = await encrypted(await openStore({ plugin: "memory" }), { key });
 * await store.set(["a"], { secret: 1 });
 * assert.deepEqual((await store.get(["a"]))?.value, { secret: 1 });
 * ```
 *
 * @module
 */
export {
  encrypted,
  type EncryptedStore,
  type EncryptionKeyMaterial,
  type EncryptOptions,
  type ParsedEncryptOptions,
  parseEncryptOptions,
  SEALED_FIELD,
} from "./src/wrappers/encrypt.ts";
export { DecryptionError } from "./src/errors.ts";
