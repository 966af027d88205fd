/**
 * Property-based fuzzing of the flow and config parsers on random YAML and on
 * real files mutated at random (characters deleted, pieces of YAML syntax
 * inserted, lines duplicated, swapped and re-indented): a flow either parses
 * or throws a `FlowValidationError`, a config a `ConfigError`, each with
 * problems that have a place; never a TypeError, RangeError, stack overflow
 * or anything else.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import process from "node:process";
import fc from "fast-check";
import { ConfigError, FlowValidationError } from "../../mod.ts";
import { parseFlow, validateFlow } from "../../flow.ts";
import { parseConfigText } from "../../src/config_file.ts";
import { anyValue, fuzz } from "./_fuzz.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

const FLOWS = [...Deno.readDirSync(join(ROOT, "examples"))]
  .filter((e) => e.name.endsWith(".flow.yaml"))
  .map((e) => Deno.readTextFileSync(join(ROOT, "examples", e.name)));

const CONFIG = `home: ./.flowstate
stores:
  default: { plugin: sqlite, path: .flowstate/state.db, durability: full }
  cache:
    plugin: memory
    snapshot: cache.snapshot.json
  shared: &shared
    plugin: jsonfile
    path: \${env.SHARED_PATH}
scopes: { global: shared, flow: default, node: default }
records: default
flows: [./flows]
timezone: Europe/Paris
jobs:
  retention: { schedule: "0 3 * * *", options: { maxAge: 30d, maxRuns: 500 } }
  archive: { schedule: "@weekly", options: { olderThan: 90d } }
  backup: { schedule: "0 4 * * *", options: { all: true }, missed: run-once }
  gc: { enabled: false }
`;

const PIECES = [
  "\n",
  "\n  ",
  "\n- ",
  "  ",
  "\t",
  "- ",
  ": ",
  ":",
  "? ",
  ",",
  "{",
  "}",
  "[",
  "]",
  "&a ",
  "*a",
  "<<: *a",
  "!!str ",
  "!!binary ",
  "!!map ",
  "!custom ",
  "|",
  ">-",
  "#",
  "'",
  '"',
  "\\",
  "---\n",
  "...\n",
  "%YAML 1.2\n",
  "~",
  "null",
  "true",
  "0x1F",
  "1e999",
  "-.inf",
  ".nan",
  "2025-01-01",
  "__proto__",
  "constructor",
  "id: x",
  "nodes:",
  "type: log",
  "type: flow",
  "with:",
  "needs: [a]",
  "schedule: ",
  "inputs:",
  "retry: { attempts: 2 }",
  "timeout: 5s",
  "if: ",
  "${{ inputs.x }}",
  "${{ nodes.a.output }}",
  "${{",
  "stores:",
  "plugin: sqlite",
  "scopes:",
  "jobs:",
  "${env.X}",
  "$${env.X}",
  "\u0000",
  "\ufeff",
  "é",
  "😀",
];

const piece = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...PIECES) },
  { weight: 1, arbitrary: fc.string({ maxLength: 6, unit: "binary" }) },
);

/** Random YAML-ish text. */
const randomYaml = fc.array(piece, { maxLength: 40 }).map((parts) => parts.join(""));

type Mutation = { kind: number; at: number; span: number; text: string };
const mutation: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.nat(5),
  at: fc.nat(),
  span: fc.nat(40),
  text: piece,
});

/** Apply one mutation to `text`. */
function mutate(text: string, m: Mutation): string {
  const at = text.length === 0 ? 0 : m.at % text.length;
  const lines = text.split("\n");
  const line = lines.length === 0 ? 0 : m.at % lines.length;
  switch (m.kind) {
    case 0: // delete a span
      return text.slice(0, at) + text.slice(at + m.span);
    case 1: // insert a piece
      return text.slice(0, at) + m.text + text.slice(at);
    case 2: // duplicate a line
      lines.splice(line, 0, lines[line]);
      return lines.join("\n");
    case 3: // swap two lines
      [lines[line], lines[(line + m.span) % lines.length]] = [
        lines[(line + m.span) % lines.length],
        lines[line],
      ];
      return lines.join("\n");
    case 4: // re-indent a line
      lines[line] = " ".repeat(m.span % 7) + lines[line].trimStart();
      return lines.join("\n");
    default: // replace a span with a piece
      return text.slice(0, at) + m.text + text.slice(at + (m.span % 8));
  }
}

function mutated(sources: string[]): fc.Arbitrary<string> {
  return fc.tuple(fc.constantFrom(...sources), fc.array(mutation, { minLength: 1, maxLength: 6 }))
    .map(([source, ms]) => ms.reduce(mutate, source));
}

/** Flows that parsed (a mutation may leave a flow valid), to show the cases reach both outcomes. */
let parsedFlows = 0;

/** `parseFlow(text)` parses or throws a FlowValidationError whose problems have places. */
function checkFlow(text: string): void {
  try {
    parseFlow(text, { file: "fuzz.flow.yaml" });
    parsedFlows++;
  } catch (e) {
    if (!(e instanceof FlowValidationError)) {
      throw new Error(`parseFlow(${JSON.stringify(text)}) threw ${e}`, { cause: e });
    }
    assert.ok(e.problems.length > 0, `no problems for ${JSON.stringify(text)}`);
    for (const p of e.problems) assert.equal(typeof p.message, "string");
  }
}

/**
 * `parseConfigText(text)` parses or throws a ConfigError, and prints nothing:
 * no warning of the YAML library reaches stderr (process.emitWarning).
 */
function checkConfig(text: string): void {
  const warnings: unknown[] = [];
  const emitWarning = process.emitWarning;
  process.emitWarning = ((warning: unknown) => {
    warnings.push(warning);
  }) as typeof process.emitWarning;
  try {
    parseConfigText(text, {
      file: "flowstate.yaml",
      cwd: "/tmp/fuzz",
      home: "/tmp/fuzz/home",
      env: (name) => name === "SHARED_PATH" ? "shared.json" : undefined,
    });
  } catch (e) {
    if (!(e instanceof ConfigError)) {
      throw new Error(`parseConfigText(${JSON.stringify(text)}) threw ${e}`, { cause: e });
    }
    assert.ok(e.message.length > 0);
  } finally {
    process.emitWarning = emitWarning;
  }
  assert.deepEqual(warnings.map(String), [], `warnings for ${JSON.stringify(text)}`);
}

Deno.test("fuzz: the flow parser on random YAML throws only FlowValidationError", () => {
  fuzz("flow parser, random YAML", 1908, 2000, randomYaml, checkFlow);
});

Deno.test("fuzz: the flow parser on mutated example flows throws only FlowValidationError", () => {
  for (const flow of FLOWS) parseFlow(flow); // the examples themselves parse
  parsedFlows = 0;
  const numRuns = fuzz("flow parser, mutated flows", 1909, 1000, mutated(FLOWS), checkFlow);
  console.log(`fuzz: mutated flows: ${parsedFlows} of ${numRuns} still parsed`);
  assert.ok(parsedFlows * 50 > numRuns && parsedFlows * 2 < numRuns, `${parsedFlows} parsed`);
});

Deno.test("fuzz: the config parser on random YAML throws only ConfigError", () => {
  fuzz("config parser, random YAML", 1910, 2000, randomYaml, checkConfig);
});

Deno.test("a config with a collection as a key is an error, and no YAML warning is printed (found by fuzzing)", () => {
  // The YAML library used to print "(node) Warning: Keys with collection values
  // will be stringified" on stderr for each such key, beside the ConfigError.
  for (const text of ["jobs:\n  { a: 1 }: 1\n", "? [a, b]\n: 1\n", "stores:\n  ? [x]\n  : 1\n"]) {
    assert.throws(
      () => parseConfigText(text, { file: "flowstate.yaml", cwd: "/tmp" }),
      ConfigError,
    );
    checkConfig(text);
  }
});

Deno.test("fuzz: the config parser on a mutated config throws only ConfigError", () => {
  checkConfig(CONFIG);
  fuzz("config parser, mutated config", 1911, 1000, mutated([CONFIG]), checkConfig);
});

const anything = anyValue;

/** A flow object whose fields are sometimes right and sometimes anything. */
const flowObject = fc.record({
  id: fc.oneof(fc.constant("a"), anything),
  nodes: fc.oneof(
    fc.array(
      fc.record({
        id: fc.oneof(fc.constantFrom("x", "y"), anything),
        type: fc.oneof(fc.constantFrom("log", "state.set", "flow", "delay", "transform"), anything),
        with: anything,
        needs: fc.oneof(fc.constant(["x"]), anything),
        retry: anything,
        timeout: anything,
        if: anything,
      }, { requiredKeys: [] }),
      { maxLength: 4 },
    ),
    anything,
  ),
  inputs: anything,
  outputs: anything,
  schedule: anything,
  env: anything,
}, { requiredKeys: [] });

/** `validateFlow(value)` validates or throws a FlowValidationError. */
function checkFlowObject(value: unknown): void {
  try {
    validateFlow(value);
  } catch (e) {
    if (!(e instanceof FlowValidationError)) {
      throw new Error(`validateFlow(${Deno.inspect(value)}) threw ${e}`, { cause: e });
    }
  }
}

Deno.test("validateFlow() of an array with holes is a FlowValidationError naming the hole (found by fuzzing)", () => {
  // jsonProblem() walked `array.map(...)`, which keeps holes, and failed on
  // one with "TypeError: .for is not iterable".
  // deno-lint-ignore no-sparse-arrays
  const sparse = [, 1];
  assert.throws(
    () => validateFlow({ id: "a", nodes: [{ id: "x", type: "log", with: { m: sparse } }] }),
    (e: unknown) => {
      assert.ok(e instanceof FlowValidationError, String(e));
      assert.match(e.message, /nodes\[0\]\.with\.m\[0\]: undefined is not a JSON value/);
      return true;
    },
  );
  checkFlowObject({ outputs: { "": sparse } });
});

Deno.test("fuzz: validateFlow() on random objects throws only FlowValidationError", () => {
  fuzz("validateFlow, random objects", 1912, 1500, fc.oneof(flowObject, anything), checkFlowObject);
});

/** YAML nested from a few to thousands of levels, in flow and block style, mixed. */
const deepYaml = fc.tuple(
  fc.array(fc.constantFrom("[", "{a: ", "- ", "b:\n"), { minLength: 1, maxLength: 4 }),
  fc.integer({ min: 1, max: 4000 }),
  fc.constantFrom("flow", "config"),
).map(([kinds, depth, target]) => {
  let open = "";
  let close = "";
  let indent = 0;
  for (let i = 0; i < depth; i++) {
    const kind = kinds[i % kinds.length];
    if (kind === "[" || kind === "{a: ") {
      open += kind;
      close = (kind === "[" ? "]" : "}") + close;
    } else if (close === "") {
      // Block style only outside flow collections.
      open += kind === "- " ? `\n${" ".repeat(indent)}- ` : `\n${" ".repeat(indent)}b:`;
      indent += 2;
    }
  }
  const body = `${open}1${close}`;
  return { target, text: target === "flow" ? `id: a\nnodes: ${body}\n` : `stores: ${body}\n` };
});

Deno.test("fuzz: YAML nested thousands deep is a FlowValidationError or ConfigError, never a stack overflow", () => {
  fuzz("deep YAML", 1914, 100, deepYaml, ({ target, text }) => {
    try {
      if (target === "flow") parseFlow(text);
      else parseConfigText(text, { file: "flowstate.yaml", cwd: "/tmp" });
    } catch (e) {
      const expected = target === "flow" ? FlowValidationError : ConfigError;
      if (!(e instanceof expected)) throw new Error(`${target}: threw ${e}`, { cause: e });
      assert.doesNotMatch(e.message, /call stack/i);
    }
  });
});
