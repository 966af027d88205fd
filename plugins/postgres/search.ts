/**
 * Full-text search in the postgres plugin: a `tsvector` column
 * (`fs_search`) on the entries table, filled by a `BEFORE INSERT OR UPDATE
 * OF key, value` trigger inside every writer's own transaction (so it is
 * exact on every commit, whoever writes), and a GIN index on it.
 *
 * The words of a value are the core's reference words (`searchWords`:
 * every string, or the strings at the declared fields, in Unicode NFKC,
 * lower-cased as JavaScript does, cut into runs of letters, digits and
 * private-use characters), cut by a per-table SQL function made from
 * PostgreSQL's `normalize(text, NFKC)` (PostgreSQL 13 or newer) and this
 * engine's Unicode tables (`_sql/words.ts`; not the database's `lower()` or locale),
 * and written as a tsvector literal with their positions, which PostgreSQL
 * keeps as they are. Σ, σ and ς are all indexed (and searched) as σ.
 * With up to four declared fields each field gets its own weight (A–D), so
 * a search in some fields is `'word':AB`. A query is `'t1' & 't2'` (terms
 * as the core splits them). Hits are ranked by `ts_rank(…, 1)`
 * (frequency, shrinking with the document's length); every hit is checked
 * again with the core's `searchScore`, so no entry that the reference
 * search would not find is returned.
 *
 * The declaration the column was built for, with the words' format, is kept
 * in `<table>_meta` (`search`); a changed declaration or format (a column an
 * earlier version built) rebuilds it, a removed declaration drops it.
 *
 * @module
 */
import type { Transactions } from "./reserve.ts";
import type { Sql } from "postgres";
import { byteBounds } from "../../src/store/keys.ts";
import type {
  PrepareIndexesRequest,
  RawSearchHit,
  SearchRequest,
  SearchSpec,
} from "../../src/store/driver.ts";
import { coversPrefix, searchScore } from "../../src/store/indexes.ts";
import { boundsWhere } from "../_sql/bounds.ts";
import { entryOf, type EntryRow } from "../_sql/keyset.ts";
import {
  BUILD_NOTICE_ENTRIES,
  createCastFunctionSql,
  createIndexFunctionsSql,
  prefixTerms,
} from "./indexes.ts";
import { LOCK_CLASS, quoteIdent } from "./schema.ts";
import {
  loadSearchWordsFormat,
  pgLowerMap,
  pgMarkRegex,
  pgNonAsciiUpperRegex,
  pgRunRegex,
  pgSpecialRegex,
  pgTerm,
  pgWordRegex,
  searchMetaValue,
} from "../_sql/words.ts";
import type { PgIndexTarget } from "./indexes.ts";
import { parseJson } from "../../src/_json.ts";

/** Characters of searchable text indexed per entry (a tsvector holds at most 1 MB). */
export const MAX_SEARCH_TEXT = 200_000;
const WEIGHTS = ["A", "B", "C", "D"];

function metaTable(t: PgIndexTarget): string {
  return `${quoteIdent(t.schema)}.${quoteIdent(`${t.table}_meta`)}`;
}

function wordsFunction(t: PgIndexTarget): string {
  return `${quoteIdent(t.schema)}.${quoteIdent(`${t.table}_fs_words`)}`;
}

function sqlString(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/**
 * The function that cuts a value's words as the core's tokenizer does (see
 * `_sql/words.ts`): each string in NFKC (PostgreSQL's `normalize`), its İ as
 * i and a space (JavaScript lower-cases it to i + U+0307, a mark the cut
 * drops: the same words, whatever marks follow), its ASCII capitals lowered.
 * A string without a combining mark (most of them, once in NFKC) is cut into
 * runs of the letter, digit and private-use characters of this engine's
 * Unicode tables, and a run holding a capital outside ASCII is lower-cased
 * through the table of one-character lower cases. A string with a mark is
 * cut into runs of those characters and marks: a run with a capital outside
 * ASCII and no mark is lower-cased as above, a run with a mark is lower-cased,
 * normalized to NFKC again (a capital and a mark can lower-case to a pair
 * that composes: H + U+0331 to ẖ) and cut into its words. One per table: its
 * tables are those of the process that built the column (their version is in
 * the metadata).
 */
function createWordsSql(t: PgIndexTarget): string {
  const upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  const lowered =
    `(SELECT string_agg(coalesce(${
      sqlString(JSON.stringify(pgLowerMap()))
    }::jsonb ->> x.c, x.c), '' ORDER BY x.i) FROM regexp_split_to_table(m.r[1], '') ` +
    `WITH ORDINALITY AS x(c, i))`;
  const nonAsciiUpper = sqlString(pgNonAsciiUpperRegex());
  const mark = sqlString(pgMarkRegex());
  const ascii = `octet_length(m.r[1]) = char_length(m.r[1])`;
  // A run with a mark: its words, joined by spaces (NULL for none; a word holds no space).
  const recut = `(SELECT string_agg(x.w[1], ' ' ORDER BY x.n) FROM regexp_matches(normalize(` +
    `CASE WHEN m.r[1] ~ ${nonAsciiUpper} THEN ${lowered} ELSE m.r[1] END, NFKC), ` +
    `${sqlString(pgWordRegex())}, 'g') WITH ORDINALITY AS x(w, n))`;
  // A string's words joined by spaces, the runs cut as above.
  const withMarks =
    `(SELECT string_agg(CASE WHEN ${ascii} OR m.r[1] !~ ${
      sqlString(pgSpecialRegex())
    } THEN m.r[1] WHEN m.r[1] !~ ${mark} THEN ${lowered} ELSE ${recut} END, ' ' ORDER BY m.n) ` +
    `FROM regexp_matches(p.t, ${sqlString(pgRunRegex())}, 'g') WITH ORDINALITY AS m(r, n))`;
  const withoutMarks = `(SELECT string_agg(CASE WHEN ${ascii} OR m.r[1] !~ ${nonAsciiUpper} ` +
    `THEN m.r[1] ELSE ${lowered} END, ' ' ORDER BY m.n) FROM regexp_matches(p.t, ${
      sqlString(pgWordRegex())
    }, 'g') WITH ORDINALITY AS m(r, n))`;
  // ASCII capitals by translate() (cheap), the character-by-character pass only for a run that
  // holds a capital outside ASCII (most words, even outside ASCII, hold none), the runs with
  // marks only in a string that holds one (their classes are slower to match, and recutting a
  // run costs more than lower-casing it). The words are joined by spaces and split once at the
  // end. Each string is cut at MAX_SEARCH_TEXT characters first, and again after NFKC (which
  // can make one character 18): what lies beyond is never indexed, and cutting it into words
  // first cost seconds for a value of megabytes (every hit is checked against the reference, so
  // a word cut in two finds nothing wrong).
  return `CREATE OR REPLACE FUNCTION ${wordsFunction(t)}(doc jsonb) RETURNS text[] ` +
    // PL/pgSQL: its plan (with the tables' constants) is made once per session, where a SQL
    // function called from another one is planned again on every call.
    `LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fs$ BEGIN RETURN (SELECT ` +
    `coalesce(array_remove(string_to_array(string_agg(w.t, ' ' ORDER BY s.n), ' '), ''), '{}') ` +
    `FROM jsonb_path_query(doc, 'strict $.**') WITH ORDINALITY AS s(v, n), ` +
    `LATERAL (SELECT translate(replace(left(normalize(left(s.v #>> '{}', ${MAX_SEARCH_TEXT}), ` +
    `NFKC), ${MAX_SEARCH_TEXT}), ` +
    `chr(304), 'i '), '${upper}', '${upper.toLowerCase()}') AS t OFFSET 0) AS p, ` +
    `LATERAL (SELECT CASE WHEN p.t ~ ${mark} THEN ${withMarks} ELSE ${withoutMarks} END AS t) ` +
    `AS w WHERE jsonb_typeof(s.v) = 'string'); END $fs$`;
}

function tsvFunction(t: PgIndexTarget): string {
  return `${quoteIdent(t.schema)}.${quoteIdent(`${t.table}_fs_tsv`)}`;
}

function triggerFunction(t: PgIndexTarget): string {
  return `${quoteIdent(t.schema)}.${quoteIdent(`${t.table}_fs_search`)}`;
}

function pathArray(path: readonly string[]): string {
  // Segments hold no quote, backslash or NUL (checked when declared).
  return `'{${path.map((s) => `"${s}"`).join(",")}}'::text[]`;
}

/** Whether a declaration's fields each get a weight (a search may then name some of them). */
function weighted(spec: SearchSpec): boolean {
  return spec.fields !== null && spec.fields.length <= WEIGHTS.length;
}

/** The statements that create the search column, functions, trigger and index (not the fill). */
function createSql(t: PgIndexTarget, spec: SearchSpec): string[] {
  const field = `${quoteIdent(t.schema)}.flowstate_field`;
  // A tsvector literal of the words ('w':position), which PostgreSQL takes as it is (no parser,
  // no lower()): the words within the first MAX_SEARCH_TEXT characters; one over 2,047 bytes
  // cannot be a lexeme.
  const vector = (doc: string) =>
    `(SELECT coalesce(string_agg('''' || u.w || ''':' || least(u.i, 16383), ' '), '')` +
    `::tsvector FROM (SELECT a.w, a.i, sum(char_length(a.w) + 1) OVER (ORDER BY a.i) AS upto ` +
    `FROM unnest(${wordsFunction(t)}(${doc})) WITH ORDINALITY AS a(w, i)) AS u ` +
    `WHERE u.upto <= ${MAX_SEARCH_TEXT + 1} AND octet_length(u.w) < 2048)`;
  const tsv = spec.fields === null
    ? vector(`${field}(v, '{}'::text[])`)
    : spec.fields.map((f, i) => {
      const one = vector(`${field}(v, ${pathArray(f)})`);
      return weighted(spec) ? `setweight(${one}, '${WEIGHTS[i]}')` : one;
    }).join(" || ");
  const range = prefixTerms("NEW.key", spec.prefix);
  return [
    createWordsSql(t),
    `ALTER TABLE ${t.qualified} ADD COLUMN IF NOT EXISTS fs_search tsvector`,
    `CREATE OR REPLACE FUNCTION ${tsvFunction(t)}(v text) RETURNS tsvector LANGUAGE sql ` +
    `IMMUTABLE PARALLEL UNSAFE AS $fs$ SELECT ${tsv} $fs$`,
    `CREATE OR REPLACE FUNCTION ${triggerFunction(t)}() RETURNS trigger LANGUAGE plpgsql AS $fs$
BEGIN
  IF ${range.length === 0 ? "true" : range.join(" AND ")} THEN
    NEW.fs_search := ${tsvFunction(t)}(NEW.value);
  ELSE
    NEW.fs_search := NULL;
  END IF;
  RETURN NEW;
END
$fs$`,
    `CREATE TRIGGER ${quoteIdent(`${t.table}_fs_search`)} BEFORE INSERT OR UPDATE OF key, value ` +
    `ON ${t.qualified} FOR EACH ROW EXECUTE FUNCTION ${triggerFunction(t)}()`,
  ];
}

function dropSql(t: PgIndexTarget): string[] {
  return [
    `DROP TRIGGER IF EXISTS ${quoteIdent(`${t.table}_fs_search`)} ON ${t.qualified}`,
    `DROP FUNCTION IF EXISTS ${triggerFunction(t)}()`,
    `ALTER TABLE ${t.qualified} DROP COLUMN IF EXISTS fs_search`,
    `DROP FUNCTION IF EXISTS ${tsvFunction(t)}(text)`,
    `DROP FUNCTION IF EXISTS ${wordsFunction(t)}(jsonb)`,
  ];
}

async function builtFor(sql: Pick<Sql, "unsafe">, t: PgIndexTarget): Promise<string | null> {
  const rows = await sql.unsafe<{ value: string }[]>(
    `SELECT value FROM ${metaTable(t)} WHERE key = 'search'`,
  );
  return rows[0]?.value ?? null;
}

/** The oldest PostgreSQL with `normalize(text, NFKC)`, which the words function calls. */
export const MIN_SEARCH_SERVER_VERSION = 130000;

/**
 * Refuse to build a search column on a server without `normalize()`
 * (PostgreSQL 12 and older): a clear error at open rather than one at the
 * first write. (The database is UTF8, which `normalize` also needs: the
 * plugin refuses any other encoding at open.)
 */
async function assertNormalize(tx: Pick<Sql, "unsafe">): Promise<void> {
  const [{ num, version }] = await tx.unsafe<{ num: number; version: string }[]>(
    `SELECT current_setting('server_version_num')::int AS num, ` +
      `current_setting('server_version') AS version`,
  );
  const problem = searchServerProblem(num, version);
  if (problem !== undefined) throw new RangeError(problem);
}

/**
 * Why a server of `server_version_num` `num` cannot keep a search column
 * (`undefined`: it can).
 */
export function searchServerProblem(num: number, version: string): string | undefined {
  if (num >= MIN_SEARCH_SERVER_VERSION) return undefined;
  return `Cannot build the search index: PostgreSQL ${version} has no normalize(text, NFKC), ` +
    `which search needs to cut words (text in NFKC); search on postgres needs PostgreSQL 13 or ` +
    `newer: upgrade the server, or open the store without "search" (nothing was changed)`;
}

/**
 * Build (or rebuild, or drop) the search column for `spec`, under the
 * table's advisory lock. Resolves whether search is native.
 */
export async function preparePgSearch(
  sql: Sql,
  t: PgIndexTarget,
  spec: SearchSpec | undefined,
  progress: (message: string) => void,
  onBuild?: PrepareIndexesRequest["onBuild"],
  txPool: Transactions = { begin: (fn) => sql.begin(fn) as never },
): Promise<boolean> {
  // The declaration and the words' format: a column built another way (an older version's
  // `lower()` and `[[:alnum:]]`, other Unicode tables) is rebuilt.
  if (spec !== undefined) await loadSearchWordsFormat();
  const wanted = spec === undefined ? null : searchMetaValue(spec);
  if (await builtFor(sql, t) === wanted) return spec !== undefined;
  await txPool.begin(async (tx) => {
    await tx.unsafe(`SELECT pg_advisory_xact_lock(${LOCK_CLASS}, ${t.lockId})`);
    const had = await builtFor(tx, t);
    if (had === wanted) return;
    if (spec !== undefined) await assertNormalize(tx);
    for (const statement of dropSql(t)) await tx.unsafe(statement);
    await tx.unsafe(`DELETE FROM ${metaTable(t)} WHERE key = 'search'`);
    if (spec === undefined) {
      progress("dropped the search index: no longer declared");
      return;
    }
    await tx.unsafe(createCastFunctionSql(t.schema));
    for (const statement of createIndexFunctionsSql(t.schema)) await tx.unsafe(statement);
    for (const statement of createSql(t, spec)) await tx.unsafe(statement);
    const range = prefixTerms("key", spec.prefix);
    const where = range.length === 0 ? "" : ` WHERE ${range.join(" AND ")}`;
    const [{ n }] = await tx.unsafe<{ n: number }[]>(
      `SELECT count(*)::float8 AS n FROM ${t.qualified}${where}`,
    );
    const started = performance.now();
    if (n > BUILD_NOTICE_ENTRIES) progress(`building the search index: ${n} entries…`);
    const event = {
      index: "search",
      label: `the search index under ${JSON.stringify(spec.prefix)}`,
    };
    onBuild?.({ ...event, phase: "start", total: n });
    await tx.unsafe(`UPDATE ${t.qualified} SET fs_search = ${tsvFunction(t)}(value)${where}`);
    await tx.unsafe(
      `CREATE INDEX ${quoteIdent(`${t.table}_fs_search_gin`)} ON ${t.qualified} ` +
        `USING gin (fs_search)`,
    );
    await tx.unsafe(`INSERT INTO ${metaTable(t)} (key, value) VALUES ('search', $1)`, [wanted!]);
    if (n > BUILD_NOTICE_ENTRIES) {
      progress(`built the search index in ${Math.round(performance.now() - started)} ms`);
    }
    onBuild?.({ ...event, phase: "done", done: n, total: n });
  });
  return spec !== undefined;
}

const TERM_ENCODER = new TextEncoder();
/** The most words a search sends to PostgreSQL as a tsquery; more go to the core's scan. */
const MAX_TSQUERY_TERMS = 1_000;
/** The most bytes of words a search sends to PostgreSQL as a tsquery (it fails near 1 MB). */
const MAX_TSQUERY_BYTES = 256 * 1024;

/**
 * A search through the GIN index, or `undefined` when the request does not
 * fit the declaration (the core scans). `run` sends one statement.
 */
export async function pgSearch(
  run: (text: string, params: unknown[]) => Promise<(EntryRow & { score: number })[]>,
  table: string,
  spec: SearchSpec,
  request: SearchRequest,
  now: number,
): Promise<RawSearchHit[] | undefined> {
  if (!coversPrefix(spec.prefix, request.prefix)) return undefined;
  // A word of 2,048 bytes or more is not in the index (nor can it be in a tsquery), and a
  // tsquery of thousands of words or about a megabyte fails ("stack depth limit exceeded",
  // "value is too big in tsquery"): the core's scan answers those.
  if (request.terms.length > MAX_TSQUERY_TERMS) return undefined;
  let bytes = 0;
  for (const term of request.terms) {
    const length = TERM_ENCODER.encode(term).length;
    if (length >= 2048) return undefined;
    bytes += length + 1;
  }
  if (bytes > MAX_TSQUERY_BYTES) return undefined;
  let weights = "";
  if (request.fields !== null) {
    if (!weighted(spec)) return undefined;
    const names = spec.fields!.map((f) => f.join("\0"));
    for (const f of request.fields) {
      const i = names.indexOf(f.join("\0"));
      if (i < 0) return undefined;
      weights += WEIGHTS[i];
    }
  }
  const query = request.terms.map((term) => `'${pgTerm(term)}'${weights ? `:${weights}` : ""}`)
    .join(" & ");
  const params: unknown[] = [query, now];
  // The column is NULL outside the declaration's prefix: bounds only for a narrower one (the
  // planner would otherwise walk the key index over the whole prefix instead of the GIN one).
  const where = request.prefix.length === spec.prefix.length ? [] : boundsWhere(
    byteBounds({ prefix: request.prefix }),
    (b) => `$${params.push(b)}::bytea`,
    "e.key",
  );
  const rows = await run(
    `SELECT e.key, e.value, e.version, e.expires_at, ` +
      `ts_rank(e.fs_search, $1::tsquery, 1)::float8 AS score FROM ${table} AS e ` +
      `WHERE e.fs_search @@ $1::tsquery AND (e.expires_at IS NULL OR e.expires_at > $2::float8)${
        where.map((w) => ` AND ${w}`).join("")
      } ORDER BY score DESC, e.key LIMIT ${request.limit}`,
    params,
  );
  const hits: RawSearchHit[] = [];
  for (const row of rows) {
    const entry = entryOf(row);
    // Tokenizers differ at the margins: keep only what the reference search finds.
    if (searchScore(parseJson(entry.value), request.terms, request.fields) === undefined) {
      continue;
    }
    hits.push({ ...entry, score: row.score });
  }
  // A dropped hit from a full page leaves the page short: let the core answer exactly.
  if (hits.length < rows.length && rows.length === request.limit) return undefined;
  return hits;
}
