import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { connectPostgres } from '../db.js';
import { ConfigError } from '../errors.js';
import { runMigrations } from '../migrate.js';
import { parseDuration } from '../schedule.js';
import { changeTable } from '../change-table.js';
import { listChanges } from '../sql/listChanges.js';
import type { CommandContext } from './context.js';

function parseSince(text: string, now = Date.now()): Date | null {
  if (/^\d/.test(text) && !text.includes('-')) {
    try {
      return new Date(now - parseDuration(text));
    } catch {
      return null;
    }
  }
  const at = new Date(text);
  return Number.isNaN(at.getTime()) ? null : at;
}

function parseId(name: string, text: string | undefined, problems: string[]): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) problems.push(`--${name}: must be a positive whole number (got "${text}")`);
  return value;
}

/** What changed since a moment: a table for people, --json for machines. */
export async function changesCommand({ args }: CommandContext): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      since: { type: 'string', default: '24h' },
      project: { type: 'string' },
      region: { type: 'string' },
      field: { type: 'string' },
      limit: { type: 'string', default: '1000' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const problems: string[] = [];
  const since = parseSince(values.since);
  if (!since) problems.push(`--since: "${values.since}" is neither a duration (24h, 7d) nor an ISO 8601 time`);
  const projectId = parseId('project', values.project, problems);
  const regionId = parseId('region', values.region, problems);
  const limit = parseId('limit', values.limit, problems)!;
  if (problems.length > 0) throw new ConfigError('changes flags', problems);
  const config = loadConfig();
  await runMigrations(config.databaseUrl);
  const sql = await connectPostgres(config.databaseUrl, { max: 1 });
  try {
    const rows = await listChanges(sql, { since: since!, projectId, regionId, field: values.field, limit });
    process.stdout.write(values.json ? `${JSON.stringify(rows)}\n` : `${changeTable(rows)}\n`);
    return 0;
  } finally {
    await sql.end({ timeout: 5 });
  }
}
