/**
 * The template functions through the CLI: a flow that names a backup by date,
 * checks prefixes, joins and sorts lists, rounds, and builds a Basic auth
 * header from secrets; bad uses placed at file:line:column by `validate` and
 * `run`; and a value derived from a secret (base64, sha256, a cut) found
 * nowhere the run is recorded or shown.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Sandbox, withSandbox } from "./_cli_sandbox.ts";

const FLOW = `id: nightly
inputs:
  at: { type: string, default: "2026-12-07T00:30:00+01:00" }
  files: { type: array, default: ["db.sql", "app.log", "db.wal", "db.sql"] }
  sizes: { type: array, default: [1.25, 2.5, 0.125] }
nodes:
  - id: name
    type: transform
    with:
      value: "\${{ format('backup-{0}.tar', formatDate(parseDate(inputs.at), 'yyyy-MM-dd_HHmm')) }}"
  - id: paris
    type: transform
    with:
      value: "\${{ formatDate(inputs.at, 'EEE d MMM HH:mm XXX', 'Europe/Paris') }}"
  - id: pick
    type: transform
    forEach: "\${{ sort(unique(inputs.files)) }}"
    with:
      value: { file: "\${{ item }}", db: "\${{ startsWith(item, 'db.') }}", n: "\${{ padStart(string(index + 1), 3, '0') }}" }
  - id: summary
    type: transform
    needs: [pick]
    with:
      value:
        db: "\${{ join(pluck(nodes.pick.output, 'file'), ' ') }}"
        total: "\${{ round(sum(inputs.sizes), 1) }}"
        biggest: "\${{ max(inputs.sizes) }}"
        slots: "\${{ range(1, 4) }}"
        token: "\${{ base64('ada:pw') }}"
outputs:
  name: "\${{ nodes.name.output }}"
  paris: "\${{ nodes.paris.output }}"
  pick: "\${{ nodes.pick.output }}"
  summary: "\${{ nodes.summary.output }}"
`;

async function write(sandbox: Sandbox, name: string, text: string): Promise<void> {
  await Deno.writeTextFile(join(sandbox.dir, name), text);
}

Deno.test("cli: a flow uses the template functions (dates, text, lists, numbers, encoding)", async () => {
  await withSandbox(async (sandbox) => {
    await write(sandbox, "nightly.flow.yaml", FLOW);
    const result = await sandbox.run("run", "nightly.flow.yaml", "--json");
    assert.equal(result.code, 0, result.stderr);
    const record = JSON.parse(result.stdout);
    assert.deepEqual(record.outputs, {
      name: "backup-2026-12-06_2330.tar",
      paris: "Mon 7 Dec 00:30 +01:00",
      pick: [
        { file: "app.log", db: false, n: "001" },
        { file: "db.sql", db: true, n: "002" },
        { file: "db.wal", db: true, n: "003" },
      ],
      summary: {
        db: "app.log db.sql db.wal",
        total: 3.9,
        biggest: 2.5,
        slots: [1, 2, 3],
        token: "YWRhOnB3",
      },
    });
  });
});

Deno.test("cli: a misused function is placed at file:line:column, before anything runs", async () => {
  await withSandbox(async (sandbox) => {
    await write(
      sandbox,
      "bad.flow.yaml",
      `id: bad
inputs:
  at: { type: string, default: "2026-12-07" }
nodes:
  - id: a
    type: log
    with: { message: "\${{ formatDate(parseDate(inputs.at), 'yyyy-mm-DD') }}" }
  - id: b
    type: log
    with: { message: "\${{ join() }} \${{ slice(inputs.at, 1.5) }}" }
`,
    );
    const validate = await sandbox.run("validate", "bad.flow.yaml");
    assert.equal(validate.code, 2, validate.stderr);
    const errors = validate.stdout.concat(validate.stderr).split("\n").filter((l) =>
      l.startsWith("error:")
    );
    assert.deepEqual(errors, [
      `error: bad.flow.yaml:7:60: nodes[0].with.message: Cannot parse \${{ formatDate(parseDate(inputs.at), 'yyyy-mm-DD') }}: formatDate() cannot use the pattern: "D" is not a date token (yyyy yy MMM MM M dd d EEE HH H hh h a mm m ss s SSS XXX); put text in single quotes, as in 'T'`,
      "error: bad.flow.yaml:10:27: nodes[1].with.message: Cannot parse ${{ join() }}: join() takes 1 to 2 arguments, got 0: join(list, separator?)",
      "error: bad.flow.yaml:10:58: nodes[1].with.message: Cannot parse ${{ slice(inputs.at, 1.5) }}: slice() takes an integer as start, got 1.5",
    ]);
    const run = await sandbox.run("run", "bad.flow.yaml");
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /^error: bad\.flow\.yaml:7:60: nodes\[0\]\.with\.message: /m);
    assert.equal((await sandbox.run("runs", "ls", "--json")).stdout.trim(), "[]");
  });
});

Deno.test("cli: a function given a wrong value when running fails its node, naming the function, the argument and what it got", async () => {
  await withSandbox(async (sandbox) => {
    await write(
      sandbox,
      "late.flow.yaml",
      `id: late
inputs:
  at: { type: string, default: "next tuesday" }
  n: { type: any, default: "3" }
nodes:
  - id: when
    type: log
    with: { message: "\${{ formatDate(inputs.at, 'yyyy') }}" }
  - id: round
    type: log
    with: { message: "\${{ round(inputs.n) }}" }
`,
    );
    const result = await sandbox.run("run", "late.flow.yaml", "--json");
    assert.equal(result.code, 1, result.stderr);
    const record = JSON.parse(result.stdout);
    assert.equal(
      record.nodes.when.error,
      `late.flow.yaml:8:27: nodes[0].with.message: Cannot evaluate \${{ formatDate(inputs.at, 'yyyy') }}: formatDate() cannot read "next tuesday" as a date: write it in ISO 8601, as in 2026-12-07, 2026-12-07T14:30:00 or 2026-12-07T14:30:00Z`,
    );
    assert.equal(
      record.nodes.round.error,
      "late.flow.yaml:11:27: nodes[1].with.message: Cannot evaluate ${{ round(inputs.n) }}: round() takes a number as value, got string",
    );
  });
});

const USER = "svc-backup";
const PASS = "Pa55-w0rd/Long";

Deno.test("cli: a value a function derives from a secret is masked wherever the run is recorded or shown", async () => {
  await withSandbox(async (sandbox) => {
    await write(
      sandbox,
      "auth.flow.yaml",
      `id: auth
secrets: [API_USER, API_PASS]
nodes:
  - id: header
    type: transform
    with:
      value: { authorization: "Basic \${{ base64(secrets.API_USER + ':' + secrets.API_PASS) }}" }
  - id: say
    type: log
    with: { message: "digest \${{ sha256(secrets.API_PASS) }}, half \${{ slice(secrets.API_PASS, 0, 7) }}, shout \${{ upper(secrets.API_USER) }}" }
outputs:
  header: "\${{ nodes.header.output.authorization }}"
  length: "\${{ length(nodes.header.output.authorization) }}"
`,
    );
    const basic = btoa(`${USER}:${PASS}`);
    const digest = Array.from(
      new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(PASS))),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    const derived = [basic, digest, PASS.slice(0, 7), USER.toUpperCase(), PASS, USER];
    const assertNone = (text: string, where: string) => {
      for (const value of derived) {
        assert.ok(!text.includes(value), `${where} holds ${value}:\n${text}`);
      }
    };
    const env = { API_USER: USER, API_PASS: PASS };
    const result = await sandbox.runWith(env, "run", "auth.flow.yaml", "--json");
    assert.equal(result.code, 0, result.stderr);
    assertNone(result.stdout, "run --json stdout");
    assertNone(result.stderr, "run --json stderr");
    const record = JSON.parse(result.stdout);
    assert.equal(record.outputs.header, "Basic ***");
    assert.equal(record.outputs.length, `Basic ${basic}`.length, "the node got the real value");

    const shown = await sandbox.run("runs", "show", record.id, "--json");
    assert.equal(shown.code, 0, shown.stderr);
    assertNone(shown.stdout, "runs show --json");
    assert.ok(shown.stdout.includes("digest ***, half ***, shout ***"), "the log line, masked");
    const text = await sandbox.run("runs", "show", record.id);
    assertNone(text.stdout, "runs show");

    // The store's files (the sqlite database and its journal), read as bytes.
    let files = 0;
    for await (const entry of Deno.readDir(sandbox.home)) {
      if (!entry.isFile) continue;
      const bytes = new TextDecoder("latin1").decode(
        await Deno.readFile(join(sandbox.home, entry.name)),
      );
      assertNone(bytes, entry.name);
      if (bytes.includes("digest ***")) files++;
    }
    assert.ok(files > 0, "the store is readable as text (else the search above proves nothing)");
  });
});
