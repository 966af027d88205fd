/**
 * Flow versions, for `Records`: saving a definition once by its content hash,
 * moving the head, and reading versions, heads and the list of flows (keys
 * `versions` and `heads` of the layout table in `records.ts`). Internal to
 * `src/records/`.
 *
 * @module
 */
import { ConflictError } from "../errors.ts";
import type { FlowDefinition } from "../flow/types.ts";
import type { AtomicOperation, Entry, Key, Store } from "../store/types.ts";
import { checkFlowId } from "./_checks.ts";
import { type RecordsContext, RETRY, withRetry } from "./_context.ts";
import {
  type FlowSummary,
  type FlowVersion,
  hashFlowDefinition,
  knownFlowHash,
} from "./flow_version.ts";
import { runStartTime, type RunSummary } from "./types.ts";

/** The value under `P, "heads", flowId`: the current version and what `listFlows` shows. */
export interface HeadRecord {
  hash: string;
  /** Versions ever created: the newest one's `seq`. */
  versions: number;
  /** Versions the retention job deleted (absent: none). */
  pruned?: number;
  description: string | null;
  updatedAt: number;
}

/**
 * The property of a stored version that marks it as being pruned (the time
 * it was marked; see `_prune_versions.ts`): hidden from readers, and removed
 * by `saveVersion`, which rewrites such a version before using it.
 */
export const PRUNING_FIELD = "@pruning";

/** A version as stored: with the pruning mark, while it is being pruned. */
export type StoredVersion = FlowVersion & { [PRUNING_FIELD]?: number };

/** A stored version without the pruning mark. */
export function withoutMark(version: StoredVersion): FlowVersion {
  if (!Object.hasOwn(version, PRUNING_FIELD)) return version;
  const { [PRUNING_FIELD]: _, ...rest } = version;
  return rest;
}

/**
 * The store version of each flow version's entry as this process last saw
 * it unmarked (saving it), per store object: a run's start (or enqueue)
 * checks it in its commit, so that the start fails, rather than refer to a
 * version that retention deleted meanwhile (see `_prune_versions.ts`).
 */
const seenVersions = new WeakMap<Store, Map<string, string>>();
/** At most this many entries are remembered per store; then the oldest go. */
const MAX_SEEN = 10_000;
/** What {@linkcode seenVersions} holds for a version a commit found changed or deleted. */
const GONE = "";

function seenOf(store: Store): Map<string, string> {
  let seen = seenVersions.get(store);
  if (seen === undefined) seenVersions.set(store, seen = new Map());
  return seen;
}

function remember(store: Store, flowId: string, hash: string, version: string): void {
  const seen = seenOf(store);
  const id = `${flowId}\u0000${hash}`;
  seen.delete(id);
  if (seen.size >= MAX_SEEN) seen.delete(seen.keys().next().value!);
  seen.set(id, version);
}

/**
 * A run referring to a flow version whose entry changed since it was saved
 * (retention deleted it, or is deleting it) could not be started or
 * enqueued: save the version again and retry. Internal: the runtime does so;
 * for other callers it is a `ConflictError` like any other.
 */
export class FlowVersionGoneError extends ConflictError {
  /** The flow. */
  readonly flowId: string;
  /** The version's hash. */
  readonly hash: string;
  /** Create the error. */
  constructor(what: string, flowId: string, hash: string) {
    super(
      `${what}: its flow version ${hash} of "${flowId}" was pruned meanwhile; save it again (saveVersion) and retry`,
    );
    this.name = "FlowVersionGoneError";
    this.flowId = flowId;
    this.hash = hash;
  }
}

/**
 * Guard a commit that records a run of `flowId` at version `hash` (a start,
 * an enqueue): it checks the version's entry as this process saw it saved,
 * or as read now (a version this process did not save; one being pruned
 * throws a {@linkcode FlowVersionGoneError} at once). A version without a
 * stored entry (a job's `"job"`) is not guarded. Resolves the guarded key, to
 * tell a failed commit's cause with {@linkcode versionGone}.
 */
export async function guardVersion(
  ctx: RecordsContext,
  op: AtomicOperation,
  flowId: string,
  hash: string,
  what: string,
): Promise<Key | null> {
  const key = ctx.layout.key("versions", flowId, hash);
  let version = seenOf(ctx.store).get(`${flowId}\u0000${hash}`);
  // Found gone by an earlier commit of this process, and not saved since.
  if (version === GONE) throw new FlowVersionGoneError(what, flowId, hash);
  if (version === undefined) {
    const entry = await ctx.store.get<StoredVersion>(key);
    if (entry === null) return null;
    // Being pruned: saving it again takes the mark off (and fails the deletion's commit).
    if (Object.hasOwn(entry.value, PRUNING_FIELD)) {
      throw new FlowVersionGoneError(what, flowId, hash);
    }
    version = entry.version;
  }
  op.check(key, version);
  return key;
}

/**
 * Whether a commit guarded by {@linkcode guardVersion} failed on the version
 * (it is remembered as gone then: later guards fail at once until it is
 * saved again).
 */
export function versionGone(
  ctx: RecordsContext,
  key: Key | null,
  conflicts: readonly Key[],
): boolean {
  if (key === null) return false;
  const gone = conflicts.some((k) => k.length === key.length && k.every((p, i) => p === key[i]));
  if (gone) remember(ctx.store, key[key.length - 2], key[key.length - 1], GONE);
  return gone;
}

/** `Records.saveVersion()`: store a definition once by its hash and make it the head. */
export async function saveVersion(
  ctx: RecordsContext,
  definition: FlowDefinition,
  source?: string,
): Promise<{ hash: string; parent: string | null; created: boolean }> {
  const what = `Cannot save flow version of ${JSON.stringify(definition?.id)}`;
  if (typeof definition !== "object" || definition === null || Array.isArray(definition)) {
    throw new TypeError(`${what}: the definition must be an object`);
  }
  checkFlowId(definition.id, what);
  if (source !== undefined && typeof source !== "string") {
    throw new TypeError(`${what}: source must be a string when given`);
  }
  const { store, clock, layout } = ctx;
  const flowId = definition.id;
  const hash = knownFlowHash(definition) ?? await hashFlowDefinition(definition);
  const headKey = layout.key("heads", flowId);
  const versionKey = layout.key("versions", flowId, hash);
  const description = typeof definition.description === "string" ? definition.description : null;
  return await withRetry(ctx.retry, what, async () => {
    const [head, existing] = await store.getMany<HeadRecord | StoredVersion>([
      headKey,
      versionKey,
    ]) as [Entry<HeadRecord> | null, Entry<StoredVersion> | null];
    const now = clock.now();
    const pruned = head?.value.pruned === undefined ? {} : { pruned: head.value.pruned };
    if (existing !== null) {
      const value = { hash, parent: existing.value.parent, created: false };
      // Marked by retention, which is deleting it: written again without the mark (which fails
      // its deletion's commit), so that a run of it never refers to a deleted version.
      const marked = Object.hasOwn(existing.value, PRUNING_FIELD);
      if (head?.value.hash === hash && !marked) {
        remember(store, flowId, hash, existing.version);
        return value;
      }
      const op = store.atomic().check(versionKey, existing.version);
      if (marked) op.set(versionKey, withoutMark(existing.value));
      if (head?.value.hash !== hash) {
        const moved: HeadRecord = {
          hash,
          versions: head?.value.versions ?? existing.value.seq,
          ...pruned,
          description,
          updatedAt: now,
        };
        op.check(headKey, head?.version ?? null).set(headKey, moved);
      }
      const result = await op.commit();
      if (!result.ok) return RETRY;
      remember(store, flowId, hash, marked ? result.version : existing.version);
      return value;
    }
    const parent = head?.value.hash ?? null;
    const seq = (head?.value.versions ?? 0) + 1;
    const version: FlowVersion = { flowId, hash, parent, seq, createdAt: now, definition };
    if (source !== undefined) version.source = source;
    const newHead: HeadRecord = { hash, versions: seq, ...pruned, description, updatedAt: now };
    const result = await store.atomic()
      .check(headKey, head?.version ?? null)
      .check(versionKey, null)
      .set(versionKey, version)
      .set(headKey, newHead)
      .commit();
    if (!result.ok) return RETRY;
    remember(store, flowId, hash, result.version);
    return { hash, parent, created: true };
  });
}

/** `Records.getVersion()`: one version of a flow, or `null`. */
export async function getVersion(
  ctx: RecordsContext,
  flowId: string,
  hash: string,
): Promise<FlowVersion | null> {
  checkFlowId(flowId, "Cannot get flow version");
  if (typeof hash !== "string" || hash === "") {
    throw new TypeError(
      `Cannot get flow version of "${flowId}": hash must be a non-empty string`,
    );
  }
  const entry = await ctx.store.get<StoredVersion>(ctx.layout.key("versions", flowId, hash));
  return entry === null ? null : withoutMark(entry.value);
}

/** `Records.getHead()`: the flow's current version, or `null`. */
export async function getHead(ctx: RecordsContext, flowId: string): Promise<FlowVersion | null> {
  checkFlowId(flowId, "Cannot get flow head");
  const head = await ctx.store.get<HeadRecord>(ctx.layout.key("heads", flowId));
  return head === null ? null : await getVersion(ctx, flowId, head.value.hash);
}

/** `Records.listVersions()`: every version of a flow, newest created first. */
export async function listVersions(ctx: RecordsContext, flowId: string): Promise<FlowVersion[]> {
  checkFlowId(flowId, "Cannot list flow versions");
  const versions: FlowVersion[] = [];
  for await (
    const e of ctx.store.list<StoredVersion>({ prefix: ctx.layout.key("versions", flowId) })
  ) {
    versions.push(withoutMark(e.value));
  }
  return versions.sort((a, b) => b.seq - a.seq);
}

/**
 * A flow's `lastRunAt` from its newest run: when it really started (see
 * `runStartTime`), or, when it has not, its `startedAt` (a queued run's enqueue time).
 */
export function lastRunAt(run: RunSummary): number {
  return runStartTime(run) ?? run.startedAt;
}

/** `Records.listFlows()`: every flow with a head, in id order, with its newest run. */
export async function listFlows(ctx: RecordsContext): Promise<FlowSummary[]> {
  const { store, layout } = ctx;
  const heads: Entry<HeadRecord>[] = [];
  for await (const e of store.list<HeadRecord>({ prefix: layout.key("heads") })) {
    heads.push(e);
  }
  return await Promise.all(heads.map(async ({ key, value }) => {
    const id = key[key.length - 1];
    let latest: RunSummary | null = null;
    for await (
      const e of store.list<RunSummary>({
        prefix: layout.byFlow(id),
        reverse: true,
        limit: 1,
      })
    ) latest = e.value;
    return {
      id,
      head: value.hash,
      versions: value.versions,
      prunedVersions: value.pruned ?? 0,
      // When it really started (a queued run's last attempt's claim), else when it was enqueued.
      lastRunAt: latest === null ? null : lastRunAt(latest),
      lastStatus: latest?.status ?? null,
      description: value.description,
    };
  }));
}
