/**
 * The records' listings of flows and versions with the archive in them: a
 * runtime's records (`rt.records()`) read the archive that the `archive` job
 * writes under `<home>/archive/` too, through the runtime's one
 * {@linkcode ArchiveReader} (which keeps what it read of the indexes), so
 * that a flow whose runs and versions were all archived is still listed,
 * and so is a version the retention job deleted that the archive keeps.
 * Archived entries are marked (`archived`). Internal to `src/records/`.
 *
 * @module
 */
import type { WarningHandler } from "../log.ts";
import type { StoreCorruptError } from "../errors.ts";
import type { ArchiveReader } from "./_archive_read.ts";
import type { FlowSummary, FlowVersion } from "./flow_version.ts";
import { lastRunAt } from "./_versions.ts";

/** What a runtime's records read of the archive: its reader, and where warnings go. */
export interface RecordsArchive {
  /** The runtime's archive reader (loaded when a listing first reads the archive). */
  reader: () => Promise<ArchiveReader>;
  /** Gets a warning (`ARCHIVE_DAMAGED`) for a damaged archive file, whose entries are left out. */
  onWarning?: WarningHandler;
}

/** A flow version in a listing: marked `archived`, with its `archive` file, when read from the archive. */
export type ListedFlowVersion = FlowVersion & { archived?: true; archive?: string };

/** A damaged archive file fails no listing: a warning saying which file, and what is left out. */
function warnDamaged(archive: RecordsArchive, left: string): (err: StoreCorruptError) => void {
  return (err) =>
    archive.onWarning?.({ code: "ARCHIVE_DAMAGED", message: `${err.message} (${left})` });
}

/**
 * `recorded` (the records store's flows) with the archive's: a flow's last
 * run is its archived one when that is newer, and a flow known only from the
 * archive is added (`archived: true`); in id order.
 */
export async function withArchivedFlows(
  recorded: FlowSummary[],
  archive: RecordsArchive,
): Promise<FlowSummary[]> {
  const archived = await (await archive.reader()).flows(
    warnDamaged(archive, "the flows and last runs listed leave its runs out"),
  );
  const out = recorded.map((f) => {
    const old = archived.get(f.id)?.newest;
    archived.delete(f.id);
    return old !== undefined && (f.lastRunAt === null || old.startedAt > f.lastRunAt)
      ? { ...f, lastRunAt: lastRunAt(old), lastStatus: old.status, lastRunArchive: old.archive }
      : f;
  });
  for (const [id, { newest, versions }] of archived) {
    out.push({
      id,
      head: newest.flowVersion,
      versions: versions.size,
      prunedVersions: 0,
      lastRunAt: lastRunAt(newest),
      lastStatus: newest.status,
      description: null,
      archived: true,
      lastRunArchive: newest.archive,
    });
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * `recorded` (the records store's versions of `flowId`, newest first) with
 * the versions the archive keeps that the records store does not
 * (`archived: true`, with their `archive` file), newest created first.
 */
export async function withArchivedVersions(
  flowId: string,
  recorded: FlowVersion[],
  archive: RecordsArchive,
): Promise<ListedFlowVersion[]> {
  const have = new Set(recorded.map((v) => v.hash));
  const out: ListedFlowVersion[] = [...recorded];
  for (
    const { version, archive: file } of await (await archive.reader()).listVersions(
      flowId,
      warnDamaged(archive, "the versions listed leave its versions out"),
      have,
    )
  ) {
    if (have.has(version.hash)) continue;
    out.push({ ...version, archived: true, archive: file });
  }
  if (out.length === recorded.length) return recorded;
  // By creation time: a records store made anew numbers its versions from 1 again.
  return out.sort((a, b) => b.createdAt - a.createdAt || b.seq - a.seq);
}
