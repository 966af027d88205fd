/**
 * Path and `file:` URL helpers that behave exactly as `node:path` and
 * `node:url` do (POSIX, and Windows on Windows), without importing them:
 * the first `node:` built-in a process imports initialises Deno's Node
 * compatibility layer (13–29 ms), which `flowstate run` does not otherwise
 * need. `posix` and `win32` hold both flavours (the tests compare them with
 * `node:path`'s); the top-level functions use the one of this platform.
 *
 * @module
 */

const CHAR_DOT = 46;
const CHAR_FORWARD_SLASH = 47;
const CHAR_BACKWARD_SLASH = 92;
const CHAR_COLON = 58;

/** The process's current directory (`Deno.cwd()`). */
function cwd(): string {
  return Deno.cwd();
}

function isPosixSep(code: number): boolean {
  return code === CHAR_FORWARD_SLASH;
}

function isWinSep(code: number): boolean {
  return code === CHAR_FORWARD_SLASH || code === CHAR_BACKWARD_SLASH;
}

/** `\\?\…` and `\\.\…`: Windows' device namespaces, whose root is those four characters. */
function isDeviceNamespace(path: string): boolean {
  if (path.length <= 4 || !isWinSep(path.charCodeAt(0)) || !isWinSep(path.charCodeAt(1))) {
    return false;
  }
  if ((path[2] !== "?" && path[2] !== ".") || !isWinSep(path.charCodeAt(3))) return false;
  // Something must follow the separators, as node's UNC matching requires.
  for (let i = 4; i < path.length; i++) if (!isWinSep(path.charCodeAt(i))) return true;
  return false;
}

function isWindowsDeviceRoot(code: number): boolean {
  return (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
}

/** Resolve `.` and `..` elements in a path (node's `normalizeString`). */
function normalizeString(
  path: string,
  allowAboveRoot: boolean,
  separator: string,
  isSep: (code: number) => boolean,
): string {
  let res = "";
  let lastSegmentLength = 0;
  let lastSlash = -1;
  let dots = 0;
  let code = 0;
  for (let i = 0; i <= path.length; ++i) {
    if (i < path.length) code = path.charCodeAt(i);
    else if (isSep(code)) break;
    else code = CHAR_FORWARD_SLASH;
    if (isSep(code)) {
      if (lastSlash === i - 1 || dots === 1) {
        // NOOP
      } else if (dots === 2) {
        if (
          res.length < 2 || lastSegmentLength !== 2 ||
          res.charCodeAt(res.length - 1) !== CHAR_DOT ||
          res.charCodeAt(res.length - 2) !== CHAR_DOT
        ) {
          if (res.length > 2) {
            const lastSlashIndex = res.lastIndexOf(separator);
            if (lastSlashIndex === -1) {
              res = "";
              lastSegmentLength = 0;
            } else {
              res = res.slice(0, lastSlashIndex);
              lastSegmentLength = res.length - 1 - res.lastIndexOf(separator);
            }
            lastSlash = i;
            dots = 0;
            continue;
          } else if (res.length !== 0) {
            res = "";
            lastSegmentLength = 0;
            lastSlash = i;
            dots = 0;
            continue;
          }
        }
        if (allowAboveRoot) {
          res += res.length > 0 ? `${separator}..` : "..";
          lastSegmentLength = 2;
        }
      } else {
        if (res.length > 0) res += `${separator}${path.slice(lastSlash + 1, i)}`;
        else res = path.slice(lastSlash + 1, i);
        lastSegmentLength = i - lastSlash - 1;
      }
      lastSlash = i;
      dots = 0;
    } else if (code === CHAR_DOT && dots !== -1) {
      ++dots;
    } else {
      dots = -1;
    }
  }
  return res;
}

/** The path functions of one flavour (as `node:path`'s `posix` and `win32`). */
export interface PathFlavour {
  /** The segment separator: `/` or `\`. */
  readonly sep: string;
  /** Whether `path` is absolute. */
  isAbsolute(path: string): boolean;
  /** `.` and `..` resolved, separators collapsed. */
  normalize(path: string): string;
  /** The segments joined and normalized. */
  join(...paths: string[]): string;
  /** An absolute path: the segments resolved right to left, against the current directory. */
  resolve(...paths: string[]): string;
  /** The path from `from` to `to`. */
  relative(from: string, to: string): string;
  /** The directory part. */
  dirname(path: string): string;
  /** The last segment, without `suffix` when it ends with it. */
  basename(path: string, suffix?: string): string;
  /** A `file:` URL for a path (resolved first). */
  toFileUrl(path: string): URL;
  /** The path of a `file:` URL. */
  fromFileUrl(url: string | URL): string;
}

function basenameWith(
  path: string,
  start: number,
  isSep: (code: number) => boolean,
  suffix?: string,
): string {
  let end = -1;
  let matchedSlash = true;
  if (suffix !== undefined && suffix.length > 0 && suffix.length <= path.length) {
    if (suffix === path) return "";
    let extIdx = suffix.length - 1;
    let firstNonSlashEnd = -1;
    for (let i = path.length - 1; i >= start; --i) {
      const code = path.charCodeAt(i);
      if (isSep(code)) {
        if (!matchedSlash) {
          start = i + 1;
          break;
        }
      } else {
        if (firstNonSlashEnd === -1) {
          matchedSlash = false;
          firstNonSlashEnd = i + 1;
        }
        if (extIdx >= 0) {
          if (code === suffix.charCodeAt(extIdx)) {
            if (--extIdx === -1) end = i;
          } else {
            extIdx = -1;
            end = firstNonSlashEnd;
          }
        }
      }
    }
    if (start === end) end = firstNonSlashEnd;
    else if (end === -1) end = path.length;
    return path.slice(start, end);
  }
  for (let i = path.length - 1; i >= start; --i) {
    if (isSep(path.charCodeAt(i))) {
      if (!matchedSlash) {
        start = i + 1;
        break;
      }
    } else if (end === -1) {
      matchedSlash = false;
      end = i + 1;
    }
  }
  if (end === -1) return "";
  return path.slice(start, end);
}

function encodePathChars(path: string, windows: boolean): string {
  if (path.includes("%")) path = path.replaceAll("%", "%25");
  if (!windows && path.includes("\\")) path = path.replaceAll("\\", "%5C");
  if (path.includes("\n")) path = path.replaceAll("\n", "%0A");
  if (path.includes("\r")) path = path.replaceAll("\r", "%0D");
  if (path.includes("\t")) path = path.replaceAll("\t", "%09");
  // Deno's node:url encodes these too (the URL path setter would keep them).
  return path.replace(/[~[\]^|]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function fileUrlOf(url: string | URL): URL {
  const parsed = typeof url === "string" ? new URL(url) : url;
  if (parsed.protocol !== "file:") {
    throw new TypeError(`The URL must be of scheme file (got ${parsed.href})`);
  }
  return parsed;
}

/** POSIX paths, as `node:path`'s `posix`. */
export const posix: PathFlavour = {
  sep: "/",
  isAbsolute(path: string): boolean {
    return path.length > 0 && path.charCodeAt(0) === CHAR_FORWARD_SLASH;
  },
  normalize(path: string): string {
    if (path.length === 0) return ".";
    const isAbsolute = path.charCodeAt(0) === CHAR_FORWARD_SLASH;
    const trailingSeparator = path.charCodeAt(path.length - 1) === CHAR_FORWARD_SLASH;
    path = normalizeString(path, !isAbsolute, "/", isPosixSep);
    if (path.length === 0) {
      if (isAbsolute) return "/";
      return trailingSeparator ? "./" : ".";
    }
    if (trailingSeparator) path += "/";
    return isAbsolute ? `/${path}` : path;
  },
  join(...paths: string[]): string {
    if (paths.length === 0) return ".";
    let joined: string | undefined;
    for (const arg of paths) {
      if (typeof arg !== "string") throw new TypeError("The path must be a string");
      if (arg.length > 0) joined = joined === undefined ? arg : `${joined}/${arg}`;
    }
    return joined === undefined ? "." : posix.normalize(joined);
  },
  resolve(...paths: string[]): string {
    let resolvedPath = "";
    let resolvedAbsolute = false;
    for (let i = paths.length - 1; i >= -1 && !resolvedAbsolute; i--) {
      const path = i >= 0 ? paths[i] : cwd();
      if (typeof path !== "string") throw new TypeError("The path must be a string");
      if (path.length === 0) continue;
      resolvedPath = `${path}/${resolvedPath}`;
      resolvedAbsolute = path.charCodeAt(0) === CHAR_FORWARD_SLASH;
    }
    resolvedPath = normalizeString(resolvedPath, !resolvedAbsolute, "/", isPosixSep);
    if (resolvedAbsolute) return `/${resolvedPath}`;
    return resolvedPath.length > 0 ? resolvedPath : ".";
  },
  relative(from: string, to: string): string {
    if (from === to) return "";
    from = posix.resolve(from);
    to = posix.resolve(to);
    if (from === to) return "";
    const fromStart = 1;
    const fromEnd = from.length;
    const fromLen = fromEnd - fromStart;
    const toStart = 1;
    const toLen = to.length - toStart;
    const length = fromLen < toLen ? fromLen : toLen;
    let lastCommonSep = -1;
    let i = 0;
    for (; i < length; i++) {
      const fromCode = from.charCodeAt(fromStart + i);
      if (fromCode !== to.charCodeAt(toStart + i)) break;
      else if (fromCode === CHAR_FORWARD_SLASH) lastCommonSep = i;
    }
    if (i === length) {
      if (toLen > length) {
        if (to.charCodeAt(toStart + i) === CHAR_FORWARD_SLASH) {
          return to.slice(toStart + i + 1);
        }
        if (i === 0) return to.slice(toStart + i);
      } else if (fromLen > length) {
        if (from.charCodeAt(fromStart + i) === CHAR_FORWARD_SLASH) lastCommonSep = i;
        else if (i === 0) lastCommonSep = 0;
      }
    }
    let out = "";
    for (i = fromStart + lastCommonSep + 1; i <= fromEnd; ++i) {
      if (i === fromEnd || from.charCodeAt(i) === CHAR_FORWARD_SLASH) {
        out += out.length === 0 ? ".." : "/..";
      }
    }
    return `${out}${to.slice(toStart + lastCommonSep)}`;
  },
  dirname(path: string): string {
    if (path.length === 0) return ".";
    const hasRoot = path.charCodeAt(0) === CHAR_FORWARD_SLASH;
    let end = -1;
    let matchedSlash = true;
    for (let i = path.length - 1; i >= 1; --i) {
      if (path.charCodeAt(i) === CHAR_FORWARD_SLASH) {
        if (!matchedSlash) {
          end = i;
          break;
        }
      } else {
        matchedSlash = false;
      }
    }
    if (end === -1) return hasRoot ? "/" : ".";
    if (hasRoot && end === 1) return "//";
    return path.slice(0, end);
  },
  basename(path: string, suffix?: string): string {
    return basenameWith(path, 0, isPosixSep, suffix);
  },
  toFileUrl(path: string): URL {
    let resolved = posix.resolve(path);
    if (path.charCodeAt(path.length - 1) === CHAR_FORWARD_SLASH && !resolved.endsWith("/")) {
      resolved += "/";
    }
    const url = new URL("file:///");
    url.pathname = encodePathChars(resolved, false);
    return url;
  },
  fromFileUrl(url: string | URL): string {
    const parsed = fileUrlOf(url);
    if (parsed.hostname !== "") {
      throw new TypeError(`File URL host must be "localhost" or empty (got ${parsed.href})`);
    }
    const pathname = parsed.pathname;
    for (let n = 0; n < pathname.length; n++) {
      if (pathname[n] === "%") {
        const third = pathname.codePointAt(n + 2)! | 0x20;
        if (pathname[n + 1] === "2" && third === 102) {
          throw new TypeError(
            `File URL path must not include encoded / characters (got ${parsed.href})`,
          );
        }
      }
    }
    return decodeURIComponent(pathname);
  },
};

/** Windows paths, as `node:path`'s `win32`. */
/**
 * The root of a Windows path, as node's path.win32 reads it: the device (a
 * drive `C:`, a UNC `\\\\server\\share` or a device namespace `\\\\.`; "" for
 * none), where the rest starts, and whether the path is absolute.
 */
function winRoot(path: string): { device: string; rootEnd: number; isAbsolute: boolean } {
  const len = path.length;
  const code = path.charCodeAt(0);
  if (len === 1) {
    return isWinSep(code)
      ? { device: "", rootEnd: 1, isAbsolute: true }
      : { device: "", rootEnd: 0, isAbsolute: false };
  }
  if (isWinSep(code)) {
    if (isDeviceNamespace(path)) return { device: `\\\\${path[2]}`, rootEnd: 4, isAbsolute: true };
    if (!isWinSep(path.charCodeAt(1))) return { device: "", rootEnd: 1, isAbsolute: true };
    let j = 2;
    let last = j;
    while (j < len && !isWinSep(path.charCodeAt(j))) j++;
    if (j < len && j !== last) {
      const firstPart = path.slice(last, j);
      last = j;
      while (j < len && isWinSep(path.charCodeAt(j))) j++;
      if (j < len && j !== last) {
        last = j;
        while (j < len && !isWinSep(path.charCodeAt(j))) j++;
        if (j === len || j !== last) {
          return {
            device: `\\\\${firstPart}\\${path.slice(last, j)}`,
            rootEnd: j,
            isAbsolute: true,
          };
        }
      }
    }
    return { device: "", rootEnd: 0, isAbsolute: true };
  }
  if (isWindowsDeviceRoot(code) && path.charCodeAt(1) === CHAR_COLON) {
    return len > 2 && isWinSep(path.charCodeAt(2))
      ? { device: path.slice(0, 2), rootEnd: 3, isAbsolute: true }
      : { device: path.slice(0, 2), rootEnd: 2, isAbsolute: false };
  }
  return { device: "", rootEnd: 0, isAbsolute: false };
}

export const win32: PathFlavour = {
  sep: "\\",
  isAbsolute(path: string): boolean {
    const len = path.length;
    if (len === 0) return false;
    const code = path.charCodeAt(0);
    return isWinSep(code) ||
      (len > 2 && isWindowsDeviceRoot(code) && path.charCodeAt(1) === CHAR_COLON &&
        isWinSep(path.charCodeAt(2)));
  },
  normalize(path: string): string {
    const len = path.length;
    if (len === 0) return ".";
    if (len === 1) return isPosixSep(path.charCodeAt(0)) ? "\\" : path;
    const { device, rootEnd, isAbsolute } = winRoot(path);
    let tail = rootEnd < len
      ? normalizeString(path.slice(rootEnd), !isAbsolute, "\\", isWinSep)
      : "";
    if (tail.length === 0 && !isAbsolute) tail = ".";
    if (tail.length > 0 && isWinSep(path.charCodeAt(len - 1))) tail += "\\";
    if (!isAbsolute && device === "" && path.includes(":")) {
      // A relative path must not become one Windows reads as a drive's (CVE-2024-36139).
      if (
        tail.length >= 2 && isWindowsDeviceRoot(tail.charCodeAt(0)) &&
        tail.charCodeAt(1) === CHAR_COLON
      ) {
        return `.\\${tail}`;
      }
      let index = path.indexOf(":");
      do {
        if (index === len - 1 || isWinSep(path.charCodeAt(index + 1))) return `.\\${tail}`;
      } while ((index = path.indexOf(":", index + 1)) !== -1);
    }
    if (device === "") return isAbsolute ? `\\${tail}` : tail;
    return isAbsolute ? `${device}\\${tail}` : `${device}${tail}`;
  },
  join(...paths: string[]): string {
    if (paths.length === 0) return ".";
    let joined: string | undefined;
    let firstPart: string | undefined;
    for (const arg of paths) {
      if (typeof arg !== "string") throw new TypeError("The path must be a string");
      if (arg.length > 0) {
        if (joined === undefined) joined = firstPart = arg;
        else joined += `\\${arg}`;
      }
    }
    if (joined === undefined) return ".";
    let needsReplace = true;
    let slashCount = 0;
    if (isWinSep(firstPart!.charCodeAt(0))) {
      ++slashCount;
      const firstLen = firstPart!.length;
      if (firstLen > 1 && isWinSep(firstPart!.charCodeAt(1))) {
        ++slashCount;
        if (firstLen > 2) {
          if (isWinSep(firstPart!.charCodeAt(2))) ++slashCount;
          else needsReplace = false;
        }
      }
    }
    if (needsReplace) {
      while (slashCount < joined.length && isWinSep(joined.charCodeAt(slashCount))) slashCount++;
      if (slashCount >= 2) joined = `\\${joined.slice(slashCount)}`;
    }
    return win32.normalize(joined);
  },
  resolve(...paths: string[]): string {
    let resolvedDevice = "";
    let resolvedTail = "";
    let resolvedAbsolute = false;
    for (let i = paths.length - 1; i >= -1; i--) {
      let path: string;
      if (i >= 0) {
        path = paths[i];
        if (typeof path !== "string") throw new TypeError("The path must be a string");
        if (path.length === 0) continue;
      } else if (resolvedDevice.length === 0) {
        path = cwd();
      } else {
        // The current directory of that drive (an environment variable on
        // Windows), else its root, as node does.
        let env: string | undefined;
        try {
          env = Deno.env.get(`=${resolvedDevice}`);
        } catch { /* no env permission */ }
        path = env ?? cwd();
        if (
          path === undefined ||
          (path.slice(0, 2).toLowerCase() !== resolvedDevice.toLowerCase() &&
            path.charCodeAt(2) === CHAR_BACKWARD_SLASH)
        ) {
          path = `${resolvedDevice}\\`;
        }
      }
      const { device, rootEnd, isAbsolute } = winRoot(path);
      if (device.length > 0) {
        if (resolvedDevice.length > 0) {
          if (device.toLowerCase() !== resolvedDevice.toLowerCase()) continue;
        } else {
          resolvedDevice = device;
        }
      }
      if (resolvedAbsolute) {
        if (resolvedDevice.length > 0) break;
      } else {
        resolvedTail = `${path.slice(rootEnd)}\\${resolvedTail}`;
        resolvedAbsolute = isAbsolute;
        if (isAbsolute && resolvedDevice.length > 0) break;
      }
    }
    resolvedTail = normalizeString(resolvedTail, !resolvedAbsolute, "\\", isWinSep);
    return resolvedAbsolute
      ? `${resolvedDevice}\\${resolvedTail}`
      : `${resolvedDevice}${resolvedTail}` || ".";
  },
  relative(from: string, to: string): string {
    if (from === to) return "";
    const fromOrig = win32.resolve(from);
    const toOrig = win32.resolve(to);
    if (fromOrig === toOrig) return "";
    from = fromOrig.toLowerCase();
    to = toOrig.toLowerCase();
    if (from === to) return "";
    let fromStart = 0;
    while (fromStart < from.length && from.charCodeAt(fromStart) === CHAR_BACKWARD_SLASH) {
      fromStart++;
    }
    let fromEnd = from.length;
    while (fromEnd - 1 > fromStart && from.charCodeAt(fromEnd - 1) === CHAR_BACKWARD_SLASH) {
      fromEnd--;
    }
    const fromLen = fromEnd - fromStart;
    let toStart = 0;
    while (toStart < to.length && to.charCodeAt(toStart) === CHAR_BACKWARD_SLASH) toStart++;
    let toEnd = to.length;
    while (toEnd - 1 > toStart && to.charCodeAt(toEnd - 1) === CHAR_BACKWARD_SLASH) toEnd--;
    const toLen = toEnd - toStart;
    const length = fromLen < toLen ? fromLen : toLen;
    let lastCommonSep = -1;
    let i = 0;
    for (; i < length; i++) {
      const fromCode = from.charCodeAt(fromStart + i);
      if (fromCode !== to.charCodeAt(toStart + i)) break;
      else if (fromCode === CHAR_BACKWARD_SLASH) lastCommonSep = i;
    }
    if (i !== length) {
      if (lastCommonSep === -1) return toOrig;
    } else {
      if (toLen > length) {
        if (to.charCodeAt(toStart + i) === CHAR_BACKWARD_SLASH) {
          return toOrig.slice(toStart + i + 1);
        }
        if (i === 2) return toOrig.slice(toStart + i);
      }
      if (fromLen > length) {
        if (from.charCodeAt(fromStart + i) === CHAR_BACKWARD_SLASH) lastCommonSep = i;
        else if (i === 2) lastCommonSep = 3;
      }
      if (lastCommonSep === -1) lastCommonSep = 0;
    }
    let out = "";
    for (i = fromStart + lastCommonSep + 1; i <= fromEnd; ++i) {
      if (i === fromEnd || from.charCodeAt(i) === CHAR_BACKWARD_SLASH) {
        out += out.length === 0 ? ".." : "\\..";
      }
    }
    toStart += lastCommonSep;
    if (out.length > 0) return `${out}${toOrig.slice(toStart, toEnd)}`;
    if (toOrig.charCodeAt(toStart) === CHAR_BACKWARD_SLASH) ++toStart;
    return toOrig.slice(toStart, toEnd);
  },
  dirname(path: string): string {
    const len = path.length;
    if (len === 0) return ".";
    let rootEnd = -1;
    let offset = 0;
    const code = path.charCodeAt(0);
    if (len === 1) return isWinSep(code) ? path : ".";
    if (isWinSep(code)) {
      rootEnd = offset = 1;
      if (isWinSep(path.charCodeAt(1))) {
        let j = 2;
        let last = j;
        while (j < len && !isWinSep(path.charCodeAt(j))) j++;
        if (j < len && j !== last) {
          last = j;
          while (j < len && isWinSep(path.charCodeAt(j))) j++;
          if (j < len && j !== last) {
            last = j;
            while (j < len && !isWinSep(path.charCodeAt(j))) j++;
            if (j === len) return path;
            if (j !== last) rootEnd = offset = j + 1;
          }
        }
      }
    } else if (isWindowsDeviceRoot(code) && path.charCodeAt(1) === CHAR_COLON) {
      rootEnd = len > 2 && isWinSep(path.charCodeAt(2)) ? 3 : 2;
      offset = rootEnd;
    }
    let end = -1;
    let matchedSlash = true;
    for (let i = len - 1; i >= offset; --i) {
      if (isWinSep(path.charCodeAt(i))) {
        if (!matchedSlash) {
          end = i;
          break;
        }
      } else {
        matchedSlash = false;
      }
    }
    if (end === -1) {
      if (rootEnd === -1) return ".";
      end = rootEnd;
    }
    return path.slice(0, end);
  },
  basename(path: string, suffix?: string): string {
    const start = path.length >= 2 && isWindowsDeviceRoot(path.charCodeAt(0)) &&
        path.charCodeAt(1) === CHAR_COLON
      ? 2
      : 0;
    return basenameWith(path, start, isWinSep, suffix);
  },
  toFileUrl(path: string): URL {
    const url = new URL("file://");
    let hostname = "";
    let rest = path;
    if (path.startsWith("\\\\")) {
      // A UNC path: \\server\share\…
      const parts = path.split("\\");
      if (parts.length <= 3 || parts[2] === "") {
        throw new TypeError(`Invalid UNC path: ${path}; expected \\\\server\\share\\...`);
      }
      hostname = parts[2];
      rest = `\\${parts.slice(3).join("\\")}`;
    } else {
      let resolved = win32.resolve(path);
      const last = path.charCodeAt(path.length - 1);
      if (
        (last === CHAR_FORWARD_SLASH || last === CHAR_BACKWARD_SLASH) &&
        resolved[resolved.length - 1] !== "\\"
      ) {
        resolved += "\\";
      }
      rest = resolved;
    }
    if (hostname !== "") url.hostname = hostname;
    url.pathname = encodePathChars(rest, true).replaceAll("\\", "/");
    return url;
  },
  fromFileUrl(url: string | URL): string {
    const parsed = fileUrlOf(url);
    const hostname = parsed.hostname;
    let pathname = parsed.pathname;
    for (let n = 0; n < pathname.length; n++) {
      if (pathname[n] === "%") {
        const third = pathname.codePointAt(n + 2)! | 0x20;
        if (
          (pathname[n + 1] === "2" && third === 102) || (pathname[n + 1] === "5" && third === 99)
        ) {
          throw new TypeError(
            `File URL path must not include encoded \\ or / characters (got ${parsed.href})`,
          );
        }
      }
    }
    pathname = decodeURIComponent(pathname.replaceAll("/", "\\"));
    if (hostname !== "") return `\\\\${hostname}${pathname}`;
    const letter = pathname.codePointAt(1)! | 0x20;
    const sep = pathname[2];
    if (letter < 97 || letter > 122 || sep !== ":") {
      throw new TypeError(`File URL path must be absolute (got ${parsed.href})`);
    }
    return pathname.slice(1);
  },
};

const native: PathFlavour = Deno.build.os === "windows" ? win32 : posix;

/** Whether `path` is absolute (`node:path`'s `isAbsolute`). */
export const isAbsolute: (path: string) => boolean = native.isAbsolute;
/** The segments joined and normalized (`node:path`'s `join`). */
export const join: (...paths: string[]) => string = native.join;
/** An absolute path (`node:path`'s `resolve`). */
export const resolve: (...paths: string[]) => string = native.resolve;
/** The path from `from` to `to` (`node:path`'s `relative`). */
export const relative: (from: string, to: string) => string = native.relative;
/** The directory part (`node:path`'s `dirname`). */
export const dirname: (path: string) => string = native.dirname;
/** The last segment (`node:path`'s `basename`). */
export const basename: (path: string, suffix?: string) => string = native.basename;
/** `.` and `..` resolved (`node:path`'s `normalize`). */
export const normalize: (path: string) => string = native.normalize;
/** The separator of this platform (`node:path`'s `sep`). */
export const sep: string = native.sep;

/** A `file:` URL for a path (`node:url`'s `pathToFileURL`). */
export function toFileUrl(path: string): URL {
  return native.toFileUrl(path);
}

/** The path of a `file:` URL (`node:url`'s `fileURLToPath`). */
export function fromFileUrl(url: string | URL): string {
  return native.fromFileUrl(url);
}

/**
 * Whether `path` is `dir` itself or inside it: both absolute, compared as
 * written (no file system access, so symlinks are not followed).
 */
export function isWithin(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === "" || (rel !== ".." && !rel.startsWith(".." + sep) && !isAbsolute(rel));
}

/**
 * `path` resolved against `baseDir`, keeping a trailing separator: a path
 * written as a folder (`backups/`) stays one.
 */
export function resolveAsWritten(baseDir: string, path: string): string {
  const resolved = resolve(baseDir, path);
  const folder = path.endsWith("/") || path.endsWith(sep);
  return folder && !resolved.endsWith(sep) ? `${resolved}${sep}` : resolved;
}
