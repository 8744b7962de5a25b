// How a run reads, for a person (`sync --wait`'s summary, `status`) and for
// the progress lines: one wording of the counts runCounts keeps, and the rule
// for when a wait may close a run it cannot complete.
import type { RunCounts, RunProgress } from '../sql/getRun.js';

/** "1 refresh", "2 refreshes". */
export function counted(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Targets with an outcome: those planned and those its listings discovered. */
export function doneOf(run: RunCounts): number {
  return run.unchanged + run.changed + run.deleted + run.failed;
}

/** What the run refreshes: the targets it planned and those its listings discovered meanwhile. */
export function totalOf(run: Pick<RunProgress, 'planned' | 'discovered'>): number {
  return run.planned + run.discovered;
}

/**
 * The counts in words: outcomes (with the first sightings among the
 * changes), what its scope listings listed, discovered and marked left, and
 * the listings that were incomplete. Parts that are all zero are left out.
 */
export function describeCounts(run: RunCounts): string {
  const created = run.created > 0 ? ` (${run.created} created)` : '';
  const outcomes = `${run.changed} changed${created}, ${run.unchanged} unchanged, ${run.deleted} deleted, ${run.failed} failed`;
  const listings =
    run.listed + run.discovered + run.markedLeft > 0
      ? `; scope listings: ${run.listed} listed, ${run.discovered} newly discovered, ${run.markedLeft} marked left`
      : '';
  const incomplete = run.listingsFailed > 0 ? `; ${run.listingsFailed} scope listings incomplete (nothing deleted or confirmed there)` : '';
  return `${outcomes}${listings}${incomplete}`;
}

/** What a run closed incomplete left undone, and why (its `error`); empty for any other run. */
export function describeUnfinished(run: Pick<RunProgress, 'status' | 'error' | 'unattempted' | 'listingsUnfinished'>): string {
  if (run.status !== 'incomplete') return '';
  const left = [
    ...(run.unattempted > 0 ? [counted(run.unattempted, 'refresh', 'refreshes')] : []),
    ...(run.listingsUnfinished > 0 ? [counted(run.listingsUnfinished, 'scope listing')] : []),
  ];
  const queued = left.length > 0 ? `: ${left.join(' and ')} not done stay queued for a worker with a valid key` : '';
  return `; INCOMPLETE: ${run.error ?? 'closed with work left'}${queued}`;
}

/** The last line of `sync --wait`. */
export function runSummary(run: RunProgress): string {
  return `run ${run.id}: ${doneOf(run)}/${totalOf(run)} refreshed: ${describeCounts(run)}${describeUnfinished(run)}`;
}

/** `sync --wait` exits 1 when anything of the run failed or was left undone. */
export function runExitCode(run: RunProgress): number {
  return run.status === 'finished' && run.failed === 0 && run.listingsFailed === 0 ? 0 : 1;
}

/**
 * True when a run's wait may stop: work is left (unfinishedByAccount), and
 * all of it belongs to accounts this process no longer serves (`stopped`: the
 * API rejected their keys). Work of any other account is waited for, so every
 * account that can finish does.
 */
export function onlyStoppedRemain(unfinished: ReadonlyArray<{ account: string }>, stopped: ReadonlySet<string>): boolean {
  return unfinished.length > 0 && unfinished.every((u) => stopped.has(u.account));
}

/** Why a run closes incomplete: the accounts whose keys the API rejected, by name and key variable (never the key). */
export function rejectedKeysError(accounts: ReadonlyArray<{ name: string; apiKeyEnv: string }>): string {
  const named = [...accounts]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((a) => `${a.apiKeyEnv} (401), the key of account ${a.name}`);
  return `the API rejected ${named.join('; and ')}`;
}
