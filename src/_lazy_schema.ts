/**
 * Option schemas whose zod schema is imported on first need: `flowstate run`
 * on a cached flow validates the built-in nodes' and the sqlite plugin's
 * options without loading zod (35–50 ms to import, plus building the
 * schemas). Each lazy schema has a fast check written by hand that accepts
 * only input it is sure of and returns exactly what the zod schema returns
 * for it; anything else (a problem to describe, an unusual shape) goes to the
 * zod schema, imported then, so every message stays zod's. The tests compare
 * the two on many inputs.
 *
 * @module
 */

/** A validation result (Standard Schema v1; the same shape as `SchemaResult` in plugin_define.ts). */
export type SchemaResult<O> =
  | { readonly value: O; readonly issues?: undefined }
  | {
    readonly issues: ReadonlyArray<
      {
        readonly message: string;
        readonly path?: ReadonlyArray<PropertyKey | { key: PropertyKey }>;
      }
    >;
  };

/** A Standard Schema v1 (structurally `OptionsSchema` of plugin_define.ts; defined here, below it). */
export interface OptionsSchema<O> {
  /** The Standard Schema interface. */
  readonly "~standard": {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => SchemaResult<O> | Promise<SchemaResult<O>>;
  };
}

/** A fast check's answer: the parsed value, or `undefined` ("ask the real schema"). */
export type FastCheck<O> = (value: unknown) => { value: O } | undefined;

/** An options schema whose real schema is loaded when first needed (see the module docs). */
export interface LazySchema<O> extends OptionsSchema<O> {
  /** The real schema (imported on the first call). */
  load(): Promise<OptionsSchema<O>>;
  /** The real schema's `shape` (its option names), once it is loaded; `undefined` before. */
  readonly shape: Record<string, unknown> | undefined;
}

/** A {@linkcode LazySchema}: `fast` first, the schema `load` resolves otherwise. */
export function lazySchema<O>(
  load: () => Promise<OptionsSchema<O>>,
  fast?: FastCheck<O>,
): LazySchema<O> {
  let loaded: OptionsSchema<O> | undefined;
  const real = async () => (loaded ??= await load());
  return {
    "~standard": {
      version: 1,
      vendor: "flowstate",
      validate(value: unknown): SchemaResult<O> | Promise<SchemaResult<O>> {
        const hit = fast?.(value);
        if (hit !== undefined) return { value: hit.value };
        // Always a promise when the real schema answers (the tests tell the two paths apart so).
        return real().then((schema) => schema["~standard"].validate(value));
      },
    },
    load: real,
    get shape() {
      return (loaded as { shape?: Record<string, unknown> } | undefined)?.shape;
    },
  };
}

/** The schema behind `schema` when it is lazy (loading it), else `schema` itself. */
export async function realSchema<O>(schema: OptionsSchema<O>): Promise<OptionsSchema<O>> {
  const lazy = schema as Partial<LazySchema<O>>;
  return typeof lazy.load === "function" && lazy["~standard"]?.vendor === "flowstate"
    ? await lazy.load()
    : schema;
}

// Helpers for fast checks: they answer only for plain data they are sure of.

/** A plain object (`{}` literal or JSON), whose own keys are all in `allowed` and none is `undefined`. */
export function plainWith(
  value: unknown,
  allowed: ReadonlySet<string>,
): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  if (Object.getOwnPropertySymbols(value).length > 0) return false;
  for (const key of Object.getOwnPropertyNames(value)) {
    if (!allowed.has(key)) return false;
    const d = Object.getOwnPropertyDescriptor(value, key)!;
    if (!d.enumerable || !("value" in d) || d.value === undefined) return false;
  }
  return true;
}

/** A finite number (zod's `z.number()`), not `-0`-sensitive. */
export function isFiniteNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

/** A non-empty string, or a non-empty array of strings (the state nodes' `key`). */
export function isStateKey(value: unknown): value is string | string[] {
  if (typeof value === "string") return value.length > 0;
  return Array.isArray(value) && value.length > 0 && isDenseStrings(value);
}

function isDenseStrings(value: unknown[]): boolean {
  if (Object.getPrototypeOf(value) !== Array.prototype) return false;
  for (let i = 0; i < value.length; i++) {
    if (!Object.hasOwn(value, i) || typeof value[i] !== "string") return false;
  }
  return true;
}
