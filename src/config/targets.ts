// The targets file: which images to track and when, named one by one or
// discovered through the list endpoints. Validated once, with one schema; a
// bad file is rejected whole with every problem and its path, before anything
// touches Redis or Postgres.
import { readFile } from 'node:fs/promises';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import {
  ACCOUNT_NAME,
  ACCOUNT_NAME_RULE,
  AMQP_ENV_NAME,
  IMPLIED_ACCOUNT,
  KEY_ENV_NAME,
  KEY_URL_RULE,
  mayCarryKey,
  type Account,
} from './accounts.js';
import { ConfigError } from '../errors.js';
import type { Schedule, Target } from '../interfaces.js';
import { imageIdProblem } from '../images/image-id.js';
import { kindNameProblem } from '../images/image-kinds.js';
import { INT4_MAX, MAX_EVERY_MS } from './input-ranges.js';
import { checkCron, parseDuration } from '../schedule/schedule.js';
import {
  ARCHITECTURES,
  DEFAULT_KIND,
  filterTextProblem,
  scopeKey,
  scopeName,
  scopeNameProblem,
  tagKeyProblem,
  tagValueProblem,
  VISIBILITIES,
  type DiscoverFilters,
  type Scope,
} from './scope.js';
import { formatPath, issueMessage } from './validation.js';

const DEFAULT_SCHEDULE: Schedule = { every: 3_600_000 };
const MIN_INTERVAL_MS = 1000;

const imageId = z.string().superRefine((id, ctx) => {
  const problem = imageIdProblem(id);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

// Ids are int4 columns: a larger one would fail in Postgres after Redis had been touched.
const idRange = (got: unknown) => `must be a whole number from 1 to ${INT4_MAX} (got ${String(got)})`;
const id = z.number().refine((n) => Number.isInteger(n) && n >= 1 && n <= INT4_MAX, {
  error: (issue) => idRange(issue.input),
});

/** A problem for each item that repeats an earlier one, at the repeat. */
function noRepeats(items: readonly unknown[], ctx: z.RefinementCtx<unknown[]>): void {
  items.forEach((item, i) => {
    if (items.indexOf(item) < i) ctx.addIssue({ code: 'custom', path: [i], message: `${JSON.stringify(item)} is already listed` });
  });
}

/** Why `input` is no id, list of ids or `all`, when none of the forms took it. */
function idsProblem(input: unknown): string {
  if (input === undefined) return 'required';
  // NaN and the infinities, which z.number() refuses before the range is checked.
  if (typeof input === 'number') return idRange(input);
  return `must be a whole number from 1 to ${INT4_MAX}, or with discover a list of them or all (got ${JSON.stringify(input)})`;
}

// One id, a list of them or `all`: the union reports the one form whose type
// matched (an id out of range, a list with a bad member), else idsProblem.
const ids = z.union([id, z.array(id).min(1, 'must list at least one id').superRefine(noRepeats), z.literal('all')], {
  error: (issue) => idsProblem(issue.input),
});

/** A string the API checks; `problem` says why it would refuse one. */
const checked = (problem: (text: string) => string | null) =>
  z.string().superRefine((text, ctx) => {
    const message = problem(text);
    if (message) ctx.addIssue({ code: 'custom', message });
  });

const oneOf = <const T extends readonly string[]>(values: T) =>
  z.enum(values, {
    error: (issue) => `must be ${values.slice(0, -1).join(', ')} or ${values.at(-1)} (got ${JSON.stringify(issue.input)})`,
  });

const tagKeyValue = z.record(z.string(), checked(tagValueProblem)).superRefine((pairs, ctx) => {
  const keys = Object.keys(pairs);
  if (keys.length === 0) ctx.addIssue({ code: 'custom', message: 'must give at least one tag key: value' });
  for (const key of keys) {
    const problem = tagKeyProblem(key);
    if (problem) ctx.addIssue({ code: 'custom', message: `tag key ${JSON.stringify(key)} ${problem}` });
  }
});

// What the list endpoints are asked for; every filter is one the API applies.
const discoverSchema = z
  .strictObject(
    {
      visibility: z
        .array(oneOf(VISIBILITIES))
        .min(1, 'must list at least one visibility')
        .superRefine(noRepeats)
        .default(() => [...VISIBILITIES]),
      baremetal: z.boolean().default(true),
      tag_key: z.array(checked(tagKeyProblem)).min(1, 'must list at least one tag key').superRefine(noRepeats).optional(),
      tag_key_value: tagKeyValue.optional(),
      name: checked(filterTextProblem).optional(),
      os_distro: checked(filterTextProblem).optional(),
      os_version: checked(filterTextProblem).optional(),
      architecture: oneOf(ARCHITECTURES).optional(),
      kinds: z.array(checked(kindNameProblem)).min(1, 'must list at least one kind of image').superRefine(noRepeats).optional(),
      usage: z
        .boolean({ error: (issue) => `must be true or false: whether to list who uses the images (got ${JSON.stringify(issue.input)})` })
        .optional(),
    },
    // `discover:` alone is YAML for null, not for "no filters".
    {
      error: (issue) =>
        issue.code === 'invalid_type' ? `must be a map of filters, {} for the defaults (got ${JSON.stringify(issue.input)})` : undefined,
    },
  )
  .transform((d): DiscoverFilters => ({
    visibility: d.visibility,
    baremetal: d.baremetal,
    tagKey: d.tag_key,
    tagKeyValue: d.tag_key_value,
    name: d.name,
    osDistro: d.os_distro,
    osVersion: d.os_version,
    architecture: d.architecture,
    // Kinds named are kinds asked for: `[ordinary]` keeps a scope off the GPU kinds it would list by default.
    ...(d.kinds === undefined ? {} : { kinds: d.kinds }),
    // Usage is listed unless turned off; only `false` is stored, so a scope that says nothing keeps its definition.
    ...(d.usage === false ? { usage: false as const } : {}),
  }));

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

const accountName = z
  .string()
  .regex(ACCOUNT_NAME, { error: (issue) => `must be ${ACCOUNT_NAME_RULE} (got ${JSON.stringify(issue.input)})` });

const amqpEnvName = z.string().regex(AMQP_ENV_NAME, {
  error: (issue) => `must be AUDIT_AMQP_URL or AUDIT_AMQP_URL_<SUFFIX> in capitals, digits and _ (got ${JSON.stringify(issue.input)})`,
});

/** A name AMQP 0-9-1 takes (at most 255 bytes, printable), for an exchange, a routing key or a queue. */
const amqpName = (what: string) =>
  z.string().refine((name) => Buffer.byteLength(name) <= 255 && /^[\x21-\x7e]+$/.test(name), {
    error: (issue) => `${what} must be 1 to 255 printable ASCII characters without spaces (got ${JSON.stringify(issue.input)})`,
  });

const DEFAULT_EXCHANGE =
  'must name an exchange: null or "" is the default exchange, which routes by queue name only and to which no queue can be bound';

// Gcore publishes the account's audit log to a broker the customer runs; the worker consumes from its own queue there.
const amqpPushSchema = z.strictObject({
  broker_url_env: amqpEnvName,
  connection_string_env: amqpEnvName.optional(),
  // The default exchange ("", or null in Gcore's API) routes by queue name only: no queue can be bound to it.
  exchange: z
    .string({ error: DEFAULT_EXCHANGE })
    .refine((name) => name !== '', { error: DEFAULT_EXCHANGE, abort: true })
    .pipe(amqpName('an exchange')),
  routing_key: amqpName('a routing key'),
  queue: amqpName('a queue').optional(),
});

const accountSchema = z.strictObject({
  api_key_env: z.string().regex(KEY_ENV_NAME, {
    error: (issue) => `must be GCORE_API_KEY or GCORE_API_KEY_<SUFFIX> in capitals, digits and _ (got ${JSON.stringify(issue.input)})`,
  }),
  rate_limit_per_second: z
    .number()
    .refine((n) => Number.isInteger(n) && n >= 0 && n <= 10_000, {
      error: (issue) => `must be a whole number from 0 (no limit) to 10000 (got ${String(issue.input)})`,
    })
    .optional(),
  // The account's key goes wherever base_url points.
  base_url: z
    .string()
    .refine(mayCarryKey, { error: (issue) => `${KEY_URL_RULE} (got ${JSON.stringify(issue.input)})` })
    .optional(),
  audit_push_amqp: amqpPushSchema.optional(),
});

const accountsSchema = z
  .record(z.string().regex(ACCOUNT_NAME), accountSchema, {
    error: (issue) => (issue.code === 'invalid_key' ? `an account name must be ${ACCOUNT_NAME_RULE}` : undefined),
  })
  .refine((accounts) => Object.keys(accounts).length > 0, { error: 'must name at least one account, or be left out' });

interface EntryShape {
  project_id?: unknown;
  region_id?: unknown;
  image_ids?: unknown;
  discover?: unknown;
  name?: unknown;
  kind?: unknown;
}

/**
 * An entry names its images or asks for discovery, never both; named images
 * are in one project and one region. Runs even when the entry has other
 * problems, so the whole list comes at once: hence nothing but presence and
 * the id forms is looked at.
 */
function checkKind(entry: EntryShape, ctx: z.RefinementCtx<EntryShape>): void {
  const images = entry.image_ids !== undefined;
  const discover = entry.discover !== undefined;
  if (images === discover) {
    const both = images ? ', not both' : '';
    ctx.addIssue({
      code: 'custom',
      message: `give either image_ids (explicit images) or discover (every image the list endpoints return)${both}`,
    });
  }
  if (images && !discover && entry.name !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['name'], message: 'names a discovery scope: give it with discover, not with image_ids' });
  }
  if (discover && entry.kind !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['kind'], message: 'is the kind of explicit images: a scope names its kinds in discover.kinds' });
  }
  if (!images || discover) return;
  for (const [field, what] of [
    ['project_id', 'project'],
    ['region_id', 'region'],
  ] as const) {
    const given = entry[field];
    if (given !== 'all' && !Array.isArray(given)) continue;
    const instead =
      given === 'all'
        ? `not all; use discover to list the images of every ${what}`
        : `not [${given.join(', ')}]; give each ${what} an entry of its own, or use discover`;
    ctx.addIssue({ code: 'custom', path: [field], message: `image_ids need one ${what} id (a number), ${instead}` });
  }
}

const isObject = (value: unknown) => typeof value === 'object' && value !== null && !Array.isArray(value);

const entrySchema = z
  .strictObject({
    project_id: ids,
    region_id: ids,
    image_ids: z.array(imageId).min(1, 'must list at least one image id').optional(),
    discover: discoverSchema.optional(),
    // What outputs call the scope; not part of its key, so renaming it keeps its history.
    name: checked(scopeNameProblem).optional(),
    schedule: scheduleSchema.optional(),
    account: accountName.optional(),
    // The kind of the images named (image-kinds.ts): their GET is their kind's.
    kind: checked(kindNameProblem).optional(),
  })
  .superRefine(checkKind, { when: ({ value }) => isObject(value) });

const fileSchema = z.strictObject({
  accounts: accountsSchema.optional(),
  schedule: scheduleSchema.optional(),
  snapshot: cronSchema.optional(),
  targets: z.array(entrySchema).min(1, 'must list at least one target'),
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
  /** The accounts, in file order: the implied account alone when the file names none. */
  accounts: Account[];
  /** The explicit images, one target each. */
  targets: Target[];
  /** The discovery scopes, in file order. */
  scopes: Scope[];
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

  const problems: string[] = [];
  const accounts = toAccounts(parsed.data.accounts);
  const targets: Target[] = [];
  const scopes: Scope[] = [];
  const triples = new Map<string, string>();
  const scopeKeys = new Map<string, string>();
  const scopeNames = new Map<string, string>();
  const madeUpNames = new Map<string, string>();
  const placed: Placed[] = [];
  parsed.data.targets.forEach((entry, t) => {
    const account = entryAccount(entry.account, accounts, `targets[${t}].account`, problems);
    const schedule = entry.schedule ?? parsed.data.schedule ?? DEFAULT_SCHEDULE;
    if (entry.discover) {
      const scope = toScope(account, entry.project_id, entry.region_id, entry.discover, schedule, entry.name);
      const first = firstPlace(scopeKeys, scope.key, `targets[${t}]`);
      if (first) problems.push(`targets[${t}]: duplicates ${first} (the same projects, regions and filters)`);
      // A made-up name repeats only with the definition, under another account: status says whose.
      const named = entry.name === undefined ? undefined : firstPlace(scopeNames, entry.name, `targets[${t}]`);
      if (named) problems.push(`targets[${t}].name: ${JSON.stringify(entry.name)} already names the scope at ${named}`);
      if (entry.name === undefined) firstPlace(madeUpNames, scope.name, `targets[${t}]`);
      scopes.push(scope);
      placed.push({ path: `targets[${t}]`, discovers: true, account, projects: scope.projects, regions: scope.regions });
      return;
    }
    // checkKind has made sure: explicit images, in one project and one region.
    const projectId = entry.project_id as number;
    const regionId = entry.region_id as number;
    placed.push({ path: `targets[${t}]`, discovers: false, account, projects: [projectId], regions: [regionId] });
    entry.image_ids!.forEach((id, i) => {
      const path = `targets[${t}].image_ids[${i}]`;
      const key = `${projectId}/${regionId}/${id}`;
      const first = firstPlace(triples, key, path);
      if (first) problems.push(`${path}: duplicates ${first} (${key})`);
      const kind = entry.kind === undefined || entry.kind === DEFAULT_KIND ? {} : { kind: entry.kind };
      targets.push({ account, projectId, regionId, imageId: id, schedule, ...kind });
    });
  });
  // A name given must not be the one made up for another scope: two scopes would read the same everywhere.
  for (const [name, path] of scopeNames) {
    const other = madeUpNames.get(name);
    if (other)
      problems.push(`${path}.name: ${JSON.stringify(name)} is the name made up for the scope at ${other}: give one of them another`);
  }
  problems.push(...crossAccountProblems(placed));
  if (problems.length > 0) throw new ConfigError(source, problems);
  return { accounts, targets, scopes, snapshot: parsed.data.snapshot ?? DEFAULT_SNAPSHOT_SCHEDULE };
}

function toAccounts(given: z.output<typeof accountsSchema> | undefined): Account[] {
  if (given === undefined) return [IMPLIED_ACCOUNT];
  return Object.entries(given).map(([name, a]) => ({
    name,
    apiKeyEnv: a.api_key_env,
    rateLimitPerSecond: a.rate_limit_per_second,
    baseUrl: a.base_url?.replace(/\/+$/, ''),
    amqpPush: a.audit_push_amqp && {
      brokerUrlEnv: a.audit_push_amqp.broker_url_env,
      connectionStringEnv: a.audit_push_amqp.connection_string_env,
      exchange: a.audit_push_amqp.exchange,
      routingKey: a.audit_push_amqp.routing_key,
      queue: a.audit_push_amqp.queue,
    },
  }));
}

/** The account an entry names, or the only one there is; a problem at `path` otherwise. */
function entryAccount(named: string | undefined, accounts: Account[], path: string, problems: string[]): string {
  const names = accounts.map((a) => a.name);
  if (named === undefined) {
    if (names.length === 1) return names[0]!;
    problems.push(`${path}: required when the file names several accounts: one of ${names.join(', ')}`);
    return names[0]!;
  }
  if (!names.includes(named)) {
    problems.push(`${path}: no account ${JSON.stringify(named)} in accounts: one of ${names.join(', ')}`);
  }
  return named;
}

/** Where an entry's images are, for the one-account-per-image check. */
interface Placed {
  path: string;
  /** Named images, or a discovery scope. */
  discovers: boolean;
  account: string;
  projects: number[] | 'all';
  regions: number[] | 'all';
}

/**
 * An image belongs to one account: a project discovered under two accounts, or
 * an image named under one and discovered under another, is refused at the
 * later place. Scopes of `all` projects are checked as they are listed.
 */
function crossAccountProblems(placed: Placed[]): string[] {
  const overlap = (a: number[] | 'all', b: number[] | 'all') => a === 'all' || b === 'all' || a.some((id) => b.includes(id));
  const problems: string[] = [];
  placed.forEach((later, n) => {
    if (later.projects === 'all') return;
    // Named images of two accounts may share a project: only the same triple twice is an error, found as a duplicate.
    const earlier = placed
      .slice(0, n)
      .find(
        (p) =>
          (p.discovers || later.discovers) &&
          p.account !== later.account &&
          p.projects !== 'all' &&
          overlap(p.projects, later.projects) &&
          overlap(p.regions, later.regions),
      );
    if (!earlier) return;
    const shared = (earlier.projects as number[]).filter((id) => (later.projects as number[]).includes(id));
    problems.push(
      `${later.path}: project ${shared[0]} is also under account ${earlier.account} at ${earlier.path}; an image belongs to one account`,
    );
  });
  return problems;
}

/** Where `key` was given before, or undefined, remembering `path` as its first place. */
function firstPlace(places: Map<string, string>, key: string, path: string): string | undefined {
  const first = places.get(key);
  if (!first) places.set(key, path);
  return first;
}

type Ids = z.output<typeof ids>;

/** A scope as the rest of the worker sees it: one id is a list of one, so `7` and `[7]` are the same scope. */
function toScope(account: string, projectIds: Ids, regionIds: Ids, filters: DiscoverFilters, schedule: Schedule, name?: string): Scope {
  const list = (given: Ids) => (typeof given === 'number' ? [given] : given);
  const projects = list(projectIds);
  const regions = list(regionIds);
  const key = scopeKey(account, projects, regions, filters);
  return { key, name: name ?? scopeName(projects, regions, filters), account, projects, regions, filters, schedule };
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
    // What a bind mount leaves where the file it should mount was missing (docker run -v, compose's short syntax).
    if (reason === 'EISDIR') {
      throw new ConfigError(path, [
        'the targets file is a directory (EISDIR; Docker creates one when it mounts a file that does not exist): ' +
          'remove it, then copy examples/targets.yaml to ./targets.yaml and list your images, or set TARGETS_FILE to a file',
      ]);
    }
    throw new ConfigError(path, [
      `cannot read the targets file (${reason}): set TARGETS_FILE, or copy examples/targets.yaml to ./targets.yaml and list your images`,
    ]);
  }
  return parseTargetsFile(content, path);
}
