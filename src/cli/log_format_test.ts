import assert from "node:assert/strict";
import { logFormatSetting } from "./log_format.ts";

Deno.test("logFormatSetting: the flag (last one wins) over the variable over text; nothing after --", () => {
  const env = { FLOWSTATE_LOG_FORMAT: "json" };
  assert.deepEqual(logFormatSetting([], {}), { format: "text" });
  assert.deepEqual(logFormatSetting([], { FLOWSTATE_LOG_FORMAT: "" }), { format: "text" });
  assert.deepEqual(logFormatSetting(["worker"], env), { format: "json" });
  assert.deepEqual(logFormatSetting(["--log-format", "text", "worker"], env), { format: "text" });
  assert.deepEqual(
    logFormatSetting(["--log-format=text", "worker", "--log-format", "json"], {}),
    { format: "json" },
  );
  assert.deepEqual(logFormatSetting(["run", "f.yaml", "--", "--log-format", "yaml"], {}), {
    format: "text",
  });
  assert.ok("problem" in logFormatSetting(["--log-format="], {}));
  assert.ok("problem" in logFormatSetting(["--log-format", "--quiet"], {}));
  assert.ok("problem" in logFormatSetting([], { FLOWSTATE_LOG_FORMAT: "JSON" }));
});
