import assert from "node:assert/strict";
import { openStore, StoreUnavailableError } from "../../mod.ts";
import { main } from "../../src/cli/main.ts";

// No server needed: nothing listens on port 1, so the connection is refused at once.
const URL_WITHOUT_SERVER = "postgres://flow:s3cret-pw@127.0.0.1:1/test";

Deno.test("postgres plugin throws StoreUnavailableError with the store and address for a server it cannot reach", async () => {
  const err = await openStore({ plugin: "postgres", url: URL_WITHOUT_SERVER }, { name: "main" })
    .catch((e) => e);
  assert.ok(err instanceof StoreUnavailableError, `got ${err}`);
  assert.equal(err.code, "STORE_UNAVAILABLE");
  assert.equal(err.store, "main");
  assert.equal(err.address, "127.0.0.1:1");
  assert.ok(!err.message.includes("s3cret"));
});

Deno.test("the CLI reports an unreachable store in one line, exit 1, without the --debug hint", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-unavailable-" });
  try {
    const config = `${dir}/flowstate.yaml`;
    await Deno.writeTextFile(
      config,
      `stores:\n  main: { plugin: postgres, url: "${URL_WITHOUT_SERVER}" }\n`,
    );
    const lines: string[] = [];
    const error = console.error;
    console.error = (...args: unknown[]) => void lines.push(args.join(" "));
    let code: number;
    try {
      code = await main(["--config", config, "state", "get", "k"]);
    } finally {
      console.error = error;
    }
    assert.equal(code, 1);
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(
      lines[0],
      /^error: Cannot open store "main": cannot reach PostgreSQL at 127\.0\.0\.1:1/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
