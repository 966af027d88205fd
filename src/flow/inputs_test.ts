import assert from "node:assert/strict";
import { coerceInputs } from "./inputs.ts";
import { FlowValidationError, validateFlow } from "./parse.ts";
import type { FlowDefinition } from "./types.ts";

const INPUT_FLOW: FlowDefinition = {
  id: "demo",
  inputs: {
    by: { type: "number", default: 1 },
    name: { type: "string" },
    verbose: { type: "boolean", default: false },
    tags: { type: "array", default: ["a"] },
    options: { type: "object", default: {} },
    color: { type: "string", enum: ["red", "blue"], default: "red" },
    anything: { default: null },
  },
  nodes: [{ id: "a", type: "log" }],
};

Deno.test("coerceInputs() applies defaults and keeps given values", () => {
  const result = coerceInputs(INPUT_FLOW, { name: "ada", by: 5 });
  assert.deepEqual(result, {
    by: 5,
    name: "ada",
    verbose: false,
    tags: ["a"],
    options: {},
    color: "red",
    anything: null,
  });
  (result.tags as string[]).push("changed");
  assert.deepEqual(INPUT_FLOW.inputs!.tags.default, ["a"]);
});

Deno.test("coerceInputs() reports unknown, missing and mistyped inputs together", () => {
  assert.throws(
    () => coerceInputs(INPUT_FLOW, { bye: 2, by: "abc", verbose: 1, color: "rde" }),
    {
      name: "FlowValidationError",
      message: [
        'inputs.bye: unknown input (did you mean "by"?)',
        'inputs.by: expected a number, got "abc"',
        "inputs.name: required (it has no default) but not given",
        "inputs.verbose: expected true or false, got 1",
        'inputs.color: expected one of "red", "blue", got "rde" (did you mean "red"?)',
      ].join("\n"),
    },
  );
  assert.throws(() => coerceInputs({ id: "bare", nodes: [] }, { x: 1 }), {
    message: 'inputs.x: unknown input; flow "bare" declares no inputs',
  });
  assert.throws(() => coerceInputs(INPUT_FLOW, { name: "n", zzzzzz: 1 }), {
    message:
      'inputs.zzzzzz: unknown input; flow "demo" declares by, name, verbose, tags, options, color, anything',
  });
});

Deno.test("coerceInputs() rejects values that are not JSON", () => {
  assert.throws(() => coerceInputs(INPUT_FLOW, { name: "n", options: { when: new Date(0) } }), {
    message: "inputs.options: at when: a Date is not a JSON value; use plain objects and arrays",
  });
  assert.throws(() => coerceInputs(INPUT_FLOW, { name: "n", by: NaN }), {
    message: "inputs.by: expected a number, got NaN",
  });
});

Deno.test("coerceInputs() with fromStrings parses values per declared type", () => {
  const result = coerceInputs(INPUT_FLOW, {
    by: "3",
    name: "42",
    verbose: "true",
    tags: '["x", "y"]',
    options: '{"deep": {"a": 1}}',
    anything: "[1, 2]",
  }, { fromStrings: true });
  assert.deepEqual(result, {
    by: 3,
    name: "42",
    verbose: true,
    tags: ["x", "y"],
    options: { deep: { a: 1 } },
    color: "red",
    anything: [1, 2],
  });
  assert.equal(
    coerceInputs(INPUT_FLOW, { name: "n", anything: "plain text" }, { fromStrings: true })
      .anything,
    "plain text",
  );
});

Deno.test("coerceInputs() with fromStrings reports text that does not parse", () => {
  assert.throws(
    () =>
      coerceInputs(INPUT_FLOW, {
        by: "abc",
        name: "n",
        verbose: "yes",
        tags: "{not json",
        options: "[1]",
        color: "green",
      }, { fromStrings: true }),
    {
      name: "FlowValidationError",
      message: [
        'inputs.by: expected a number (decimal digits, like 42, -2.5 or 1e3), got "abc"',
        'inputs.verbose: expected true or false, got "yes"',
        'inputs.tags: expected a JSON array, got "{not json"',
        "inputs.options: expected a mapping, got a list",
        'inputs.color: expected one of "red", "blue", got "green"',
      ].join("\n"),
    },
  );
  assert.throws(
    () => coerceInputs(INPUT_FLOW, { name: "n", by: "" }, { fromStrings: true }),
    { message: 'inputs.by: expected a number (decimal digits, like 42, -2.5 or 1e3), got ""' },
  );
});

Deno.test("coerceInputs: a value nested thousands deep is a problem of its input, not a stack overflow", () => {
  const { definition } = validateFlow({
    id: "deep",
    inputs: { x: { type: "any" } },
    nodes: [{ id: "a", type: "log", with: { message: "hi" } }],
  });
  const deep = "[".repeat(20_000) + "]".repeat(20_000);
  assert.throws(
    () => coerceInputs(definition, { x: deep }, { fromStrings: true }),
    (err) =>
      err instanceof FlowValidationError &&
      err.problems.length === 1 &&
      /^nested deeper than 256 levels/.test(err.problems[0].message) &&
      err.problems[0].path.join(".") === "inputs.x",
  );
  // 256 levels are fine.
  const ok = "[".repeat(256) + "]".repeat(256);
  assert.ok(Array.isArray(coerceInputs(definition, { x: ok }, { fromStrings: true }).x));
});

Deno.test("coerceInputs: a number input from a string takes decimal forms only", () => {
  const flow: FlowDefinition = {
    id: "n",
    inputs: { by: { type: "number" } },
    nodes: [{ id: "a", type: "log" }],
  };
  const from = (text: string) => coerceInputs(flow, { by: text }, { fromStrings: true }).by;
  for (
    const [text, value] of [
      ["42", 42],
      ["-2.5", -2.5],
      ["1e3", 1000],
      ["1E-2", 0.01],
      ["+7", 7],
      [".5", 0.5],
      ["3.", 3],
      [" 8 ", 8],
    ] as const
  ) {
    assert.equal(from(text), value, text);
  }
  for (
    const text of ["0x10", "0o17", "0b101", "Infinity", "-Infinity", "", "  ", "1_000", "e3", "."]
  ) {
    assert.throws(() => from(text), {
      message: `inputs.by: expected a number (decimal digits, like 42, -2.5 or 1e3), got ${
        JSON.stringify(text)
      }`,
    }, text);
  }
});

Deno.test("coerceInputs() refuses inputs over 15 MiB of JSON (UTF-8), naming the largest", () => {
  const flow: FlowDefinition = {
    id: "big",
    inputs: { s: { type: "string" }, n: { type: "number", default: 1 } },
    nodes: [{ id: "a", type: "log" }],
  };
  const limit = 15 * 1024 * 1024;
  // {"s":"…","n":1}: 14 bytes around the text.
  const fits = "x".repeat(limit - 14);
  assert.equal(JSON.stringify(coerceInputs(flow, { s: fits })).length, limit);
  assert.throws(() => coerceInputs(flow, { s: fits + "x" }), {
    name: "FlowValidationError",
    message: "inputs: the inputs are 15,728,641 bytes as JSON (s: 15,728,629), over the " +
      "15,728,640 bytes (15 MiB) a run's inputs may take, as they are kept in its record; pass " +
      "large data by reference instead (a file path or URL the flow reads, or a state key)",
  });
  // Counted in UTF-8 bytes, not characters: "é" is two.
  const wide = "é".repeat((limit - 14) / 2);
  assert.equal(coerceInputs(flow, { s: wide }).s, wide);
  assert.throws(() => coerceInputs(flow, { s: wide + "é" }), /inputs are 15,728,642 bytes/);
});
