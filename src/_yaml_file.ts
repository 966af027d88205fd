/**
 * Reading a YAML file's text (size limit, UTF-8 check) without loading the
 * YAML parser: the run path reads flow files here and parses them only when
 * its cache of validated flows has no entry for their bytes. Re-exported by
 * `yaml_source.ts`.
 *
 * @module
 */
import { envSetting } from "./_env.ts";
import { SIZE_UNITS } from "./_size_units.ts";

/**
 * The deepest nesting of mappings and lists a YAML text may have. Deeper
 * text is a syntax error at the first collection past it, found before the
 * text is turned into data (whose readers recurse and would exhaust the
 * stack): far deeper than any flow or config needs.
 */
export const MAX_YAML_DEPTH = 256;

/**
 * The most aliases (`*name`) a YAML text may hold. More is a syntax error at
 * the first alias past it, found by counting yaml's tokens (linear) before the
 * text is composed: yaml resolves each alias by walking the document, so a
 * file of many thousand aliases (an alias bomb) would otherwise take tens of
 * seconds to be refused. Far more than any flow or config writes.
 */
export const MAX_YAML_ALIASES = 1000;

/** The largest flow or config file read, unless {@linkcode YAML_SIZE_ENV} says otherwise: 4 MiB. */
export const DEFAULT_MAX_YAML_BYTES: number = 4 * 1024 * 1024;

/**
 * The environment variable that sets the largest flow or config file read:
 * bytes (`8388608`) or with a unit (`8MiB`, `512KiB`, `1GiB`; `KB`/`MB`/`GB` are
 * powers of 1000).
 */
export const YAML_SIZE_ENV = "FLOWSTATE_MAX_YAML_SIZE";

/** What {@linkcode readYamlFile} could not read, with a position for bad bytes. */
export interface YamlFileProblem {
  /** What is wrong and how to fix it. */
  message: string;
  /** 1-based line of the first bad byte, for text that is not UTF-8. */
  line?: number;
  /** 1-based column (in UTF-16 units, as YAML positions are) of the first bad byte. */
  column?: number;
}

/**
 * The largest YAML file to read: {@linkcode YAML_SIZE_ENV} when set (bytes,
 * or a number with `KiB`, `MiB`, `GiB`, `KB`, `MB` or `GB`), else
 * {@linkcode DEFAULT_MAX_YAML_BYTES}; a problem when the variable is not a size.
 * Without permission to read the variable, the default.
 *
 * @example
 * ```ts
 * import { yamlSizeLimit } from "./_yaml_file.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(yamlSizeLimit({ FLOWSTATE_MAX_YAML_SIZE: "8MiB" }), { bytes: 8 * 1024 * 1024 });
 * assert.deepEqual(yamlSizeLimit({}), { bytes: 4 * 1024 * 1024 });
 * assert.ok("problem" in yamlSizeLimit({ FLOWSTATE_MAX_YAML_SIZE: "big" }));
 * ```
 */
export function yamlSizeLimit(
  env?: Readonly<Record<string, string | undefined>>,
): { bytes: number } | { problem: YamlFileProblem } {
  const raw = envSetting(YAML_SIZE_ENV, env);
  if (raw === undefined || raw.trim() === "") return { bytes: DEFAULT_MAX_YAML_BYTES };
  const match = /^\s*(\d+(?:\.\d+)?)\s*(|b|kib|mib|gib|kb|mb|gb)\s*$/i.exec(raw);
  const unit = match?.[2].toLowerCase() ?? "";
  const bytes = match === null ? NaN : Math.floor(Number(match[1]) * (SIZE_UNITS[unit] ?? NaN));
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    return {
      problem: {
        message: `${YAML_SIZE_ENV}=${JSON.stringify(raw)} is not a size; write bytes ` +
          `(${YAML_SIZE_ENV}=8388608) or with a unit (${YAML_SIZE_ENV}=8MiB)`,
      },
    };
  }
  return { bytes };
}

/** A size for people: `4 MiB`, `512 KiB`, `900 bytes`. */
function formatSize(bytes: number): string {
  for (const [unit, size] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (bytes >= size) return `${Number((bytes / size).toFixed(1))} ${unit}`;
  }
  return `${bytes} bytes`;
}

/**
 * Read a YAML file (a flow or a config) as text, refusing before it is parsed
 * a file over the size limit ({@linkcode yamlSizeLimit}, or `maxBytes`) and
 * text that is not UTF-8 (with the line and column of the first bad byte).
 * A leading byte order mark is dropped. File-system errors (not found, a
 * directory, permissions) are thrown as they are.
 *
 * @example
 * ```ts
 * import { readYamlFile } from "./_yaml_file.ts";
 * import assert from "node:assert/strict";
 * const path = await Deno.makeTempFile({ suffix: ".yaml" });
 * await Deno.writeFile(path, new Uint8Array([0x61, 0x3a, 0x20, 0xff, 0x0a])); // "a: \xff"
 * const read = await readYamlFile(path);
 * await Deno.remove(path);
 * assert.ok("problem" in read);
 * assert.equal(read.problem.line, 1);
 * assert.equal(read.problem.column, 4);
 * ```
 */
export async function readYamlFile(
  path: string,
  options: { maxBytes?: number } = {},
): Promise<{ text: string } | { problem: YamlFileProblem }> {
  let limit = options.maxBytes;
  if (limit === undefined) {
    const found = yamlSizeLimit();
    if ("problem" in found) return found;
    limit = found.bytes;
  }
  const tooBig = (size: number) => ({
    problem: {
      message:
        `the file is ${formatSize(size)}${
          size < 1024 ? "" : ` (${size.toLocaleString("en-US")} bytes)`
        }, over ` +
        `the ${formatSize(limit)} limit for flow and config files; make it smaller, or raise ` +
        `the limit with ${YAML_SIZE_ENV} (for example ${YAML_SIZE_ENV}=${
          Math.ceil((size * 2) / 1024 ** 2)
        }MiB)`,
    },
  });
  using file = await Deno.open(path);
  const { size, isDirectory, isFile } = await file.stat();
  if (isDirectory) throw new Deno.errors.IsADirectory(`${path} is a directory`);
  if (size > limit) return tooBig(size);
  // Read at most one byte past the limit: a file that grew since is refused too. A pipe
  // (`run <(…)`, a FIFO) or a device has no size: it is read to its end, in chunks.
  let bytes = new Uint8Array(isFile ? Math.min(size, limit) + 1 : Math.min(limit + 1, 64 * 1024));
  let length = 0;
  for (;;) {
    if (length === bytes.length) {
      if (isFile || length > limit) break;
      const grown = new Uint8Array(Math.min(limit + 1, bytes.length * 2));
      grown.set(bytes);
      bytes = grown;
    }
    const n = await file.read(bytes.subarray(length));
    if (n === null) break;
    length += n;
  }
  if (length > limit) return tooBig(length);
  const data = bytes.subarray(0, length);
  try {
    return { text: new TextDecoder("utf-8", { fatal: true }).decode(data) };
  } catch {
    return { problem: utf8Problem(data) };
  }
}

/** Where the first byte is that makes `bytes` not UTF-8, and what it is. */
function utf8Problem(bytes: Uint8Array): YamlFileProblem {
  // Notepad's "Unicode" is UTF-16: say so, rather than point at the byte order mark's 0xFF.
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    return {
      message: "the file is UTF-16 text (it starts with a UTF-16 byte order mark), not UTF-8: " +
        "save it as UTF-8",
      line: 1,
      column: 1,
    };
  }
  const bad = firstInvalidUtf8(bytes);
  // (lastIndexOf with a negative start would search from the end: a bad first byte is on line 1)
  const lineStart = bad === 0 ? 0 : bytes.lastIndexOf(0x0a, bad - 1) + 1;
  let line = 1;
  for (let i = 0; i < lineStart; i++) if (bytes[i] === 0x0a) line++;
  const before = new TextDecoder().decode(bytes.subarray(lineStart, bad));
  const hex = bytes[bad]?.toString(16).toUpperCase().padStart(2, "0");
  return {
    message: `the file is not UTF-8 text: byte 0x${hex ?? "??"} at offset ${bad} does not ` +
      "fit a UTF-8 character; save the file as UTF-8",
    line,
    column: before.length + 1,
  };
}

/** The offset of the first byte that breaks UTF-8 (the start of a bad or cut-off sequence). */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    let need: number;
    let min: number;
    if (b < 0x80) {
      i++;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) [need, min] = [1, 0x80];
    else if (b >= 0xe0 && b <= 0xef) [need, min] = [2, 0x800];
    else if (b >= 0xf0 && b <= 0xf4) [need, min] = [3, 0x10000];
    else return i;
    if (i + need >= bytes.length) return i; // cut off at the end
    let cp = b & (0xff >> (need + 2));
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if ((c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return bytes.length;
}
