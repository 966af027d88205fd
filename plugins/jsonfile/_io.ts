/**
 * The file operations a jsonfile commit performs, in one object, so that the
 * fault tests (tests/faults/fs_faults_test.ts) can make one of them fail the
 * way a disk does (ENOSPC, EACCES, EIO) and check what the store does next.
 * Internal: not exported from the plugin, and nothing but tests replaces
 * these. Each property is looked up at the moment of the call.
 *
 * @module
 */

/** The operations of one commit, in the order a commit uses them. */
export interface CommitIo {
  /** Create the temp file (it must not exist). */
  createTemp(path: string): Promise<Deno.FsFile>;
  /** Write some of `bytes` to `file`; resolves how many were written. */
  write(file: Deno.FsFile, bytes: Uint8Array): Promise<number>;
  /** Flush `file`'s data to the disk. */
  sync(file: Deno.FsFile): Promise<void>;
  /** Rename the temp file over the store file. */
  rename(from: string, to: string): Promise<void>;
  /** Flush the directory (a handle on it), so that the rename survives a power loss. */
  syncDir(dir: Deno.FsFile): Promise<void>;
}

/** The real operations. */
export const realIo: Readonly<CommitIo> = Object.freeze({
  createTemp: (path: string) => Deno.open(path, { write: true, createNew: true }),
  write: (file: Deno.FsFile, bytes: Uint8Array) => file.write(bytes),
  sync: (file: Deno.FsFile) => file.sync(),
  rename: (from: string, to: string) => Deno.rename(from, to),
  syncDir: (dir: Deno.FsFile) => dir.sync(),
});

/** The operations commits use: {@linkcode realIo}, unless a test has replaced one. */
export const io: CommitIo = { ...realIo };
