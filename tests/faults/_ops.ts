/**
 * The writes of the kill tests' child (`_child.ts`), as a pure function of a
 * seed, so the test can rebuild the exact sequence the child ran and know what
 * the store must hold after any number of acknowledged writes.
 *
 * @module
 */
import fc from "fast-check";
import type { JsonValue, Key, Store } from "../../mod.ts";

/** One write: a set, a delete, or an atomic group of sets and a delete. */
export type Op =
  | { kind: "set"; key: Key; value: JsonValue }
  | { kind: "delete"; key: Key }
  | { kind: "atomic"; sets: [Key, JsonValue][]; deletes: Key[] };

const choice = fc.record({
  kind: fc.constantFrom("set", "set", "overwrite", "delete", "atomic", "atomic"),
  pick: fc.nat(),
  other: fc.nat(),
  size: fc.oneof(fc.nat(64), fc.nat(4000)),
  text: fc.string({ maxLength: 8, unit: "binary" }),
});

/** A written key of op `i` (zero-padded, so listing order is op order). */
function wKey(i: number): Key {
  return ["w", String(i).padStart(6, "0")];
}

/** The `count` writes of the sequence `seed`. Op `i` only names keys of ops before it. */
export function ops(seed: number, count: number): Op[] {
  const choices = fc.sample(choice, { seed, numRuns: count });
  return choices.map((c, i): Op => {
    const value = { i, text: c.text, pad: "x".repeat(c.size) };
    const earlier = i === 0 ? 0 : c.pick % i;
    switch (i === 0 ? "set" : c.kind) {
      case "overwrite":
        return { kind: "set", key: wKey(earlier), value };
      case "delete":
        return { kind: "delete", key: wKey(earlier) };
      case "atomic": {
        const sets: [Key, JsonValue][] = ["a", "b", "c"].map((part) => [
          ["g", String(i).padStart(6, "0"), part],
          { ...value, part },
        ]);
        sets.push([wKey(earlier), { ...value, atomic: true }]);
        const other = c.other % i;
        return { kind: "atomic", sets, deletes: other === earlier ? [] : [wKey(other)] };
      }
      default:
        return { kind: "set", key: wKey(i), value };
    }
  });
}

/** Apply one op to `store` (the child's side). */
export async function apply(store: Store, op: Op): Promise<void> {
  if (op.kind === "set") {
    await store.set(op.key, op.value);
  } else if (op.kind === "delete") {
    await store.delete(op.key);
  } else {
    const atomic = store.atomic();
    for (const [key, value] of op.sets) atomic.set(key, value);
    for (const key of op.deletes) atomic.delete(key);
    const result = await atomic.commit();
    if (!result.ok) throw new Error(`atomic op conflicted: ${JSON.stringify(result)}`);
  }
}

/** What the store holds after the first `n` ops: JSON of each key to JSON of its value. */
export function model(sequence: readonly Op[], n: number): Map<string, string> {
  const state = new Map<string, string>();
  for (const op of sequence.slice(0, n)) {
    if (op.kind === "set") state.set(JSON.stringify(op.key), JSON.stringify(op.value));
    else if (op.kind === "delete") state.delete(JSON.stringify(op.key));
    else {
      for (const [key, value] of op.sets) state.set(JSON.stringify(key), JSON.stringify(value));
      for (const key of op.deletes) state.delete(JSON.stringify(key));
    }
  }
  return state;
}
