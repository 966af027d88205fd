/**
 * The plain-set feed-commit function exactly as Flowstate's first postgres
 * feed table (0.4.0-dev, `<table>_feed_set_v2`) created it: a fixture for the
 * upgrade tests, where processes of that version keep calling it beside
 * processes that call `_feed_set_v3`.
 *
 * @module
 */

/**
 * `CREATE OR REPLACE FUNCTION "<schema>"."<table>_feed_set_v2"(…)` of a
 * store whose table lock id is `lockId` (`hashtext('<schema>.<table>')`).
 *
 * @example
 * ```ts
 * import { feedSetV2Ddl } from "./feed_set_v2.ts";
 * import assert from "node:assert/strict";
 * assert.match(feedSetV2Ddl("s", "t", 7), /"s"\."t_feed_set_v2"/);
 * ```
 */
export function feedSetV2Ddl(schema: string, table: string, lockId: number): string {
  const t = `"${schema}"."${table}"`;
  const ft = `"${schema}"."${table}_feed"`;
  const meta = `"${schema}"."${table}_meta"`;
  return `CREATE OR REPLACE FUNCTION "${schema}"."${table}_feed_set_v2"(bytea, text, text, ` +
    `float8, float8, text, text) RETURNS void LANGUAGE plpgsql VOLATILE ` +
    `SET enable_seqscan = off AS $fs$
DECLARE v_seq bigint; v_key bigint; v_head bigint;
BEGIN
v_key := hashtextextended(encode($1, 'hex'), ${lockId}); v_head := hashtextextended('00ff0066656564006865616400', ${lockId});
PERFORM pg_advisory_xact_lock_shared(1179407188, ${lockId}), pg_advisory_xact_lock(least(v_key, v_head)), pg_advisory_xact_lock(greatest(v_key, v_head));
WITH p AS MATERIALIZED (SELECT version FROM ${t} AS e WHERE e.key = $1 AND (e.expires_at IS NULL OR e.expires_at > $5::float8)), u AS (INSERT INTO ${t} (key, value, version, expires_at) VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version, expires_at = excluded.expires_at) INSERT INTO ${ft} (seq, at, key, op, value, version, previous_version, expires_at, by) SELECT h.seq + 1, $5, $1, 'set', $2, $3, (SELECT version FROM p), $4, $6 FROM (SELECT COALESCE((SELECT max(seq) FROM ${ft}), (SELECT value::bigint FROM ${meta} WHERE key = 'feed_floor'), 0) AS seq, pg_notify($7, '') AS n) AS h RETURNING seq INTO v_seq;
IF v_seq = 1 THEN INSERT INTO ${meta} (key, value) VALUES ('feed_since', $5::text) ON CONFLICT (key) DO NOTHING; END IF;
END
$fs$`;
}
