import { postgresTimestamp } from '../gcore/api-date.js';
import type { Sql } from '../db/db.js';
import { contentHash, diffSnapshots } from '../images/image-diff.js';
import { PG_TYPES } from '../images/image-fields.js';
import { fieldsOthersCarry, mergedState, resolvedKind, storedColumns } from '../images/image-kinds.js';
import type { ChangeType, FieldChange, ImageState, Observation, Triple } from '../interfaces.js';
import { parseJsonExactly } from '../images/json-text.js';
import { tripleKey } from '../images/triple.js';
import { jsonDocument } from './jsonDocument.js';
import type { Tx } from './tripleLock.js';

export type ObservationResult = 'unchanged' | 'changed';

interface Stored {
  key: string;
  kind: string;
  content_hash: string;
  deleted_at: string | null;
  newest: string;
  version_id: number | null;
  /** States as jsonb text, parsed exactly (json-text.ts) so big numbers compare by value. */
  current_state: string | null;
  last_state: string | null;
}

const state = (text: string | null): ImageState => (text === null ? {} : (parseJsonExactly(text) as ImageState));

/**
 * An observation as it will be stored: its state merged with what other kinds'
 * endpoints said of the image (image-kinds.ts), hashed again when that added
 * anything, and the kind the image is stored as.
 */
type Merged = Observation & { storedKind: string };

interface Change {
  observation: Merged;
  type: ChangeType;
  fields: FieldChange[];
  closeVersion: number | null;
  /** The observation before this one (null: first sighting): who made the change acted in between. */
  observedBefore: string | null;
}

const columns = (triples: Triple[]) => ({
  p: triples.map((t) => t.projectId),
  r: triples.map((t) => t.regionId),
  i: triples.map((t) => t.imageId),
});

/**
 * Stores a batch of validated answers that recordUnchanged did not take, in
 * one transaction of a dozen statements however large the batch. Writers of a
 * triple are serialized by an advisory lock (taken in key order, so batches
 * cannot deadlock on them); an answer older than what is stored (a slow
 * request overtaken by a newer one) does not roll the state back.
 */
export async function recordChanges(sql: Sql, observations: Observation[]): Promise<Map<string, ObservationResult>> {
  const newest = new Map<string, Observation>();
  for (const o of observations) {
    const seen = newest.get(tripleKey(o.triple));
    if (!seen || seen.observedAt < o.observedAt) newest.set(tripleKey(o.triple), o);
  }
  const results = new Map<string, ObservationResult>(observations.map((o) => [tripleKey(o.triple), 'unchanged']));
  if (newest.size === 0) return results;
  await sql.begin(async (tx) => {
    const keys = [...newest.keys()].sort();
    await tx`SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM (SELECT k FROM unnest(${keys}::text[]) k ORDER BY k) s`;
    const triples = [...newest.values()].map((o) => o.triple);
    const { p, r, i } = columns(triples);
    const stored = await tx<Stored[]>`
      SELECT x.project_id || '/' || x.region_id || '/' || x.image_id AS key, im.kind, im.content_hash, im.deleted_at,
        greatest(im.last_seen_at, im.deleted_at) AS newest, cur.id AS version_id, cur.state::text AS current_state, last.state::text AS last_state
      FROM unnest(${p}::int[], ${r}::int[], ${i}::text[]) AS x(project_id, region_id, image_id)
      JOIN images im USING (project_id, region_id, image_id)
      LEFT JOIN image_versions cur ON (cur.project_id, cur.region_id, cur.image_id) = (x.project_id, x.region_id, x.image_id)
        AND cur.valid_to IS NULL
      LEFT JOIN LATERAL (
        SELECT w.state FROM image_versions w
        WHERE (w.project_id, w.region_id, w.image_id) = (x.project_id, x.region_id, x.image_id)
        ORDER BY w.valid_from DESC LIMIT 1) last ON im.deleted_at IS NOT NULL`;
    const byKey = new Map(stored.map((row) => [row.key, row]));

    const seenAgain: Merged[] = [];
    // The same state under another hash (one made by an older release, or by another kind's endpoint) or under
    // another kind: no version, the stored hash and kind are brought up to date.
    const rehashed: Array<{ observation: Merged; versionId: number }> = [];
    const changes: Change[] = [];
    for (const [key, answer] of newest) {
      const row = byKey.get(key);
      if (row && new Date(row.newest) > answer.observedAt) continue;
      const observation = merged(answer, row);
      if (row && row.deleted_at === null && row.content_hash === observation.contentHash && row.kind === observation.storedKind) {
        seenAgain.push(observation);
      } else if (!row) {
        changes.push({
          observation,
          type: 'created',
          fields: [{ field: null, oldValue: null, newValue: observation.snapshot }],
          closeVersion: null,
          observedBefore: null,
        });
      } else if (row.deleted_at !== null) {
        changes.push({
          observation,
          type: 'restored',
          fields: [{ field: null, oldValue: state(row.last_state), newValue: observation.snapshot }],
          closeVersion: null,
          observedBefore: row.newest,
        });
      } else {
        const fields = diffSnapshots(state(row.current_state), observation.snapshot);
        if (fields.length > 0)
          changes.push({ observation, type: 'updated', fields, closeVersion: row.version_id, observedBefore: row.newest });
        else rehashed.push({ observation, versionId: row.version_id! });
      }
    }
    await advanceLastSeen(tx, [...seenAgain, ...rehashed.map((r) => r.observation)]);
    await refreshHashes(tx, rehashed);
    if (changes.length > 0) await writeChanges(tx, changes);
    for (const change of changes) results.set(tripleKey(change.observation.triple), 'changed');
    await markAttempts(
      tx,
      [...newest.values()].map((o) => ({ triple: o.triple, outcome: results.get(tripleKey(o.triple))! })),
    );
  });
  return results;
}

/** `answer` merged with the stored state its kind does not speak for; a kind that shares every field merges nothing. */
function merged(answer: Observation, row: Stored | undefined): Merged {
  const storedKind = resolvedKind(row?.kind ?? null, answer.kind);
  if (!row || fieldsOthersCarry(answer.kind).size === 0) return { ...answer, storedKind };
  const snapshot = mergedState(answer.kind, state(row.deleted_at === null ? row.current_state : row.last_state), answer.snapshot);
  return snapshot === answer.snapshot ? { ...answer, storedKind } : { ...answer, snapshot, contentHash: contentHash(snapshot), storedKind };
}

async function advanceLastSeen(tx: Tx, observations: Observation[]): Promise<void> {
  if (observations.length === 0) return;
  const { p, r, i } = columns(observations.map((o) => o.triple));
  // The account follows the configuration: an image moved to another account is fetched with its key from then on.
  await tx`
    UPDATE image_rows im SET seen_at = greatest(im.seen_at, x.at), account = x.account
    FROM unnest(${p}::int[], ${r}::int[], ${i}::text[], ${observations.map((o) => o.observedAt.toISOString())}::timestamptz[],
      ${observations.map((o) => o.account)}::text[])
      AS x(project_id, region_id, image_id, at, account)
    WHERE (im.project_id, im.region_id, im.image_id) = (x.project_id, x.region_id, x.image_id)`;
}

async function refreshHashes(tx: Tx, rehashed: Array<{ observation: Merged; versionId: number }>): Promise<void> {
  if (rehashed.length === 0) return;
  const rows = rehashed.map(({ observation: o, versionId }) => ({
    version_id: versionId,
    project_id: o.triple.projectId,
    region_id: o.triple.regionId,
    image_id: o.triple.imageId,
    content_hash: o.contentHash,
    raw: o.raw,
    kind: o.storedKind,
  }));
  await tx`
    WITH x AS (SELECT * FROM jsonb_to_recordset(${jsonDocument(tx, rows)})
      AS x(version_id bigint, project_id int, region_id int, image_id text, content_hash text, raw jsonb, kind text)),
    versions AS (UPDATE image_versions v SET content_hash = x.content_hash FROM x WHERE v.id = x.version_id)
    UPDATE image_rows im SET content_hash = x.content_hash, raw = x.raw, kind = x.kind
    FROM x WHERE (im.project_id, im.region_id, im.image_id) = (x.project_id, x.region_id, x.image_id)`;
}

async function writeChanges(tx: Tx, changes: Change[]): Promise<void> {
  const closing = changes.filter((c) => c.closeVersion !== null);
  if (closing.length > 0) {
    await tx`
      UPDATE image_versions v SET valid_to = x.at
      FROM unnest(${closing.map((c) => c.closeVersion!)}::bigint[], ${closing.map((c) => c.observation.observedAt.toISOString())}::timestamptz[])
        AS x(id, at)
      WHERE v.id = x.id`;
  }
  const versions = await tx<{ id: number; key: string }[]>`
    INSERT INTO image_versions (project_id, region_id, image_id, valid_from, content_hash, state)
    SELECT x.project_id, x.region_id, x.image_id, x.valid_from, x.content_hash, x.state
    FROM jsonb_to_recordset(${jsonDocument(
      tx,
      changes.map(({ observation: o }) => ({
        project_id: o.triple.projectId,
        region_id: o.triple.regionId,
        image_id: o.triple.imageId,
        valid_from: o.observedAt.toISOString(),
        content_hash: o.contentHash,
        state: o.snapshot,
      })),
    )}) AS x(project_id int, region_id int, image_id text, valid_from timestamptz, content_hash text, state jsonb)
    RETURNING id, project_id || '/' || region_id || '/' || image_id AS key`;
  const versionOf = new Map(versions.map((v) => [v.key, v.id]));
  await tx`
    INSERT INTO image_changes (project_id, region_id, image_id, version_id, change_type, field, old_value, new_value, changed_at,
      observed_before)
    SELECT x.project_id, x.region_id, x.image_id, x.version_id, x.change_type, x.field, x.old_value, x.new_value, x.changed_at,
      x.observed_before
    FROM jsonb_to_recordset(${jsonDocument(
      tx,
      changes
        .flatMap(({ observation: o, type, fields, observedBefore }) =>
          fields.map((f) => ({
            project_id: o.triple.projectId,
            region_id: o.triple.regionId,
            image_id: o.triple.imageId,
            version_id: versionOf.get(tripleKey(o.triple)),
            change_type: type,
            field: f.field,
            old_value: f.oldValue ?? null,
            new_value: f.newValue ?? null,
            changed_at: o.observedAt.toISOString(),
            observed_before: observedBefore,
          })),
        )
        .map((row, n) => ({ ...row, n })),
    )}) AS x(project_id int, region_id int, image_id text, version_id bigint,
      change_type text, field text, old_value jsonb, new_value jsonb, changed_at timestamptz, observed_before timestamptz, n int)
    ORDER BY x.n`;
  await writeImageRows(
    tx,
    changes.map((c) => c.observation),
  );
  await writeTags(
    tx,
    changes.map((c) => c.observation),
  );
}

// The typed columns come from the kinds' field tables (image-kinds.ts), read
// at each write: a kind defined later (in a test) fills the columns it shares.
// API dates travel as text inside JSON, so Postgres keeps their microseconds (a
// timestamptz parameter would be rounded to milliseconds).
function imageColumns() {
  const columns = storedColumns();
  const names = columns.map((c) => c.column);
  const record = [
    'project_id int, region_id int, image_id text, account text, kind text',
    ...columns.map((c) => `${c.column} ${PG_TYPES[c.kind]}`),
    'raw jsonb, content_hash text, observed_at timestamptz',
  ].join(', ');
  return { columns, list: names.join(', '), updates: names.map((c) => `${c} = EXCLUDED.${c}`).join(', '), record };
}

function columnValues(o: Merged, columns: ReturnType<typeof storedColumns>): Record<string, unknown> {
  const row: Record<string, unknown> = {
    project_id: o.triple.projectId,
    region_id: o.triple.regionId,
    image_id: o.triple.imageId,
    account: o.account,
    kind: o.storedKind,
    raw: o.raw,
    content_hash: o.contentHash,
    observed_at: o.observedAt.toISOString(),
  };
  for (const { field, column, kind } of columns) {
    const value = o.snapshot[field];
    row[column] = kind === 'datetime' && typeof value === 'string' ? postgresTimestamp(value) : value;
  }
  return row;
}

async function writeImageRows(tx: Tx, observations: Merged[]): Promise<void> {
  const { columns, list, updates, record } = imageColumns();
  await tx`
    INSERT INTO image_rows (project_id, region_id, image_id, account, kind, ${tx.unsafe(list)}, raw, content_hash,
      first_seen_at, seen_at, last_changed_at, deleted_at)
    SELECT project_id, region_id, image_id, account, kind, ${tx.unsafe(list)}, raw, content_hash, observed_at, observed_at,
      observed_at, NULL
    FROM jsonb_to_recordset(${jsonDocument(
      tx,
      observations.map((o) => columnValues(o, columns)),
    )}) AS x(${tx.unsafe(record)})
    ON CONFLICT (project_id, region_id, image_id) DO UPDATE SET
      ${tx.unsafe(updates)}, kind = EXCLUDED.kind,
      account = EXCLUDED.account, raw = EXCLUDED.raw, content_hash = EXCLUDED.content_hash, seen_at = EXCLUDED.seen_at,
      last_changed_at = EXCLUDED.last_changed_at, deleted_at = NULL`;
}

async function writeTags(tx: Tx, observations: Observation[]): Promise<void> {
  const { p, r, i } = columns(observations.map((o) => o.triple));
  await tx`
    DELETE FROM image_tags t USING unnest(${p}::int[], ${r}::int[], ${i}::text[]) AS x(project_id, region_id, image_id)
    WHERE (t.project_id, t.region_id, t.image_id) = (x.project_id, x.region_id, x.image_id)`;
  const rows = observations.flatMap(({ triple, snapshot }) =>
    Object.entries(snapshot.tags).map(([key, tag]) => ({
      project_id: triple.projectId,
      region_id: triple.regionId,
      image_id: triple.imageId,
      key,
      value: tag.value,
      read_only: tag.read_only,
    })),
  );
  if (rows.length === 0) return;
  await tx`
    INSERT INTO image_tags (project_id, region_id, image_id, key, value, read_only)
    SELECT * FROM jsonb_to_recordset(${jsonDocument(tx, rows)})
      AS x(project_id int, region_id int, image_id text, key text, value text, read_only boolean)`;
}

async function markAttempts(tx: Tx, attempts: Array<{ triple: Triple; outcome: ObservationResult }>): Promise<void> {
  const { p, r, i } = columns(attempts.map((a) => a.triple));
  await tx`
    UPDATE targets t SET prev_attempt_at = last_attempt_at, last_attempt_at = now(), last_outcome = x.outcome, last_error = NULL, last_status = 200
    FROM unnest(${p}::int[], ${r}::int[], ${i}::text[], ${attempts.map((a) => a.outcome)}::text[])
      AS x(project_id, region_id, image_id, outcome)
    WHERE (t.project_id, t.region_id, t.image_id) = (x.project_id, x.region_id, x.image_id)`;
}
