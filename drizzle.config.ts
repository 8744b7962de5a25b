import { defineConfig } from 'drizzle-kit';

// What the database holds, and where each part is declared (docs/database.md has the whole map):
// - the tables of the public schema, the UNLOGGED ones included: src/db/schema.ts;
// - the views, functions and triggers of the public schema: migrations/objects/*.sql, applied by
//   src/db/migrate.ts; drizzle-kit neither writes nor reads them (tablesFilter leaves the views out of
//   push and pull, which would otherwise take them for tables to drop or create);
// - what drizzle cannot declare (a DEFERRABLE key, UNLOGGED): hand-written in the migration that adds
//   it, and named in a comment in src/db/schema.ts;
// - the drizzle schema (drizzle.__drizzle_migrations, drizzle.__objects): the migrator's record,
//   outside schemaFilter;
// - the queue store's own tables when the queues run on Postgres: the queue library's, in their own
//   schema (QUEUE_SCHEMA, src/queues/postgres-backend.ts), which its code creates and migrates; outside
//   schemaFilter.
const REPORTING_VIEWS_OUTSIDE_DRIZZLE = ['images', 'current_images', 'image_change_log', 'stale_images', 'image_history'];

export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema.ts',
  out: './migrations',
  schemaFilter: ['public'],
  tablesFilter: ['*', ...REPORTING_VIEWS_OUTSIDE_DRIZZLE.map((view) => `!${view}`)],
  dbCredentials: { url: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
});
