/** Levenshtein distance, for "did you mean" suggestions. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length];
}

/** The closest candidate within a small distance, or `undefined`. */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 3))
    ? best
    : undefined;
}

/** `' (did you mean "x"?)'` or `""`. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const s = suggest(word, candidates);
  return s === undefined ? "" : ` (did you mean "${s}"?)`;
}

/**
 * Throw a `TypeError` naming the first own field of `value` not in `known`
 * (with the closest known one, and all of them): a misspelt option or hook
 * would otherwise be ignored without a word. A `value` that is no object (a
 * string, a list) is refused too: its characters or items are no fields.
 */
export function assertKnownFields(
  value: object,
  known: readonly string[],
  what: string,
  noun: string,
): void {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    const example = `{ ${known[0]}: … }`;
    throw new TypeError(
      `${what}: expected an object of ${noun}s like ${example}, got ${notAnObject(value)}`,
    );
  }
  for (const name of Object.keys(value)) {
    if (known.includes(name)) continue;
    throw new TypeError(
      `${what}: unknown ${noun} ${JSON.stringify(name)}${
        didYouMean(name, known)
      }; the ${noun}s are ${known.join(", ")}`,
    );
  }
}

/**
 * The names of the fields of `T` (an options type), given as a few lines of
 * names: exactly those fields, or it does not compile (a name `T` lacks, or
 * a field of `T` left out), so a new option cannot be forgotten here.
 */
export function fieldNames<T>(): <const N extends keyof T>(
  ...lines:
    & (readonly N[])[]
    & ([Exclude<keyof T, N>] extends [never] ? unknown
      : [`missing: ${Exclude<keyof T, N> & string}`])
) => readonly string[] {
  return (...lines) => lines.flat() as string[];
}

/** A value that is no object, as a message shows it (layer 0: no flow helpers here). */
function notAnObject(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value !== "string") return String(value);
  return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
}
