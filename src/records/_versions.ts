/**
 * Flow versions, for `Records`: saving a definition once by its content hash,
 * moving the head, and reading versions, heads and the list of flows (keys
 * `versions` and `heads` of the layout table in `records.ts`). Internal to
 * `src/records/`.
 *
 * @module
 */
import type { FlowDefinition } from "../flow/types.ts";
import type { Entry } from "../store/types.ts";
import { checkFlowId } from "./_checks.ts";
import { type RecordsContext, RETRY, withRetry } from "./_context.ts";
import {
  type FlowSummary,
  type FlowVersion,
  hashFlowDefinition,
  knownFlowHash,
} from "./flow_version.ts";
import type { RunSummary } from "./types.ts";

/** The value under `P, "heads", flowId`: the current version and what `listFlows` shows. */
interface HeadRecord {
  hash: string;
  versions: number;
  description: string | null;
  updatedAt: number;
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
    const [head, existing] = await store.getMany<HeadRecord | FlowVersion>([
      headKey,
      versionKey,
    ]) as [Entry<HeadRecord> | null, Entry<FlowVersion> | null];
    const now = clock.now();
    if (existing !== null) {
      const value = { hash, parent: existing.value.parent, created: false };
      if (head?.value.hash === hash) return value;
      const moved: HeadRecord = {
        hash,
        versions: head?.value.versions ?? existing.value.seq,
        description,
        updatedAt: now,
      };
      const result = await store.atomic()
        .check(headKey, head?.version ?? null)
        .check(versionKey, existing.version)
        .set(headKey, moved)
        .commit();
      return result.ok ? value : RETRY;
    }
    const parent = head?.value.hash ?? null;
    const seq = (head?.value.versions ?? 0) + 1;
    const version: FlowVersion = { flowId, hash, parent, seq, createdAt: now, definition };
    if (source !== undefined) version.source = source;
    const newHead: HeadRecord = { hash, versions: seq, description, updatedAt: now };
    const result = await store.atomic()
      .check(headKey, head?.version ?? null)
      .check(versionKey, null)
      .set(versionKey, version)
      .set(headKey, newHead)
      .commit();
    return result.ok ? { hash, parent, created: true } : RETRY;
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
  return (await ctx.store.get<FlowVersion>(ctx.layout.key("versions", flowId, hash)))?.value ??
    null;
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
    const e of ctx.store.list<FlowVersion>({ prefix: ctx.layout.key("versions", flowId) })
  ) {
    versions.push(e.value);
  }
  return versions.sort((a, b) => b.seq - a.seq);
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
      lastRunAt: latest?.startedAt ?? null,
      lastStatus: latest?.status ?? null,
      description: value.description,
    };
  }));
}
