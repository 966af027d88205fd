/**
 * Archived runs over HTTP: the routes that take a run id fall back to the
 * archive (`<home>/archive/`, written by the `archive` job) when the records
 * store no longer holds the run, through one {@linkcode ArchiveReader} per
 * runtime, so that the archive indexes are read once and a run asked for
 * again (its page, its nodes, its changes, its definition) is not
 * decompressed again. An archived run is read-only: it ended before it was
 * archived, so cancelling it is a 409, and it is never put back in the
 * records store (the archive job would delete it again as already archived,
 * losing what was added).
 *
 * @module
 */
import type { ArchivedRun } from "../records/_archive_read.ts";
import { archiveReaderOf } from "../../jobs/_last_runs.ts";
import type { Runtime } from "../runtime.ts";

export { archiveReaderOf };

/** The archived run `id` under `runtime`'s home, or `null` when no archive holds it. */
export function archivedRun(runtime: Runtime, id: string): Promise<ArchivedRun | null> {
  return archiveReaderOf(runtime).read(id);
}

/** What an archived run's answers add: `archived: true` and the archive file's name. */
export function archivedMark(archived: ArchivedRun | null): { archived?: true; archive?: string } {
  return archived === null ? {} : { archived: true, archive: archived.archive };
}
