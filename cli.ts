/**
 * The `flowstate` command: `deno task flowstate --help`.
 *
 * This file only runs the CLI; the commands live in `src/cli/`.
 *
 * @module
 */
import { main } from "./src/cli/main.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
