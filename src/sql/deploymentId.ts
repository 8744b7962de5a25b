import type { Sql } from '../db/db.js';

/** This database's identity: the one row its migration inserted. */
export async function deploymentId(sql: Sql): Promise<string> {
  const [row] = await sql<{ id: string }[]>`SELECT id FROM deployment`;
  if (!row) throw new Error('the deployment table is empty: restore its row with INSERT INTO deployment DEFAULT VALUES');
  return row.id;
}
