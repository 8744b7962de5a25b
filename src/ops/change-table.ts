// The change log as a person reads it on a terminal.
import { inert } from './log-format.js';
import type { ChangeRow } from '../sql/listChanges.js';

function cell(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
}

/** Who made a change: the actor's email (or user id, for Gcore's own actions), "+N" when N more actions fell in its window. */
function who(r: ChangeRow): string {
  if (r.actor_candidates === 0) return '';
  const actor = r.actor_email ?? (r.actor_user_id === null ? '(no user)' : `user ${r.actor_user_id}`);
  return `${actor} (${r.action_type ?? '?'})${r.actor_candidates > 1 ? ` +${r.actor_candidates - 1}` : ''}`;
}

/**
 * Changes as aligned columns for a terminal, long values cut, every cell inert (a name or tag
 * from the API may hold a terminal's control characters). "by" is always
 * there, empty where the audit log named nobody (a deployment that does not
 * follow it, or a change from before it did): the same columns every time.
 */
export function changeTable(rows: ChangeRow[]): string {
  if (rows.length === 0) return 'no changes';
  const header = ['changed_at', 'triple', 'image', 'change', 'field', 'old', 'new', 'by'];
  const lines = rows.map((r) =>
    [
      new Date(r.changed_at).toISOString().replace('.000Z', 'Z'),
      `${r.project_id}/${r.region_id}/${r.image_id}`,
      cell(r.image_name),
      r.change_type,
      r.field ?? '',
      cell(r.old_value),
      cell(r.new_value),
      who(r),
    ].map(inert),
  );
  const widths = header.map((h, c) => Math.max(h.length, ...lines.map((l) => l[c]!.length)));
  const format = (cells: string[]) =>
    cells
      .map((text, c) => text.padEnd(widths[c]!))
      .join('  ')
      .trimEnd();
  return [format(header), ...lines.map(format)].join('\n');
}
