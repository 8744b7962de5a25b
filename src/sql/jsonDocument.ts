import type postgres from 'postgres';

/**
 * A value as a jsonb parameter, serialized by JSON.stringify so that numbers
 * kept as text (json-text.ts) reach Postgres exactly. Sent as text and cast:
 * a parameter Postgres takes for jsonb would be serialized a second time.
 */
export function jsonDocument(sql: postgres.Sql | postgres.TransactionSql, value: unknown) {
  return sql`${JSON.stringify(value)}::text::jsonb`;
}
