// The targets file: which images to track and when. Validated once, with one
// schema; a bad file is rejected whole with every problem and its path, before
// anything touches Redis or Postgres.
import { readFile } from 'node:fs/promises';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import type { Schedule, Target } from './interfaces.js';
import { imageIdProblem } from './image-id.js';
import { INT4_MAX, MAX_EVERY_MS } from './input-ranges.js';
import { checkCron, parseDuration } from './schedule.js';
import { formatPath, issueMessage } from './validation.js';

export const DEFAULT_SCHEDULE: Schedule = { every: 3_600_000 };
const MIN_INTERVAL_MS = 1000;

const imageId = z.string().superRefine((id, ctx) => {
  const problem = imageIdProblem(id);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

// Ids are int4 columns: a larger one would fail in Postgres after Redis had been touched.
const id = z.number().refine((n) => Number.isInteger(n) && n >= 1 && n <= INT4_MAX, {
  error: (issue) => `must be a whole number from 1 to ${INT4_MAX} (got ${String(issue.input)})`,
});

const cronSchema = z.strictObject({ cron: z.string(), tz: z.string().default('UTC') }).superRefine(({ cron, tz }, ctx) => {
  try {
    checkCron(cron, tz);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
  }
});

const everySchema = z.strictObject({
  every: z.string().transform((text, ctx) => {
    try {
      const ms = parseDuration(text);
      if (ms < MIN_INTERVAL_MS) ctx.addIssue({ code: 'custom', message: 'must be at least 1s' });
      if (ms > MAX_EVERY_MS)
        ctx.addIssue({ code: 'custom', message: `"${text}" is longer than the longest interval, ${MAX_EVERY_MS / 86_400_000}d` });
      return ms;
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
      return z.NEVER;
    }
  }),
});

const scheduleSchema = z.union([everySchema, cronSchema]);

/** Nightly audit snapshots, unless the file says otherwise: 00:00 UTC. */
export const DEFAULT_SNAPSHOT_SCHEDULE: Schedule = { cron: '0 0 * * *', tz: 'UTC' };

const fileSchema = z.strictObject({
  schedule: scheduleSchema.optional(),
  snapshot: cronSchema.optional(),
  targets: z
    .array(
      z.strictObject({
        project_id: id,
        region_id: id,
        image_ids: z.array(imageId).min(1, 'must list at least one image id'),
        schedule: scheduleSchema.optional(),
      }),
    )
    .min(1, 'must list at least one target'),
});

function formatIssue(issue: z.core.$ZodIssue): string {
  let message = issueMessage(issue);
  if (issue.code === 'invalid_union' && issue.path.at(-1) === 'schedule') {
    message = 'must be { every: <duration> } or { cron: <pattern>, tz: <zone> }';
    const inner = issue.errors.flat().filter((i) => i.code === 'custom');
    if (inner.length > 0) message = inner.map((i) => i.message).join('; ');
  }
  return `${formatPath(issue.path)}: ${message}`;
}

export interface TargetsFile {
  targets: Target[];
  /** When audit snapshots are taken. */
  snapshot: Schedule;
}

/** Parses and validates targets file content; `source` names it in errors. */
export function parseTargets(content: string, source: string): Target[] {
  return parseTargetsFile(content, source).targets;
}

export function parseTargetsFile(content: string, source: string): TargetsFile {
  let document: unknown;
  try {
    document = parseYaml(content, { prettyErrors: true, uniqueKeys: true });
  } catch (error) {
    const where =
      error instanceof YAMLParseError && error.linePos ? ` at line ${error.linePos[0].line}, column ${error.linePos[0].col}` : '';
    const reason = (error as Error).message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new ConfigError(source, [`not valid YAML or JSON${where}: ${reason}`]);
  }
  const parsed = fileSchema.safeParse(document, { reportInput: true });
  if (!parsed.success) throw new ConfigError(source, parsed.error.issues.map(formatIssue));

  const seen = new Map<string, string>();
  const problems: string[] = [];
  const result: Target[] = [];
  parsed.data.targets.forEach((entry, t) => {
    const schedule = entry.schedule ?? parsed.data.schedule ?? DEFAULT_SCHEDULE;
    entry.image_ids.forEach((id, i) => {
      const path = `targets[${t}].image_ids[${i}]`;
      const key = `${entry.project_id}/${entry.region_id}/${id}`;
      const first = seen.get(key);
      if (first) problems.push(`${path}: duplicates ${first} (${key})`);
      else seen.set(key, path);
      result.push({ projectId: entry.project_id, regionId: entry.region_id, imageId: id, schedule });
    });
  });
  if (problems.length > 0) throw new ConfigError(source, problems);
  return { targets: result, snapshot: parsed.data.snapshot ?? DEFAULT_SNAPSHOT_SCHEDULE };
}

export async function loadTargets(path: string): Promise<Target[]> {
  return (await loadTargetsFile(path)).targets;
}

export async function loadTargetsFile(path: string): Promise<TargetsFile> {
  let content: string;
  try {
    content = await readFile(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new ConfigError(path, [
      `cannot read the targets file (${reason}): set TARGETS_FILE, or copy examples/targets.yaml to ./targets.yaml and list your images`,
    ]);
  }
  return parseTargetsFile(content, path);
}
