/**
 * `If-Match` on `PUT`/`DELETE /api/stores/{store}/entry`: a header that names
 * no version (empty, unterminated quotes, a list, spaces) is a 400 saying what
 * to send, not a 409 "changed meanwhile" (which sends a client round a
 * read-and-retry loop that can never succeed); `If-Match: *` means "the entry
 * exists", as in HTTP; `If-Match` with `If-None-Match` is refused. Nothing is
 * written on a refusal.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { ConfigObject } from "../mod.ts";
import { documented, withServed } from "./_serve.ts";

const SQLITE = (dir: string): ConfigObject["stores"] => ({
  main: { plugin: "sqlite", path: join(dir, "state.db") },
});
const PATH = "/api/stores/main/entry?key=app&key=n";
const PATTERN = "/api/stores/{store}/entry";
type Entry = { value: unknown; version: string };
type ErrorBody = { error: { code: string; message: string } };

Deno.test("serve: a malformed If-Match is a 400 saying what to send; nothing is written", async () => {
  await withServed(SQLITE, async ({ runtime, request }) => {
    const store = await runtime.store("main");
    const put = (headers: Record<string, string>, value: unknown) =>
      request(PATH, {
        method: "PUT",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ value }),
      });
    const created = await documented<Entry>("PUT", PATTERN, await put({ "if-none-match": "*" }, 1));

    for (
      const header of [
        "",
        '""',
        '"' + created.version,
        "some version",
        `"${created.version}", "x"`,
        "W/",
      ]
    ) {
      for (const method of ["PUT", "DELETE"]) {
        const res = method === "PUT"
          ? await put({ "if-match": header }, 2)
          : await request(PATH, { method, headers: { "if-match": header } });
        assert.equal(res.status, 400, `${method} If-Match: ${JSON.stringify(header)}`);
        const body = await documented<ErrorBody>(method, PATTERN, res);
        assert.equal(body.error.code, "bad_request");
        assert.match(body.error.message, /is not one version; send If-Match: "<version>"/);
      }
    }
    const both = await put({ "if-match": `"${created.version}"`, "if-none-match": "*" }, 2);
    assert.equal(both.status, 400);
    assert.match((await both.json()).error.message, /not both/);
    assert.deepEqual(await store.get(["app", "n"]), { ...created, key: ["app", "n"] });

    // The forms a version may take all match.
    let version = created.version;
    for (const form of [(v: string) => `"${v}"`, (v: string) => `W/"${v}"`, (v: string) => v]) {
      const res = await put({ "if-match": form(version) }, form(version));
      version = (await documented<Entry>("PUT", PATTERN, res)).version;
    }
    // `*`: whatever the version, the entry exists.
    const any = await documented<Entry>("PUT", PATTERN, await put({ "if-match": "*" }, "any"));
    assert.equal(any.value, "any");
    assert.equal((await store.get(["app", "n"]))?.value, "any");
    const deleted = await request(PATH, { method: "DELETE", headers: { "if-match": " * " } });
    assert.equal(deleted.status, 204);
    await deleted.body?.cancel();
    assert.equal(await store.get(["app", "n"]), null);
    // … and when it does not, that is a conflict, nothing written.
    for (const method of ["PUT", "DELETE"]) {
      const res = method === "PUT"
        ? await put({ "if-match": "*" }, 3)
        : await request(PATH, { method, headers: { "if-match": "*" } });
      assert.equal(res.status, 409, method);
      const body = await documented<{ current: null }>(method, PATTERN, res);
      assert.equal(body.current, null);
    }
    assert.equal(await store.get(["app", "n"]), null);
  });
});
