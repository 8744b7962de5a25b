// The Postgres schema's tables. Table and column names here are the public interface
// that reports query (see docs/reporting.md, "Tables"); drizzle-kit generates the tables'
// migrations from this file (which were written or completed by hand, and why: docs/database.md).
// Views, functions and triggers are not here: each one's current definition is its file under
// migrations/objects/. What drizzle cannot say (a DEFERRABLE key, UNLOGGED) is said in a comment
// where it applies (docs/database.md has the whole map).
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  check,
  doublePrecision,
  foreignKey,
  index,
  integer,
  jsonb,
  numeric,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

const tz = (name: string) => timestamp(name, { withTimezone: true, mode: 'string' });

const triple = {
  projectId: integer('project_id').notNull(),
  regionId: integer('region_id').notNull(),
  imageId: text('image_id').notNull(),
};

// The configured triples as the last reconcile left them. Refresh outcomes are
// kept here because a run is complete exactly when every target in its scope
// has an attempt that started after the run did. queued_job names the BullMQ
// batch job that will refresh the target next: a target is queued at most once.
export const targets = pgTable(
  'targets',
  {
    ...triple,
    /** The account whose key fetches it (accounts.name). */
    account: text('account').notNull().default('default'),
    scheduleKey: text('schedule_key').notNull(),
    /** Nominal time between the schedule's ticks, for staleness reports. */
    intervalSeconds: integer('interval_seconds').notNull().default(3600),
    addedAt: tz('added_at').notNull().defaultNow(),
    lastAttemptAt: tz('last_attempt_at')
      .notNull()
      .default(sql`'-infinity'`),
    // The attempt before the last: a run counts a target the moment its attempts cross the run's start.
    prevAttemptAt: tz('prev_attempt_at')
      .notNull()
      .default(sql`'-infinity'`),
    lastOutcome: text('last_outcome'),
    lastError: text('last_error'),
    lastStatus: integer('last_status'),
    queuedJob: text('queued_job'),
    queuedAt: tz('queued_at'),
    /** Listed in the targets file by id: refreshed with the single-image GET on its own schedule. */
    explicit: boolean('explicit').notNull().default(true),
    /** The discovery scope that lists it (scopes.key); an explicit target may have one too. */
    scopeKey: text('scope_key'),
    /** When a confirming GET found it alive outside its scope's filter: no longer refreshed, kept as the record that it left. */
    leftScopeAt: tz('left_scope_at'),
    /**
     * When a confirming GET found it alive where the server may read a filter of its scope otherwise than
     * this worker: it stays in the scope, and its listing's silence about it makes no listing suspect.
     */
    filterUnsureAt: tz('filter_unsure_at'),
    /**
     * The kind of image it is refreshed as until its image is stored (then images.kind says): the kind
     * whose list found it, or the targets file's (image-kinds.ts). Not part of its identity.
     */
    kind: text('kind').notNull().default('ordinary'),
    /**
     * Not returned by the complete listing of its scope that finished last (latest_listings), or taken into the
     * scope since: its image's last sighting is then its own (image_rows.seen_at), not that listing's start.
     * Written only when it flips, so a listing that finds nothing changed writes no targets row.
     */
    offList: boolean('off_list').notNull().default(false),
  },
  // Its attempt columns carry no index, so recording an attempt can be a HOT update (fillfactor 80, migration 0025).
  (t) => [
    index('targets_scope_idx')
      .on(t.scopeKey)
      .where(sql`${t.scopeKey} IS NOT NULL`),
    // A target is refreshed by its own GET, by its scope's listing, or both; never by neither.
    check('targets_source_check', sql`${t.explicit} OR ${t.scopeKey} IS NOT NULL`),
    primaryKey({ columns: [t.projectId, t.regionId, t.imageId] }),
    index('targets_queued_job_idx')
      .on(t.queuedJob)
      .where(sql`${t.queuedJob} IS NOT NULL`),
    index('targets_schedule_idx').on(t.scheduleKey),
    check('targets_last_outcome_check', sql`${t.lastOutcome} IN ('unchanged', 'changed', 'deleted', 'failed')`),
  ],
);

// The stored state of each image. Reports read it through the view `images` (migrations/objects/00_images.sql),
// whose last_seen_at is seen_at or the start of the listing that last saw it, whichever is later.
export const imageRows = pgTable(
  'image_rows',
  {
    ...triple,
    name: text('name').notNull(),
    // Null only for kinds whose answers lack it (GPU images: no region, project_id or region_id; os_* nullable).
    region: text('region'),
    status: text('status').notNull(),
    visibility: text('visibility').notNull(),
    osDistro: text('os_distro'),
    osVersion: text('os_version'),
    osType: text('os_type'),
    diskFormat: text('disk_format').notNull(),
    // Integers are bigint: Gcore's contract bounds none of them.
    minDisk: bigint('min_disk', { mode: 'number' }).notNull(),
    minRam: bigint('min_ram', { mode: 'number' }).notNull(),
    size: bigint('size', { mode: 'number' }),
    ownerProjectId: bigint('owner_project_id', { mode: 'number' }),
    imageRegionId: bigint('image_region_id', { mode: 'number' }),
    architecture: text('architecture'),
    isBaremetal: boolean('is_baremetal'),
    creatorTaskId: text('creator_task_id'),
    taskId: text('task_id'),
    description: text('description'),
    displayOrder: bigint('display_order', { mode: 'number' }),
    gpuDriver: text('gpu_driver'),
    gpuDriverType: text('gpu_driver_type'),
    gpuDriverVersion: text('gpu_driver_version'),
    hwFirmwareType: text('hw_firmware_type'),
    hwMachineType: text('hw_machine_type'),
    sshKey: text('ssh_key'),
    currencyCode: text('currency_code'),
    pricePerHour: numeric('price_per_hour'),
    pricePerMonth: numeric('price_per_month'),
    priceStatus: text('price_status'),
    createdAt: tz('created_at').notNull(),
    updatedAt: tz('updated_at').notNull(),
    raw: jsonb('raw').notNull(),
    contentHash: text('content_hash').notNull(),
    firstSeenAt: tz('first_seen_at').notNull(),
    /** When an answer about it alone was last stored (a GET, a change, a first sighting); a listing that finds it unchanged writes nothing. */
    seenAt: tz('seen_at').notNull(),
    lastChangedAt: tz('last_changed_at').notNull(),
    deletedAt: tz('deleted_at'),
    /** The account it was last fetched with. */
    account: text('account').notNull().default('default'),
    /**
     * Which kind of image it is (image-kinds.ts): the most specific kind whose endpoint has returned it. Not part of its
     * identity. The default is for writers of earlier releases, which store only ordinary images and name no kind.
     */
    kind: text('kind').notNull().default('ordinary'),
    /** GPU images' own field (image-fields.ts GPU_IMAGE_FIELDS); after kind, where the migration that added it put it. */
    cudaToolkitVersion: text('cuda_toolkit_version'),
  },
  (t) => [
    primaryKey({ columns: [t.projectId, t.regionId, t.imageId] }),
    // The web view's inventory pages through live images in these orders (keyset; src/sql/uiInventory.ts), and
    // lists those deleted lately. Neither column changes when a refresh finds nothing new.
    index('image_rows_live_name_idx')
      .on(t.name, t.projectId, t.regionId, t.imageId)
      .where(sql`${t.deletedAt} IS NULL`),
    index('image_rows_live_changed_idx')
      .on(t.lastChangedAt, t.projectId, t.regionId, t.imageId)
      .where(sql`${t.deletedAt} IS NULL`),
    index('image_rows_deleted_idx')
      .on(t.deletedAt)
      .where(sql`${t.deletedAt} IS NOT NULL`),
    // The inventory's search (`q`): text anywhere in a name through its trigrams (pg_trgm, which migration 0031
    // creates), an id exactly. Without them a search few names match reads every row (10 s over a million).
    index('image_rows_name_trgm_idx').using('gin', t.name.op('gin_trgm_ops')),
    // The id exactly, and (migration 0032) an image's account and kind with no read of its row: the change feed
    // filtered by either tests each change's image as it walks the changes newest first (src/sql/uiChanges.ts).
    index('image_rows_image_id_idx').on(t.imageId, t.projectId, t.regionId, t.account, t.kind),
    // An ordinary image keeps every field its answers always carry (image-fields.ts); other kinds may lack them.
    check(
      'image_rows_ordinary_fields_check',
      sql`${t.kind} <> 'ordinary' OR (${t.region} IS NOT NULL AND ${t.osDistro} IS NOT NULL AND ${t.osVersion} IS NOT NULL AND ${t.osType} IS NOT NULL AND ${t.ownerProjectId} IS NOT NULL AND ${t.imageRegionId} IS NOT NULL)`,
    ),
  ],
);

export const imageTags = pgTable(
  'image_tags',
  {
    ...triple,
    key: text('key').notNull(),
    value: text('value').notNull(),
    readOnly: boolean('read_only').notNull(),
  },
  (t) => [primaryKey({ columns: [t.projectId, t.regionId, t.imageId, t.key] }), index('image_tags_key_value_idx').on(t.key, t.value)],
);

// Slowly changing dimension, type 2: one row per distinct state of a triple.
// That the versions of a triple never overlap ([valid_from, valid_to)) is held by the triggers of
// migrations/objects/09_version_overlap.sql (a rule drizzle cannot declare).
export const imageVersions = pgTable(
  'image_versions',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    ...triple,
    validFrom: tz('valid_from').notNull(),
    validTo: tz('valid_to'),
    contentHash: text('content_hash').notNull(),
    state: jsonb('state').notNull(),
  },
  (t) => [
    index('image_versions_triple_valid_idx').on(t.projectId, t.regionId, t.imageId, t.validFrom),
    // The versions that held a moment, for images_as_of: a count reads this index alone (the versions from
    // before the moment, and when each ended), never the states (migration 0026).
    index('image_versions_valid_from_idx').on(t.validFrom, t.validTo),
    uniqueIndex('image_versions_one_current_idx')
      .on(t.projectId, t.regionId, t.imageId)
      .where(sql`${t.validTo} IS NULL`),
    // Every version belongs to a stored image. DEFERRABLE INITIALLY DEFERRED in the database (0023; drizzle
    // cannot say it): a first sighting's version is written before its images row (sql/recordChanges.ts).
    foreignKey({
      name: 'image_versions_image_fk',
      columns: [t.projectId, t.regionId, t.imageId],
      foreignColumns: [imageRows.projectId, imageRows.regionId, imageRows.imageId],
    }),
    // What a change's foreign key names: its version, of its own triple.
    unique('image_versions_id_triple_unique').on(t.id, t.projectId, t.regionId, t.imageId),
    check('image_versions_valid_check', sql`${t.validTo} IS NULL OR ${t.validTo} >= ${t.validFrom}`),
  ],
);

export const imageChanges = pgTable(
  'image_changes',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    ...triple,
    versionId: bigint('version_id', { mode: 'number' }).notNull(),
    changeType: text('change_type').notNull(),
    field: text('field'),
    oldValue: jsonb('old_value'),
    newValue: jsonb('new_value'),
    changedAt: tz('changed_at').notNull(),
    /**
     * The observation before the one that saw the change (null for a first sighting, and for changes
     * stored before this column): audit-log entries between the two are who may have made it.
     */
    observedBefore: tz('observed_before'),
  },
  (t) => [
    index('image_changes_changed_at_idx').on(t.changedAt),
    index('image_changes_triple_idx').on(t.projectId, t.regionId, t.imageId, t.changedAt),
    check('image_changes_change_type_check', sql`${t.changeType} IN ('created', 'updated', 'deleted', 'restored')`),
    // Whole-state changes carry no field; an update names the one it changed.
    check('image_changes_field_check', sql`(${t.changeType} = 'updated') = (${t.field} IS NOT NULL)`),
    // A change belongs to a version of its own image.
    foreignKey({
      name: 'image_changes_version_fk',
      columns: [t.versionId, t.projectId, t.regionId, t.imageId],
      foreignColumns: [imageVersions.id, imageVersions.projectId, imageVersions.regionId, imageVersions.imageId],
    }),
  ],
);

export const syncRuns = pgTable(
  'sync_runs',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    kind: text('kind').notNull(),
    /** The account it covers; null covers every account (a manual sync of everything). */
    account: text('account'),
    scheduleKey: text('schedule_key'),
    // Set for a sync of one triple (sync --target); null covers the schedule group, or every target.
    targetProjectId: integer('target_project_id'),
    targetRegionId: integer('target_region_id'),
    targetImageId: text('target_image_id'),
    trigger: text('trigger').notNull().unique(),
    status: text('status').notNull().default('running'),
    startedAt: tz('started_at').notNull(),
    finishedAt: tz('finished_at'),
    planned: integer('planned').notNull(),
    /** Targets attempted since the run started, counted per batch; a cheap hint that the run may be complete. */
    attempted: integer('attempted').notNull().default(0),
    unchanged: integer('unchanged').notNull().default(0),
    changed: integer('changed').notNull().default(0),
    deleted: integer('deleted').notNull().default(0),
    failed: integer('failed').notNull().default(0),
    /** Scope listings of the run that were incomplete: they deleted and confirmed nothing. */
    listingsFailed: integer('listings_failed').notNull().default(0),
    // What its scope listings did (sql/outcomeCounts.ts counts all of these from stored rows, once, as finishRuns freezes them).
    /** Of `changed`, the first sightings: a new image's history began. */
    created: integer('created').notNull().default(0),
    /** Targets its listings found that were not targets when it started (not in `planned`). */
    discovered: integer('discovered').notNull().default(0),
    /** Images its listings returned, each once per listing. */
    // bigint: the sum of listings' counts is not bounded by one column's.
    listed: bigint('listed', { mode: 'number' }).notNull().default(0),
    /** Targets a confirming GET found alive outside their scope during the run. */
    markedLeft: integer('marked_left').notNull().default(0),
    /** Closed incomplete: targets never attempted, and listings not ended, left queued for a worker that can do them. */
    unattempted: integer('unattempted').notNull().default(0),
    listingsUnfinished: integer('listings_unfinished').notNull().default(0),
    /** Why a run closed incomplete (the account whose key the API rejected); never a key. */
    error: text('error'),
  },
  (t) => [
    index('sync_runs_open_idx')
      .on(t.scheduleKey)
      .where(sql`${t.finishedAt} IS NULL`),
    index('sync_runs_started_idx').on(t.startedAt),
    check('sync_runs_kind_check', sql`${t.kind} IN ('scheduled', 'manual')`),
    check('sync_runs_status_check', sql`${t.status} IN ('running', 'finished', 'superseded', 'incomplete')`),
    check('sync_runs_finished_check', sql`(${t.status} = 'running') = (${t.finishedAt} IS NULL)`),
    check(
      'sync_runs_counts_check',
      sql`least(${t.planned}, ${t.attempted}, ${t.unchanged}, ${t.changed}, ${t.deleted}, ${t.failed}, ${t.listingsFailed}, ${t.created}, ${t.discovered}, ${t.listed}, ${t.markedLeft}, ${t.unattempted}, ${t.listingsUnfinished}) >= 0`,
    ),
  ],
);

// The configured accounts as the last reconcile left them: what every worker
// process needs to call the API for each. The key itself is never here, only
// the name of the environment variable that holds it.
export const accounts = pgTable('accounts', {
  name: text('name').primaryKey(),
  apiKeyEnv: text('api_key_env').notNull(),
  /** Null: the worker's SYNC_RATE_LIMIT_PER_SECOND. */
  rateLimitPerSecond: integer('rate_limit_per_second'),
  /** Null: the worker's GCORE_BASE_URL. */
  baseUrl: text('base_url'),
  /** The account's AMQP push (accounts.ts AmqpPush: the variables naming the broker, exchange, routing key, queue); null: none. */
  auditPushAmqp: jsonb('audit_push_amqp'),
});

// The configured discovery scopes (scope.ts) as the last reconcile left them.
export const scopes = pgTable('scopes', {
  key: text('key').primaryKey(),
  account: text('account').notNull().default('default'),
  /** Projects, regions and filters as configured, for listings and for reports. */
  definition: jsonb('definition').notNull(),
  scheduleKey: text('schedule_key').notNull(),
  intervalSeconds: integer('interval_seconds').notNull(),
  /** What outputs call it (its `name:`, or one made from its definition); null until a release that names scopes reconciles it. */
  name: text('name'),
});

// One scope's listing in one run: every page of every project, region and
// endpoint it covers. Complete, it confirms absences; incomplete, it is the
// recorded failure of that scope in that run and deletes nothing.
export const listings = pgTable(
  'listings',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    runId: bigint('run_id', { mode: 'number' })
      .notNull()
      .references(() => syncRuns.id, { onDelete: 'cascade' }),
    scopeKey: text('scope_key').notNull(),
    /** Its scope's account, kept after the scope is gone: its jobs are on that account's queue. */
    account: text('account').notNull().default('default'),
    status: text('status').notNull().default('expanding'),
    startedAt: tz('started_at').notNull().defaultNow(),
    finishedAt: tz('finished_at'),
    /** Images the API said there are (the sum of every part's count), and distinct ones it returned. */
    // bigint: the sum of a listing's counts is not bounded by one column's.
    expected: bigint('expected', { mode: 'number' }),
    listed: bigint('listed', { mode: 'number' }),
    /** Stored live images of the scope that the complete listing did not return: each confirmed by a GET (a suspect listing's once its sample believes it). */
    absent: integer('absent'),
    error: text('error'),
    /** Why it contradicts what is stored, when that made it confirm a sample first (scope-sample.ts); else null. */
    suspect: text('suspect'),
    /** A suspect listing's absences confirmed first, as a sample; null when every absence was confirmed at once. */
    sampled: integer('sampled'),
    /** Of the sample, those the API still has in the scope or that got no answer: more than 0 and the listing is not believed. */
    sampleContradicted: integer('sample_contradicted'),
    /** Images its confirming GETs found alive outside the scope's projects, regions or filters: they left it. */
    markedLeft: integer('marked_left').notNull().default(0),
  },
  (t) => [
    uniqueIndex('listings_run_scope_idx').on(t.runId, t.scopeKey),
    // A scope's latest listing: status, and the one a confirming GET's leaving is counted on.
    index('listings_scope_idx').on(t.scopeKey, t.id),
    check('listings_status_check', sql`${t.status} IN ('expanding', 'listing', 'complete', 'incomplete')`),
    check('listings_finished_check', sql`(${t.status} IN ('complete', 'incomplete')) = (${t.finishedAt} IS NOT NULL)`),
    // least() skips nulls: a count not known yet passes.
    check(
      'listings_counts_check',
      sql`least(${t.expected}, ${t.listed}, ${t.absent}, ${t.sampled}, ${t.sampleContradicted}, ${t.markedLeft}) >= 0`,
    ),
  ],
);

// Every page of a listing: a part (one project, region, endpoint and
// visibility filter) is paged from offset 0; its first page says how many follow.
export const listingPages = pgTable(
  'listing_pages',
  {
    listingId: bigint('listing_id', { mode: 'number' })
      .notNull()
      .references(() => listings.id, { onDelete: 'cascade' }),
    part: integer('part').notNull(),
    page: integer('page').notNull(),
    projectId: integer('project_id').notNull(),
    regionId: integer('region_id').notNull(),
    /** A kind's list endpoint (image-kinds.ts: the registry is its check, not a CHECK that would need a migration per kind). */
    endpoint: text('endpoint').notNull(),
    /** The query parameters of the part (filters), as [name, value] pairs. */
    query: jsonb('query').notNull(),
    status: text('status').notNull().default('queued'),
    /** The answer's count, its results, ids already listed by another page, and results without a usable id. */
    count: integer('count'),
    results: integer('results'),
    repeated: integer('repeated'),
    unusable: integer('unusable'),
    /** Ids another kind's list of the listing had listed (the one image both kinds' endpoints return): listed, not repeated. */
    shared: integer('shared'),
    error: text('error'),
  },
  (t) => [
    primaryKey({ columns: [t.listingId, t.part, t.page] }),
    check('listing_pages_status_check', sql`${t.status} IN ('queued', 'done', 'failed')`),
    check('listing_pages_counts_check', sql`least(${t.count}, ${t.results}, ${t.repeated}, ${t.unusable}) >= 0`),
  ],
);

// The triples an open listing returned, and on which page: repeats and
// absences are found here. Emptied when the listing finishes. UNLOGGED in the
// database (migration 0025; drizzle cannot declare it): a listing of a million
// images writes no WAL for its ids. A crash empties it, and listing_ids_intact
// with it, which is how a listing knows (sql/finishListing.ts).
export const listingIds = pgTable(
  'listing_ids',
  {
    listingId: bigint('listing_id', { mode: 'number' })
      .notNull()
      .references(() => listings.id, { onDelete: 'cascade' }),
    ...triple,
    part: integer('part').notNull(),
    page: integer('page').notNull(),
  },
  (t) => [primaryKey({ columns: [t.listingId, t.projectId, t.regionId, t.imageId] })],
);

// One row per listing with pages, written with its first pages and UNLOGGED as listing_ids is: Postgres
// empties both in crash recovery, so a listing without its row lost the ids it had listed, and ends
// incomplete instead of taking every image of its scope for absent.
export const listingIdsIntact = pgTable('listing_ids_intact', {
  listingId: bigint('listing_id', { mode: 'number' })
    .primaryKey()
    .references(() => listings.id, { onDelete: 'cascade' }),
});

// Per scope, its complete listing that finished last: every target of the scope not marked off_list was
// listed by it, so was seen at its start (the view images reads last_seen_at from here). One row per
// scope, written once per listing: how a listing that finds nothing changed records every sighting.
export const latestListings = pgTable('latest_listings', {
  scopeKey: text('scope_key').primaryKey(),
  listingId: bigint('listing_id', { mode: 'number' }).notNull(),
  startedAt: tz('started_at').notNull(),
});

// The absences a suspect listing confirms first, and how each GET answered
// (null until it has): the sample that decides whether the listing is believed.
export const listingSamples = pgTable(
  'listing_samples',
  {
    listingId: bigint('listing_id', { mode: 'number' })
      .notNull()
      .references(() => listings.id, { onDelete: 'cascade' }),
    ...triple,
    answer: text('answer'),
  },
  (t) => [
    primaryKey({ columns: [t.listingId, t.projectId, t.regionId, t.imageId] }),
    check('listing_samples_answer_check', sql`${t.answer} IN ('gone', 'left', 'in', 'unsure', 'failed')`),
  ],
);

export const syncFailures = pgTable(
  'sync_failures',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    ...triple,
    account: text('account').notNull().default('default'),
    status: integer('status'),
    errorClass: text('error_class').notNull(),
    message: text('message').notNull(),
    attempts: integer('attempts').notNull(),
    failedAt: tz('failed_at').notNull(),
  },
  (t) => [
    index('sync_failures_failed_at_idx').on(t.failedAt),
    index('sync_failures_triple_idx').on(t.projectId, t.regionId, t.imageId, t.failedAt),
    check('sync_failures_attempts_check', sql`${t.attempts} >= 0`),
  ],
);

// Immutable audit snapshots: which version of each live image was in force.
export const auditSnapshots = pgTable(
  'audit_snapshots',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    /** The tick or request that took it, so a retried tick does not take two. */
    trigger: text('trigger').notNull().unique(),
    takenAt: tz('taken_at').notNull(),
    imageCount: integer('image_count').notNull(),
    /** sha256 over every triple and content hash in key order: equal digests, equal states. */
    digest: text('digest').notNull(),
  },
  (t) => [check('audit_snapshots_image_count_check', sql`${t.imageCount} >= 0`)],
);

export const auditSnapshotItems = pgTable(
  'audit_snapshot_items',
  {
    snapshotId: bigint('snapshot_id', { mode: 'number' })
      .notNull()
      .references(() => auditSnapshots.id),
    ...triple,
    versionId: bigint('version_id', { mode: 'number' })
      .notNull()
      .references(() => imageVersions.id),
  },
  (t) => [primaryKey({ columns: [t.snapshotId, t.projectId, t.regionId, t.imageId] })],
);

// Gcore's audit log of user actions about images (audit-follower.ts): one row
// per entry, as received, with the fields reports and attribution need. The
// project and region are bigint, as the contract bounds neither.
export const imageActions = pgTable(
  'image_actions',
  {
    actionId: text('action_id').primaryKey(),
    /** The accounts whose logs hold it (two keys of one Gcore client may both see it), in the order they read it. */
    accounts: text('accounts').array().notNull(),
    actedAt: tz('acted_at').notNull(),
    apiGroup: text('api_group'),
    actionType: text('action_type'),
    email: text('email'),
    userId: bigint('user_id', { mode: 'number' }),
    tokenId: bigint('token_id', { mode: 'number' }),
    issuedByUserId: bigint('issued_by_user_id', { mode: 'number' }),
    sourceUserIp: text('source_user_ip'),
    userAgent: text('user_agent'),
    projectId: bigint('project_id', { mode: 'number' }),
    regionId: bigint('region_id', { mode: 'number' }),
    /** The first image the entry names; null when it names none. */
    imageId: text('image_id'),
    /** Fields that did not match the contract: stored as null here, as received in raw. */
    invalidFields: text('invalid_fields').array(),
    /**
     * Gcore's is_complete: false while Gcore has not filled the entry with all it should hold (the
     * follower reads it again, for a bounded time: src/audit-log/audit-cursor.ts); null when the entry
     * carried no boolean there.
     */
    isComplete: boolean('is_complete'),
    raw: jsonb('raw').notNull(),
    receivedAt: tz('received_at').notNull().defaultNow(),
  },
  (t) => [
    index('image_actions_image_idx').on(t.projectId, t.regionId, t.imageId, t.actedAt),
    // The few entries stored incomplete, found at the end of every poll without walking the others.
    index('image_actions_incomplete_idx')
      .on(t.actedAt)
      .where(sql`${t.isComplete} = false`),
    // A first sighting is put down to the image's create entry: found without walking its other entries.
    index('image_actions_create_idx')
      .on(t.projectId, t.regionId, t.imageId, t.actedAt)
      .where(sql`${t.actionType} = 'create'`),
  ],
);

// Where each account's follower reads its audit log next: entries from
// `from_timestamp` on, skipping the first `page_offset` (only while more than
// a page of entries share that instant), up to the database's clock when the
// poll began (src/audit-log/audit-cursor.ts). A page is stored only if the cursor is
// still where it was read from; the lease lets one process at a time read.
export const auditLogCursors = pgTable('audit_log_cursors', {
  account: text('account').primaryKey(),
  fromTimestamp: tz('from_timestamp').notNull(),
  pageOffset: integer('page_offset').notNull().default(0),
  /** The follower reading the log now, until its lease runs out (renewed with every page; a crashed one's lapses). */
  leaseHolder: text('lease_holder'),
  leaseUntil: tz('lease_until'),
  /** The database's clock when the last poll that read the log to its end began (its bound); the next is due a poll interval later. */
  polledAt: tz('polled_at'),
  /** Why the last poll stopped early, until one succeeds. */
  lastError: text('last_error'),
  /** When entries dated ahead of the database's clock were last looked for, and what that found: the furthest one's time (null: none), and how many. */
  lookedAheadAt: tz('looked_ahead_at'),
  aheadAt: tz('ahead_at'),
  aheadCount: integer('ahead_count').notNull().default(0),
  /** When a push (webhook or AMQP) last asked for the log to be read now: a poll is due once it is later than polled_at. */
  wakeRequestedAt: tz('wake_requested_at'),
});

// What each account's audit-log push (AUDIT_PUSH_URL, or an account's AMQP broker) is doing, for status
// and /readyz: one row per account and kind of push, written by whichever process subscribed, received or
// consumed. The shared secret is never here.
export const auditPush = pgTable(
  'audit_push',
  {
    account: text('account').notNull(),
    /** webhook or amqp. */
    kind: text('kind').notNull(),
    /** Where Gcore pushes, as status may show it: the webhook URL, or the AMQP broker's host, exchange and routing key (no password). */
    target: text('target'),
    /** Whether the account's Gcore client holds this deployment's subscription, as last checked. */
    subscribed: boolean('subscribed').notNull().default(false),
    /** Why it is not subscribed, or what was left alone (another URL's subscription), as last checked; null when all is well. */
    subscriptionProblem: text('subscription_problem'),
    checkedAt: tz('checked_at'),
    lastPushAt: tz('last_push_at'),
    pushesReceived: bigint('pushes_received', { mode: 'number' }).notNull().default(0),
    /** Pushes answered 401 (wrong or missing header) or refused for their size. */
    pushesRefused: bigint('pushes_refused', { mode: 'number' }).notNull().default(0),
    /** AMQP only: why the broker is away (null while a process consumes), and since when. */
    brokerProblem: text('broker_problem'),
    brokerSince: tz('broker_since'),
  },
  (t) => [primaryKey({ columns: [t.account, t.kind] })],
);

// How far the change webhook has delivered: changes with a larger id are still to send.
export const alertCursor = pgTable('alert_cursor', {
  name: text('name').primaryKey(),
  lastChangeId: bigint('last_change_id', { mode: 'number' }).notNull(),
});

// This database's identity, one row inserted by its migration. Every job a
// deployment queues carries it, so workers of two deployments that share a
// Redis and a QUEUE_PREFIX can tell their jobs apart (see deployment-guard.ts).
export const deployment = pgTable(
  'deployment',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    createdAt: tz('created_at').notNull().defaultNow(),
  },
  // A unique index on a constant admits a single row.
  () => [uniqueIndex('deployment_one_row_idx').on(sql`(true)`)],
);

// Which configuration (targets file) the stored targets and the schedules came
// from, and whether a process that runs it is alive: a `start` with another
// file refuses to replace them while the owner's heartbeat is fresh. One row.
export const scheduleOwner = pgTable(
  'schedule_owner',
  {
    id: boolean('id').primaryKey().default(true),
    /** sha256 over the validated targets and schedules: comments, order and the file's path do not count. */
    configHash: text('config_hash').notNull(),
    targetsFile: text('targets_file').notNull(),
    host: text('host').notNull(),
    pid: integer('pid').notNull(),
    /** The command that recorded it: start, schedule or sync. */
    command: text('command').notNull(),
    targetCount: integer('target_count').notNull(),
    claimedAt: tz('claimed_at').notNull(),
    /** Renewed by a running `start`; null when no process runs this configuration (one-shot commands, a clean stop). */
    heartbeatAt: tz('heartbeat_at'),
  },
  (t) => [check('schedule_owner_one_row', sql`${t.id}`)],
);

// The queue store's tables beside BullMQ's when the queues run on Postgres (REDIS_URL unset;
// postgres-backend.ts). They are UNLOGGED in the database (migration 0014: written many times a
// second and worth nothing after a crash, so no WAL), which drizzle cannot declare: these
// declarations keep drizzle-kit's snapshot whole, and their CREATE TABLE statements were taken out of
// the migration drizzle-kit generated (0023), since 0014 had made them UNLOGGED already.

/** The shared request timeline of each account (rate-limiter.ts; sql/takeApiSlot.ts, function take_api_slot). */
export const apiRateTimeline = pgTable('api_rate_timeline', {
  key: text('key').primaryKey(),
  /** The next free request slot, ms since the epoch by this server's clock. */
  nextFreeMs: doublePrecision('next_free_ms').notNull(),
  /** The pause in force: until when, and how long the API asked for (migration 0020). */
  pausedUntilMs: doublePrecision('paused_until_ms'),
  pauseAskedMs: doublePrecision('pause_asked_ms'),
});

/** One row per worker whose key the API rejected (key-health.ts): the fact, never the key. */
export const keyRejections = pgTable('key_rejections', {
  entry: text('entry').primaryKey(),
  rejection: jsonb('rejection').notNull(),
  lapsesAt: tz('lapses_at').notNull(),
});

/** Which queue stores the workers of this database use, each mark lapsing unless renewed (deployment-guard.ts). */
export const queueStoreMarks = pgTable(
  'queue_store_marks',
  {
    kind: text('kind').notNull(),
    worker: text('worker').notNull(),
    lapsesAt: tz('lapses_at').notNull(),
  },
  // Named as Postgres named the inline PRIMARY KEY of 0014.
  (t) => [primaryKey({ name: 'queue_store_marks_pkey', columns: [t.kind, t.worker] })],
);

// Who uses an image (src/usage/): one row per interval in which a consumer (a volume made from the image,
// the instance it is attached to, a GPU cluster, a snapshot of such a volume) used it, as the complete
// usage listings of its project and region saw it. Written only when a listing finds a consumer new or
// gone (sql/recordUsage.ts): a listing that changes nothing writes no row here. The views image_usage,
// image_usage_status and unused_images read it (migrations/objects/11_image_usage.sql).
export const imageUsageHistory = pgTable(
  'image_usage_history',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    ...triple,
    consumerKind: text('consumer_kind').notNull(),
    consumerId: text('consumer_id').notNull(),
    consumerName: text('consumer_name'),
    validFrom: tz('valid_from').notNull(),
    validTo: tz('valid_to'),
  },
  (t) => [
    uniqueIndex('image_usage_history_one_current_idx')
      .on(t.projectId, t.regionId, t.imageId, t.consumerKind, t.consumerId)
      .where(sql`${t.validTo} IS NULL`),
    index('image_usage_history_triple_idx').on(t.projectId, t.regionId, t.imageId, t.validFrom),
    check('image_usage_history_valid_check', sql`${t.validTo} IS NULL OR ${t.validTo} >= ${t.validFrom}`),
    check('image_usage_history_kind_check', sql`${t.consumerKind} IN ('instance', 'volume', 'gpu_cluster', 'snapshot')`),
  ],
);

// Per project and region, what its usage listings established: since when its consumers are listed
// (first_listed_at), and the start of the last complete listing (listed_at). One row per project and
// region, updated once per listing, never per consumer.
export const usageCoverage = pgTable(
  'usage_coverage',
  {
    projectId: integer('project_id').notNull(),
    regionId: integer('region_id').notNull(),
    firstListedAt: tz('first_listed_at').notNull(),
    listedAt: tz('listed_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.projectId, t.regionId] })],
);

// Every usage listing of a project and region in a scope's listing: complete or not, why not, and the
// requests it cost. Pruned with its listing.
export const usageListings = pgTable(
  'usage_listings',
  {
    listingId: bigint('listing_id', { mode: 'number' })
      .notNull()
      .references(() => listings.id, { onDelete: 'cascade' }),
    projectId: integer('project_id').notNull(),
    regionId: integer('region_id').notNull(),
    startedAt: tz('started_at').notNull(),
    finishedAt: tz('finished_at').notNull().defaultNow(),
    status: text('status').notNull(),
    error: text('error'),
    requests: integer('requests').notNull(),
    consumers: integer('consumers').notNull(),
    /** Consumer intervals it opened and closed: zero both when nothing changed. */
    opened: integer('opened').notNull(),
    closed: integer('closed').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.listingId, t.projectId, t.regionId] }),
    check('usage_listings_status_check', sql`${t.status} IN ('complete', 'incomplete')`),
  ],
);

// The consumers in force when an audit snapshot was taken: the usage intervals open then.
export const auditSnapshotUsage = pgTable(
  'audit_snapshot_usage',
  {
    snapshotId: bigint('snapshot_id', { mode: 'number' })
      .notNull()
      .references(() => auditSnapshots.id),
    usageId: bigint('usage_id', { mode: 'number' })
      .notNull()
      .references(() => imageUsageHistory.id),
  },
  (t) => [primaryKey({ columns: [t.snapshotId, t.usageId] })],
);
