import assert from "node:assert/strict";
import { builtinNodes } from "./nodes.ts";
import { nodeSchemas } from "./node_schemas.ts";

const ABSENT = Symbol("absent");
type Field = [name: string, values: unknown[]];

/** Every combination of the fields' values (ABSENT: the key is left out). */
function* combinations(fields: Field[], at = 0, acc: Record<string, unknown> = {}): Generator<
  Record<string, unknown>
> {
  if (at === fields.length) {
    yield { ...acc };
    return;
  }
  const [name, values] = fields[at];
  for (const value of values) {
    const next = { ...acc };
    if (value !== ABSENT) next[name] = value;
    yield* combinations(fields, at + 1, next);
  }
}

const scope: Field = ["scope", [ABSENT, "node", "flow", "global", "bad", 1, undefined]];
const key: Field = ["key", [ABSENT, "a", "", ["a", "b"], [], ["a", 1], 5, undefined]];
const store: Field = ["store", [ABSENT, "s", "", 3]];
const anyValue = [ABSENT, 1, "x", null, { a: [1] }, undefined];
const durations = [ABSENT, "5m", "30s", 10, 0, -1, "5 parsecs", "", Infinity, NaN, "1.5h"];

const corpus: Record<string, Field[]> = {
  "state.get": [scope, key, store, ["default", anyValue]],
  "state.set": [scope, key, store, ["value", anyValue], ["expireIn", durations]],
  "state.delete": [scope, key, store, ["zzz", [ABSENT, 1]]],
  "state.increment": [scope, key, store, [
    "by",
    [ABSENT, 2, 1.5, -3, NaN, Infinity, "3", null],
  ]],
  "state.list": [scope, ["prefix", [ABSENT, "p", "", ["a"], []]], store, [
    "limit",
    [ABSENT, 1, 0, 1.5, 2 ** 60, "2"],
  ]],
  "log": [["message", [ABSENT, "hi", "", { a: 1 }, 3, null, [1], 10n, undefined]], [
    "level",
    [ABSENT, "debug", "info", "warn", "error", "loud", 2],
  ], ["zzz", [ABSENT, true]]],
  "transform": [["value", anyValue], ["zzz", [ABSENT, 1]]],
  "delay": [["for", durations], ["zzz", [ABSENT, 1]]],
  "fail": [["message", [ABSENT, "boom", "", 3, null]], ["zzz", [ABSENT, 1]]],
  // Few values each: every combination is checked (about 10,000).
  "http": [
    ["url", [ABSENT, "https://a.test/x?y=1", "ftp://a.test/"]],
    ["method", [ABSENT, "post", "Fetch"]],
    ["headers", [ABSENT, { Accept: "x" }, { A: 1 }, { A: "x\ny" }]],
    ["query", [ABSENT, { a: 1, b: [true, "c"] }, { a: null }]],
    ["body", [ABSENT, "text", { a: 1 }]],
    ["responseType", [ABSENT, "xml"]],
    ["expectStatus", [ABSENT, 404, [200, 201], []]],
    ["maxBytes", [ABSENT, 0]],
    ["followRedirects", [ABSENT, "no"]],
  ],
  "exec": [
    ["command", [ABSENT, "pg_dump", "", "a\0b", 3]],
    ["args", [ABSENT, ["-c", 4, true], [null], "x", ["a\0"]]],
    ["cwd", [ABSENT, "out", ""]],
    ["env", [ABSENT, { PGHOST: "db", N: 5 }, { "1A": "x" }, { A: null }]],
    ["stdin", [ABSENT, "in", 3]],
    ["okCodes", [ABSENT, 1, [0, 2], [], 256, -1]],
    ["stdout", [ABSENT, "json", "lines", "xml"]],
    ["maxBytes", [ABSENT, 10, 0]],
  ],
};

Deno.test("the built-in nodes' fast checks agree with their zod schemas", async () => {
  for (const [name, fields] of Object.entries(corpus)) {
    const schema = builtinNodes.get(name)!.optionsSchema["~standard"];
    const zod = nodeSchemas[name as keyof typeof nodeSchemas];
    let answered = 0;
    let valid = 0;
    for (const input of combinations(fields)) {
      let expected: { success: boolean; data?: unknown };
      try {
        expected = zod.safeParse(input);
      } catch {
        continue; // zod itself throws (log's JSON.stringify of a bigint): not a fast-path case
      }
      if (expected.success) valid++;
      const result = schema.validate(input);
      if (result instanceof Promise) {
        // Deferred to zod: the same answer as zod's.
        const late = await result;
        assert.equal(late.issues === undefined, expected.success, `${name} ${Deno.inspect(input)}`);
        continue;
      }
      answered++;
      assert.ok(
        expected.success,
        `${name}: the fast check accepted what zod rejects: ${Deno.inspect(input)}`,
      );
      assert.equal(result.issues, undefined);
      assert.deepStrictEqual(result.value, expected.data, `${name} ${Deno.inspect(input)}`);
    }
    // The fast path is used: most valid options are answered without zod (those holding an explicit `undefined` are not).
    assert.ok(answered >= valid * 0.5, `${name}: the fast check answered ${answered} of ${valid}`);
  }
});

Deno.test("typical options of the counter flow are answered without zod", () => {
  const increment = builtinNodes.get("state.increment")!.optionsSchema["~standard"];
  assert.deepEqual(increment.validate({ scope: "flow", key: "count", by: 5 }), {
    value: { scope: "flow", key: "count", by: 5 },
  });
  assert.deepEqual(increment.validate({ key: ["a", "b"] }), {
    value: { scope: "flow", key: ["a", "b"], by: 1 },
  });
  const log = builtinNodes.get("log")!.optionsSchema["~standard"];
  assert.deepEqual(log.validate({ message: "count is now 3" }), {
    value: { message: "count is now 3", level: "info" },
  });
  assert.deepEqual(log.validate({ message: { n: 1 }, level: "warn" }), {
    value: { message: '{"n":1}', level: "warn" },
  });
});

Deno.test("options the fast checks cannot answer go to zod, with zod's messages", async () => {
  const increment = builtinNodes.get("state.increment")!.optionsSchema["~standard"];
  const result = await increment.validate({ key: "count", by: "3" });
  assert.ok(result.issues !== undefined && result.issues.length === 1);
  assert.deepEqual(result.issues[0].path, ["by"]);
  const zod = nodeSchemas["state.increment"].safeParse({ key: "count", by: "3" });
  assert.equal(result.issues[0].message, zod.error!.issues[0].message);
});
