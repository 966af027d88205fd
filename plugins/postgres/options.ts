/**
 * The postgres plugin's options as a type, in a module of their own that
 * imports nothing: the core names them (to check a config object at compile
 * time) without bringing the `postgres` driver into a program's module graph.
 *
 * @module
 */

/** Validated options of the postgres plugin (checked by the plugin's `postgresOptions` schema). */
export interface PostgresOptions {
  /** A `postgres://` URL. */
  url: string;
  /** The entries table (default `flowstate_entries`). */
  table: string;
  /** The schema the tables live in (default `public`). */
  schema: string;
  /** Connections (default 4), split between single statements and transactions (one each at least). */
  max: number;
  /** Seconds to wait for a connection (default 10). */
  connectTimeout: number;
}
