/**
 * What a failed file operation means, for the file-backed plugins (jsonfile,
 * sqlite): whether it says the place cannot be written at all (a read-only
 * file system, no permission), and how to say what happened to a person.
 *
 * @module
 */
import { messageOf } from "../errors.ts";

/** The OS error code of `err` (`"ENOSPC"`, `"EROFS"`…), if it carries one. */
function codeOf(err: unknown): string | undefined {
  const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
  return typeof code === "string" ? code : undefined;
}

/**
 * Why `err` (or an error in its `cause` chain) says this process can never
 * write the place it was writing, as a phrase ("is on a read-only file
 * system"), or `undefined` when it does not say so.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { notWritableReason } from "./fs_errors.ts";
 *
 * const erofs = Object.assign(new Error("Read-only file system (os error 30)"), { code: "EROFS" });
 * assert.equal(notWritableReason(erofs), "is on a read-only file system");
 * assert.equal(notWritableReason(new Error("wrapped", { cause: erofs })), "is on a read-only file system");
 * assert.equal(notWritableReason(new Error("other")), undefined);
 * ```
 */
export function notWritableReason(err: unknown): string | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const code = codeOf(e);
    if (code === "EROFS" || /os error 30\b/.test(e.message)) return "is on a read-only file system";
    if (e instanceof Deno.errors.PermissionDenied || code === "EACCES" || code === "EPERM") {
      return "is not writable by this process (permission denied)";
    }
  }
  return undefined;
}

/**
 * A failed file operation's error, explained for a person: the OS's message,
 * with what it means and what to do when it is a full disk, a used-up quota,
 * an I/O error or a permission problem.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { explainFsError } from "./fs_errors.ts";
 *
 * const full = Object.assign(new Error("No space left on device (os error 28)"), { code: "ENOSPC" });
 * assert.match(explainFsError(full), /^the disk is full \(No space left on device/);
 * assert.equal(explainFsError(new Error("odd")), "odd");
 * ```
 */
export function explainFsError(err: unknown): string {
  const code = codeOf(err);
  const message = messageOf(err);
  if (code === "ENOSPC" || /os error 28\b|disk is full/i.test(message)) {
    return `the disk is full (${message}): free some space and try again`;
  }
  if (code === "EDQUOT") return `the disk quota is used up (${message}): raise it or free space`;
  if (code === "EIO" || /os error 5\b|disk I\/O error/i.test(message)) {
    return `the disk reported an I/O error (${message}): check the disk and the kernel log`;
  }
  if (code === "EACCES" || code === "EPERM" || err instanceof Deno.errors.PermissionDenied) {
    return `permission denied (${message}): check the owner and mode of the directory`;
  }
  return message;
}
