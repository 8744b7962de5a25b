import type { TransactionSql } from 'postgres';
import type { QueryReader } from './query.js';

/** What a page is given: its query, the path's parts after the page's own, and a read through the reporting role. */
export interface PageRequest {
  query: QueryReader;
  parts: string[];
  read<T>(body: (tx: TransactionSql) => Promise<T>): Promise<T>;
}
