/**
 * For plugin authors: the driver contract a storage plugin implements, and
 * the helpers it needs. A plugin is a module whose default export is
 * `definePlugin({ name, optionsSchema, open })`; `open` returns a
 * {@linkcode StoreDriver} (four methods: `get`, `list`, `commit`, `close`),
 * and the core supplies everything else. Check a plugin with the conformance
 * suite from `@flowstate/core/testing`.
 *
 * @example
 * ```ts
 * import { compareKeys, encodeKey } from "@flowstate/core/plugin";
 * import assert from "node:assert/strict";
 * assert.ok(compareKeys(["a"], ["a", "b"]) < 0);
 * assert.ok(encodeKey(["a"]).length > 0);
 * ```
 *
 * @module
 */
export type {
  ClaimRequest,
  ClearRange,
  CommitRequest,
  DriverClaimResult,
  DriverCommitResult,
  FeedCommit,
  FeedTable,
  FeedTableRange,
  FeedTemplate,
  FeedTrimRequest,
  FeedValue,
  IndexBuildEvent,
  IndexSpec,
  KeyRange,
  Mutation,
  PagedListing,
  PreparedIndexes,
  PrepareIndexesRequest,
  RawEntry,
  RawSearchHit,
  SearchRequest,
  SearchSpec,
  StoreDriver,
} from "./src/store/driver.ts";
export type { Capabilities, ClaimCompanion, Key, KeyPart, QueryPlan } from "./src/store/types.ts";
export type { NormalizedQuery } from "./src/store/query.ts";
export {
  assertKey,
  type ByteBounds,
  byteBounds,
  compareKeys,
  decodeCursor,
  decodeKey,
  encodeCursor,
  encodeKey,
  hasPrefix,
  MAX_KEY_BYTES,
  prefixUpperBound,
} from "./src/store/keys.ts";
export {
  definePlugin,
  type OptionsSchema,
  type ParsingSchema,
  type Plugin,
  type PluginContext,
  type PluginDefinition,
  redactUrl,
  requireStoreFile,
  type SchemaIssue,
  type SchemaResult,
} from "./src/plugin.ts";
export type { Clock } from "./src/clock.ts";
export {
  StoreClosedError,
  StoreCorruptError,
  type StoreCorruptReason,
  StoreMissingError,
  StoreReadOnlyError,
  StoreUnavailableError,
} from "./src/errors.ts";
