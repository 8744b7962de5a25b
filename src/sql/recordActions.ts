import { postgresTimestamp } from '../api-date.js';
import type { UserAction } from '../user-action.js';
import { jsonDocument } from './jsonDocument.js';
import type { Tx } from './tripleLock.js';

/**
 * Stores audit-log entries read from `account`'s log. An entry stored before
 * is left as it is, but for noting that this account's log holds it too.
 * Returns the ids new to this account: what it has yet to act on.
 */
export async function recordActions(tx: Tx, account: string, actions: UserAction[]): Promise<Set<string>> {
  if (actions.length === 0) return new Set();
  const rows = actions.map((a) => ({
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
    raw: a.raw,
  }));
  const stored = await tx<{ action_id: string }[]>`
    INSERT INTO image_actions (action_id, accounts, acted_at, api_group, action_type, email, user_id, token_id, issued_by_user_id,
      source_user_ip, user_agent, project_id, region_id, image_id, invalid_fields, raw)
    SELECT x.action_id, ARRAY[${account}::text], x.acted_at, x.api_group, x.action_type, x.email, x.user_id, x.token_id, x.issued_by_user_id,
      x.source_user_ip, x.user_agent, x.project_id, x.region_id, x.image_id, x.invalid_fields, x.raw
    FROM jsonb_to_recordset(${jsonDocument(tx, rows)}) AS x(action_id text, acted_at timestamptz, api_group text, action_type text,
      email text, user_id bigint, token_id bigint, issued_by_user_id bigint, source_user_ip text, user_agent text, project_id bigint,
      region_id bigint, image_id text, invalid_fields text[], raw jsonb)
    ON CONFLICT (action_id) DO UPDATE SET accounts = image_actions.accounts || ${account}::text
      WHERE NOT ${account}::text = ANY(image_actions.accounts)
    RETURNING action_id`;
  return new Set(stored.map((row) => row.action_id));
}
