import assert from "node:assert/strict";
import { redactText } from "./http.ts";

Deno.test("redactText: a password holding a quote is removed whole; a quote closing a quoted URL stays", () => {
  const raw = "connect to postgres://app:it's-s3cret@127.0.0.1:1/db failed";
  const shown = redactText(raw);
  assert.ok(!shown.includes("s3cret"), shown);
  assert.equal(shown, "connect to postgres://app@127.0.0.1:1/db failed");
  assert.equal(
    redactText("cannot open 'postgres://app:pw@h/db': refused"),
    "cannot open 'postgres://app@h/db': refused",
  );
  assert.equal(
    redactText('store "redis://:pw@h:6379/0" is down'),
    'store "redis://h:6379/0" is down',
  );
});
