import { parseArgs } from 'node:util';
import { ACCOUNT_NAME, ACCOUNT_NAME_RULE } from '../config/accounts.js';
import { loadConfig } from '../config/config.js';
import { ConfigError } from '../errors.js';
import { INT4_MAX, parseIsoTime, readWholeNumber, timeProblem } from '../config/input-ranges.js';
import { openStore } from '../queues/services.js';
import { parseDuration } from '../schedule/schedule.js';
import { changeTable } from '../ops/change-table.js';
import { listChanges } from '../sql/listChanges.js';
import type { CommandContext } from './context.js';

const MAX_LIMIT = 100_000;

/** parseDuration, or null when the text is not a duration. */
function durationMs(text: string): number | null {
  try {
    return parseDuration(text);
  } catch {
    return null;
  }
}

/** A duration back from now (24h, 7d) or an ISO 8601 time, within what Postgres and Date can hold. */
function parseSince(text: string, problems: string[], now = Date.now()): Date | undefined {
  const isDuration = /^\d/.test(text) && !text.includes('-');
  const back = isDuration ? durationMs(text) : null;
  // No time back from now could only ever list nothing: a slip, not a question.
  if (back === 0) {
    problems.push(`--since: "${text}" is no time at all: give a duration longer than 0 (24h, 7d)`);
    return undefined;
  }
  const since = isDuration ? (back === null ? null : new Date(now - back)) : parseIsoTime(text);
  if (!since) {
    problems.push(`--since: "${text}" is neither a duration (24h, 7d) nor an ISO 8601 time`);
    return undefined;
  }
  const problem = timeProblem(since);
  if (problem) problems.push(`--since: "${text}" ${problem}`);
  return since;
}

function readFlag(name: string, text: string | undefined, max: number, problems: string[]): number | undefined {
  return text === undefined ? undefined : readWholeNumber(`--${name}`, text, 1, max, problems);
}

/** What changed since a moment: a table for people, --json for machines. */
export async function changesCommand({ args }: CommandContext): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      since: { type: 'string', default: '24h' },
      project: { type: 'string' },
      region: { type: 'string' },
      account: { type: 'string' },
      field: { type: 'string' },
      limit: { type: 'string', default: '1000' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const problems: string[] = [];
  const since = parseSince(values.since, problems);
  const projectId = readFlag('project', values.project, INT4_MAX, problems);
  const regionId = readFlag('region', values.region, INT4_MAX, problems);
  const limit = readFlag('limit', values.limit, MAX_LIMIT, problems);
  if (values.account !== undefined && !ACCOUNT_NAME.test(values.account)) {
    problems.push(`--account: must be an account name, ${ACCOUNT_NAME_RULE} (got ${JSON.stringify(values.account)})`);
  }
  // An empty --field would read as no filter at all, silently.
  if (values.field?.trim() === '') problems.push('--field: must not be empty');
  if (problems.length > 0) throw new ConfigError('changes flags', problems);
  const config = loadConfig();
  const store = await openStore(config, 1, 'read');
  const { sql } = store;
  try {
    const rows = await listChanges(sql, {
      since: since!,
      projectId,
      regionId,
      account: values.account,
      field: values.field,
      limit: limit!,
    });
    process.stdout.write(values.json ? `${JSON.stringify(rows)}\n` : `${changeTable(rows)}\n`);
    return 0;
  } finally {
    await store.close();
  }
}
