// docs/examples/cron/archive_test.ts: the flows of docs/guide-cron.md, tested without tar, find or
// the network (mocks), on a memory store.
import assert from "node:assert/strict";
import { openRuntime } from "@flowstate/core";
import { recordCalls } from "@flowstate/core/testing";

const archive = new URL("./flows/archive.flow.yaml", import.meta.url).pathname;
const alert = new URL("./flows/alert.flow.yaml", import.meta.url).pathname;

Deno.test("archive names the file after its tick's day in Paris, then prunes by name", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const tar = recordCalls({ code: 0, stdout: "", stderr: "" });
  const prune = recordCalls({
    code: 0,
    stdout: ["/var/backups/site-2026-02-20.tar.gz"],
    stderr: "",
  });
  const run = await rt.runFlow(archive, {
    input: { name: "site", folder: "/srv/site" },
    // 23:30 UTC on March 9 is 00:30 on March 10 in Paris: the file is named after the 10th.
    scheduled: { at: Date.parse("2026-03-09T23:30:00Z"), schedule: "flow:archive#site" },
    mocks: { tar, prune },
  });
  assert.equal(run.status, "succeeded", run.error?.message);
  assert.deepEqual((tar.calls[0].with as { args: string[] }).args, [
    "--create",
    "--gzip",
    "--file=/var/backups/site-2026-03-10.tar.gz",
    "--directory=/srv/site",
    ".",
  ]);
  assert.deepEqual((prune.calls[0].with as { args: string[] }).args, [
    "/var/backups",
    "-maxdepth",
    "1",
    "-name",
    "site-*.tar.gz",
    "-mtime",
    "+14",
    "-print",
    "-delete",
  ]);
  assert.deepEqual(run.outputs?.removed, ["/var/backups/site-2026-02-20.tar.gz"]);
  assert.equal(run.nodes.tar.mocked, true);
});

Deno.test("alert posts who failed, how and where, with the token masked in the record", async () => {
  Deno.env.set("CHAT_WEBHOOK_TOKEN", "t0k3n-for-tests");
  try {
    await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
    const post = recordCalls({ status: 200, headers: {}, body: "ok" });
    const run = await rt.runFlow(alert, {
      input: {
        run: {
          id: "0mxd0",
          flow: "archive",
          job: null,
          kind: "failed",
          host: "box",
          error: 'node "tar": "tar" exited with code 2',
        },
      },
      mocks: { post },
    });
    assert.equal(run.status, "succeeded", run.error?.message);
    const sent = post.calls[0].with as { headers: Record<string, string>; body: { text: string } };
    assert.equal(sent.headers.Authorization, "Bearer t0k3n-for-tests"); // the node gets the value
    assert.equal(
      sent.body.text,
      'archive failed on box: node "tar": "tar" exited with code 2 (flowstate runs show 0mxd0)',
    );
    assert.doesNotMatch(JSON.stringify(run), /t0k3n-for-tests/); // the record does not
  } finally {
    Deno.env.delete("CHAT_WEBHOOK_TOKEN");
  }
});
