/**
 * Parsing a config file's text: the part of `config.ts` that needs the YAML
 * parser, loaded by {@linkcode loadConfig} only when there is a file to parse.
 *
 * @module
 */
import { parseConfigTextWith, type ResolvedConfig } from "./config.ts";
import { YamlSource } from "./yaml_source.ts";
import * as configSchemaModule from "./config_schema.ts";

/**
 * Parse a config file's text. Exposed for tests and tools; `loadConfig`
 * reads the file and calls this.
 */
export function parseConfigText(
  text: string,
  options: {
    file: string;
    cwd?: string;
    home?: string;
    env?: (name: string) => string | undefined;
  },
): ResolvedConfig {
  return parseConfigTextWith(YamlSource, text, options, configSchemaModule);
}
