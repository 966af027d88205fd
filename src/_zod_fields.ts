/**
 * The fields a zod object schema takes at a path inside it, for the
 * did-you-mean and "the fields are …" parts of a message about an unknown
 * field (a flow file's, a request body's).
 *
 * @module
 */
import type { z } from "zod";

/**
 * The field names the object at `path` inside `schema` may have; empty when
 * `path` is not an object in the schema. Optional, nullable and default
 * wrappers are seen through, and of a union the object (or, for a numeric
 * segment, the array) option is taken.
 */
export function fieldsAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let at = unwrap(schema);
  for (const segment of path) {
    at = typeof segment === "number" ? unionOption(at, "array") : unionOption(at, "object");
    const def = defOf(at);
    let next: unknown;
    if (def.type === "object") next = (def.shape as Record<string, unknown>)[String(segment)];
    else if (def.type === "array") next = def.element;
    else if (def.type === "record") next = def.valueType;
    if (next === undefined) return [];
    at = unwrap(next as z.ZodType);
  }
  const def = defOf(unionOption(at, "object"));
  return def.type === "object" ? Object.keys(def.shape as Record<string, unknown>) : [];
}

function defOf(schema: z.ZodType): Record<string, unknown> {
  return schema._zod.def as unknown as Record<string, unknown>;
}

/** The option of type `type` among a union's options (the union itself when it has none, or is no union). */
function unionOption(schema: z.ZodType, type: "object" | "array"): z.ZodType {
  const def = defOf(schema);
  if (def.type !== "union") return schema;
  const found = (def.options as z.ZodType[]).map(unwrap).find((option) =>
    defOf(option).type === type
  );
  return found ?? schema;
}

function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (;;) {
    const def = defOf(s);
    if (def.type === "optional" || def.type === "nullable" || def.type === "default") {
      s = def.innerType as z.ZodType;
    } else if (def.type === "pipe") s = def.in as z.ZodType;
    else return s;
  }
}
