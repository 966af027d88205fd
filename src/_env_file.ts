/**
 * `NAME_FILE`: a variable's value read from a file, the convention of Docker
 * secrets and Kubernetes secret volumes (`DB_PASS_FILE=/run/secrets/db_pass`).
 *
 * When `NAME` is unset and `NAME_FILE` is set, the value of `NAME` is the
 * content of that file, with one trailing newline (`\n` or `\r\n`) removed.
 * Both set is an error (which one was meant?), as is a file that is missing,
 * unreadable, not a regular file, larger than {@linkcode ENV_FILE_MAX_BYTES}
 * or not UTF-8.
 *
 * @module
 */

/**
 * The largest file a `NAME_FILE` variable may name: 64 KiB.
 *
 * @example
 * ```ts
 * import { ENV_FILE_MAX_BYTES } from "./_env_file.ts";
 * import assert from "node:assert/strict";
 * assert.equal(ENV_FILE_MAX_BYTES, 65536);
 * ```
 */
export const ENV_FILE_MAX_BYTES = 64 * 1024;

/**
 * The variable that names the file of `name`: `name` + `_FILE`.
 *
 * @example
 * ```ts
 * import { fileVariableOf } from "./_env_file.ts";
 * import assert from "node:assert/strict";
 * assert.equal(fileVariableOf("DB_PASS"), "DB_PASS_FILE");
 * ```
 */
export function fileVariableOf(name: string): string {
  return `${name}_FILE`;
}

/**
 * A `NAME_FILE` that cannot give `NAME` its value: both are set, or its file
 * cannot be read as a value. Its message names the variable, the path and
 * what is wrong.
 *
 * @example
 * ```ts
 * import { EnvFileError, envOrFile } from "./_env_file.ts";
 * import assert from "node:assert/strict";
 * const env: Record<string, string> = { A: "1", A_FILE: "/run/secrets/a" };
 * assert.throws(() => envOrFile("A", (n) => env[n]), EnvFileError);
 * ```
 */
export class EnvFileError extends Error {
  /** The variable whose value was to be read (`NAME`). */
  readonly variable: string;

  /** An error about `variable` (`NAME`), saying `message`. */
  constructor(variable: string, message: string) {
    super(message);
    this.name = "EnvFileError";
    this.variable = variable;
  }
}

/**
 * The value of the variable `name` as `get` reads it, or, when it is unset and
 * `<name>_FILE` is set (and not empty), the content of the file that one names
 * (one trailing newline removed); `undefined` when neither is set. `get` may throw for
 * `name` (no permission: the caller's message); a `<name>_FILE` this process
 * may not read counts as unset. Throws {@linkcode EnvFileError} when both are
 * set or the file cannot be read as a value.
 *
 * @example
 * ```ts
 * import { envOrFile } from "./_env_file.ts";
 * import assert from "node:assert/strict";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/pass`, "hunter22\n");
 * const env: Record<string, string> = { DB_PASS_FILE: `${dir}/pass`, USER: "me" };
 * assert.equal(envOrFile("DB_PASS", (n) => env[n]), "hunter22");
 * assert.equal(envOrFile("USER", (n) => env[n]), "me");
 * assert.equal(envOrFile("NOPE", (n) => env[n]), undefined);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function envOrFile(
  name: string,
  get: (name: string) => string | undefined,
): string | undefined {
  const value = get(name);
  const fileVariable = fileVariableOf(name);
  let path: string | undefined;
  try {
    path = get(fileVariable);
  } catch {
    path = undefined; // this process may not read it: as if unset
  }
  // Empty is unset, as the postgres and mysql images take it.
  if (path === undefined || path === "") return value;
  if (value !== undefined) {
    throw new EnvFileError(
      name,
      `both ${name} and ${fileVariable} are set: unset one (${fileVariable} names a file whose content is the value of ${name})`,
    );
  }
  return readValueFile(name, fileVariable, path);
}

function readValueFile(name: string, fileVariable: string, path: string): string {
  const fail = (what: string) =>
    new EnvFileError(
      name,
      `${fileVariable}=${path}: ${what} (the value of ${name} is read from it)`,
    );
  let bytes: Uint8Array;
  try {
    const info = Deno.statSync(path);
    if (!info.isFile) {
      throw fail(`not a regular file (a ${info.isDirectory ? "folder" : "special file"})`);
    }
    if (info.size > ENV_FILE_MAX_BYTES) {
      throw fail(
        `the file is ${info.size} bytes, over the limit of ${ENV_FILE_MAX_BYTES} (64 KiB)`,
      );
    }
    bytes = Deno.readFileSync(path);
  } catch (err) {
    if (err instanceof EnvFileError) throw err;
    throw fail(fileProblem(err, path));
  }
  if (bytes.length > ENV_FILE_MAX_BYTES) {
    throw fail(`the file is over the limit of ${ENV_FILE_MAX_BYTES} bytes (64 KiB)`);
  }
  let text: string;
  try {
    // A byte order mark (Notepad's "UTF-8 with BOM") is never part of a
    // value: kept, it would make a password that fails with no visible cause.
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw fail("the file is not UTF-8 text");
  }
  return text.endsWith("\r\n") ? text.slice(0, -2) : text.endsWith("\n") ? text.slice(0, -1) : text;
}

/** What a failed stat or read of `path` says. */
function fileProblem(err: unknown, path: string): string {
  if (err instanceof Deno.errors.NotFound) return "the file does not exist";
  if (err instanceof Error && (err.name === "NotCapable" || err.name === "PermissionDenied")) {
    return err.name === "NotCapable"
      ? `this process may not read it; run with --allow-read=${path} (or --allow-read)`
      : "the file cannot be read (permission denied)";
  }
  return `the file cannot be read: ${err instanceof Error ? err.message : String(err)}`;
}
