/**
 * Settings shared by the property-based fuzz tests (fast-check): a fixed seed
 * per property in CI, printed with the number of cases, so a failure replays.
 *
 * - `FUZZ_SEED`: replace every property's fixed seed with this one.
 * - `FUZZ_RUNS`: cases per property (default: each property's CI count;
 *   `deno task fuzz` runs 20,000 unless FUZZ_RUNS says otherwise). A long
 *   run without FUZZ_SEED draws a new seed (printed), so each explores anew.
 *
 * A counterexample fast-check finds is printed with its seed and path; keep it
 * as a fixed regression case next to the property once the bug is fixed.
 *
 * @module
 */
import fc from "fast-check";

function envInt(name: string): number | undefined {
  const raw = Deno.env.get(name);
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new Error(`${name}=${raw}: expected an integer`);
  return n;
}

const RUNS = envInt("FUZZ_RUNS") ?? envInt("FUZZ_DEFAULT_RUNS");
/** CI runs the fixed seeds; a long run (`deno task fuzz`, FUZZ_RUNS) a new one each time. */
const SEED = envInt("FUZZ_SEED") ??
  (RUNS === undefined ? undefined : Math.floor(Math.random() * 2 ** 31));

/** The fast-check parameters of one property: its seed (fixed unless FUZZ_SEED) and runs. */
export function fuzzParams(
  name: string,
  fixedSeed: number,
  ciRuns: number,
  /** Long runs of slow properties (a database round trip each case) are this fraction of FUZZ_RUNS (at least ciRuns). */
  longFraction = 1,
): { seed: number; numRuns: number } {
  const seed = SEED ?? fixedSeed;
  const numRuns = RUNS === undefined ? ciRuns : Math.max(ciRuns, Math.round(RUNS * longFraction));
  console.log(`fuzz: ${name}: ${numRuns} cases, seed ${seed} (FUZZ_SEED=${seed} to replay)`);
  return { seed, numRuns };
}

/** Check a synchronous property with {@linkcode fuzzParams}; returns the number of cases. */
export function fuzz<T>(
  name: string,
  fixedSeed: number,
  ciRuns: number,
  arb: fc.Arbitrary<T>,
  check: (value: T) => void,
): number {
  const params = fuzzParams(name, fixedSeed, ciRuns);
  fc.assert(fc.property(arb, check), params);
  return params.numRuns;
}

/** Check an asynchronous property with {@linkcode fuzzParams}. */
export async function fuzzAsync<T>(
  name: string,
  fixedSeed: number,
  ciRuns: number,
  arb: fc.Arbitrary<T>,
  check: (value: T) => Promise<void>,
  longFraction = 1,
): Promise<void> {
  await fc.assert(
    fc.asyncProperty(arb, check),
    fuzzParams(name, fixedSeed, ciRuns, longFraction),
  );
}

/**
 * Strings made of pieces that find the corners of key and text handling: NUL,
 * the last code points before and after the surrogates, astral characters,
 * combining marks, separators used by encodings, and ordinary text.
 */
export const trickyString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 12, unit: "binary" }),
  fc.array(
    fc.constantFrom(
      "",
      "\u0000",
      "\u0001",
      "\u00ff",
      "\u007f",
      "\u0080",
      "\ud7ff",
      "\ue000",
      "\uffff",
      "\ufeff",
      "\u{10000}",
      "\u{1f600}",
      "\u{10ffff}",
      "e\u0301",
      "é",
      "a",
      "b",
      "Z",
      "/",
      ".",
      "%",
      "\\",
      '"',
      "'",
      "\n",
      " ",
      "__proto__",
      "constructor",
      "0",
      "-1",
    ),
    { maxLength: 5 },
  ).map((parts) => parts.join("")),
);

/**
 * Any JavaScript value, the odd ones too: null prototypes, sparse arrays,
 * Maps, Sets, Dates, BigInts, boxed values, typed arrays, full-Unicode strings.
 */
export const anyValue: fc.Arbitrary<unknown> = fc.anything({
  withNullPrototype: true,
  withBigInt: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withSparseArray: true,
  withBoxedValues: true,
  withTypedArray: true,
  withUnicodeString: true,
  withObjectString: true,
  maxDepth: 4,
});
