/**
 * The `flowstate` task's permissions, for tests that run the CLI (or a script
 * standing in for it) exactly as `deno task flowstate` would.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import denoJson from "../deno.json" with { type: "json" };

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** The flags between `deno run` and `cli.ts` in the `flowstate` task. */
export function taskFlags(): string[] {
  const task = denoJson.tasks.flowstate;
  const m = /^deno run (.*) cli\.ts$/.exec(task);
  assert.ok(m, `unexpected flowstate task: ${task}`);
  return m[1].split(" ");
}

/** `deno run <the task's flags> <script> <args>` in `dir`, with this repository's config. */
export function taskCommand(
  dir: string,
  script: string,
  args: readonly string[],
  options: Pick<Deno.CommandOptions, "env" | "clearEnv"> = {},
): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--config", join(ROOT, "deno.json"), ...taskFlags(), script, ...args],
    cwd: dir,
    env: options.env ?? { NO_COLOR: "1", RUST_BACKTRACE: "0" },
    clearEnv: options.clearEnv ?? false,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}
