import { postgresTimestamp } from '../gcore/api-date.js';
import type { UserAction } from '../gcore/user-action.js';
import { jsonDocument } from './jsonDocument.js';
import type { Tx } from './tripleLock.js';

/**
 * Stores audit-log entries read from `account`'s log, once each (by id). An
 * entry stored before is left as it is when it comes back the same (the
 * follower's reads overlap), and is replaced when it comes back changed (its
 * `raw` differs: Gcore completed or corrected it, and is_complete is replaced
 * with the rest); either way the accounts whose logs hold it are noted.
 * Returns the ids new to this account or changed: what it has yet to act on.
 * An id a page holds twice is stored as its last copy.
 */
export async function recordActions(tx: Tx, account: string, actions: UserAction[]): Promise<Set<string>> {
  if (actions.length === 0) return new Set();
  const byId = new Map(actions.map((a) => [a.id, a]));
  const rows = [...byId.values()].map((a) => ({
    action_id: a.id,
    acted_at: postgresTimestamp(a.timestamp),
    api_group: a.apiGroup,
    action_type: a.actionType,
    email: a.email,
    user_id: a.userId,
    token_id: a.tokenId,
    issued_by_user_id: a.issuedByUserId,
    source_user_ip: a.sourceUserIp,
    user_agent: a.userAgent,
    project_id: a.projectId,
    region_id: a.regionId,
    image_id: a.imageIds[0] ?? null,
    invalid_fields: a.invalidFields.length > 0 ? a.invalidFields : null,
    is_complete: a.isComplete,
    raw: a.raw,
  }));
  const stored = await tx<{ action_id: string }[]>`
    INSERT INTO image_actions (action_id, accounts, acted_at, api_group, action_type, email, user_id, token_id, issued_by_user_id,
      source_user_ip, user_agent, project_id, region_id, image_id, invalid_fields, is_complete, raw)
    SELECT x.action_id, ARRAY[${account}::text], x.acted_at, x.api_group, x.action_type, x.email, x.user_id, x.token_id, x.issued_by_user_id,
      x.source_user_ip, x.user_agent, x.project_id, x.region_id, x.image_id, x.invalid_fields, x.is_complete, x.raw
    FROM jsonb_to_recordset(${jsonDocument(tx, rows)}) AS x(action_id text, acted_at timestamptz, api_group text, action_type text,
      email text, user_id bigint, token_id bigint, issued_by_user_id bigint, source_user_ip text, user_agent text, project_id bigint,
      region_id bigint, image_id text, invalid_fields text[], is_complete boolean, raw jsonb)
    ON CONFLICT (action_id) DO UPDATE SET
      accounts = CASE WHEN ${account}::text = ANY(image_actions.accounts) THEN image_actions.accounts
        ELSE image_actions.accounts || ${account}::text END,
      acted_at = excluded.acted_at, api_group = excluded.api_group, action_type = excluded.action_type, email = excluded.email,
      user_id = excluded.user_id, token_id = excluded.token_id, issued_by_user_id = excluded.issued_by_user_id,
      source_user_ip = excluded.source_user_ip, user_agent = excluded.user_agent, project_id = excluded.project_id,
      region_id = excluded.region_id, image_id = excluded.image_id, invalid_fields = excluded.invalid_fields,
      is_complete = excluded.is_complete, raw = excluded.raw
      WHERE NOT ${account}::text = ANY(image_actions.accounts) OR image_actions.raw IS DISTINCT FROM excluded.raw
    RETURNING action_id`;
  return new Set(stored.map((row) => row.action_id));
}
