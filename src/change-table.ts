// The change log as a person reads it on a terminal.
import type { ChangeRow } from './sql/listChanges.js';

function cell(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
}

/** Changes as aligned columns for a terminal, long values cut. */
export function changeTable(rows: ChangeRow[]): string {
  if (rows.length === 0) return 'no changes';
  const header = ['changed_at', 'triple', 'image', 'change', 'field', 'old', 'new'];
  const lines = rows.map((r) => [
    new Date(r.changed_at).toISOString().replace('.000Z', 'Z'),
    `${r.project_id}/${r.region_id}/${r.image_id}`,
    cell(r.image_name),
    r.change_type,
    r.field ?? '',
    cell(r.old_value),
    cell(r.new_value),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...lines.map((l) => l[c]!.length)));
  const format = (cells: string[]) =>
    cells
      .map((text, c) => text.padEnd(widths[c]!))
      .join('  ')
      .trimEnd();
  return [format(header), ...lines.map(format)].join('\n');
}
