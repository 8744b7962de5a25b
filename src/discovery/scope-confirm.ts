// What a confirming GET says about an image its scope's listing did not
// return. A 404 already recorded the deletion. A 200 is judged by the scope
// (scope-match.ts): the image left only if the scope's projects, regions and
// filters no longer cover it; where the server may read a filter otherwise,
// it stays, and that is said once per scope and filter. A GET of a suspect
// listing's sample also answers the sample (sql/listingSamples.ts), and the
// sample's last answer decides whether the rest of the absences are confirmed.
import type { Sql } from '../db/db.js';
import type { ImageSnapshot, Triple } from '../interfaces.js';
import type { Logger } from '../ops/logger.js';
import type { WorkerMetrics } from '../ops/metrics.js';
import { enqueueClaims } from '../work/fan-out.js';
import type { Queues } from '../queues/queue.js';
import { finishRunsSaying } from '../ops/run-log.js';
import type { ScopeDefinition } from '../config/scope.js';
import { scopeVerdict } from './scope-match.js';
import type { SampleAnswer } from './scope-sample.js';
import { leaveScope, noteFilterUnsure } from '../sql/leaveScope.js';
import { scopeLabel } from '../sql/scopeLabel.js';
import { answerSample, type SampleDecision } from '../sql/listingSamples.js';
import { scopeDefinition } from '../sql/scopeDefinition.js';

/** What the confirming GET found: deleted, alive as validated, or no answer after every attempt. */
export type ConfirmAnswer = { kind: 'gone' } | { kind: 'found'; snapshot: ImageSnapshot } | { kind: 'failed' };

export interface ConfirmDeps {
  sql: Sql;
  queues: Queues;
  logger: Logger;
  metrics?: WorkerMetrics;
  /** The account the worker serves, for metrics. */
  account: string;
  batchSize: number;
  /** The prefix of the job ids of a listing's confirming GETs (queue.ts confirmJobPrefix). */
  jobPrefix(listingId: number): string;
}

/** Settles confirming GETs; keeps, for this process, which scope and filter readings it has already reported. */
export function confirmations(deps: ConfirmDeps): { answered(triple: Triple, scopeKey: string, answer: ConfirmAnswer): Promise<void> } {
  const { sql, logger, metrics } = deps;
  const reported = new Set<string>();

  /** The sample answer of a 200: left, still in, or unsure; marks the image left when the scope says so. */
  async function judge(triple: Triple, scopeKey: string, snapshot: ImageSnapshot): Promise<SampleAnswer> {
    const fields = {
      project_id: triple.projectId,
      region_id: triple.regionId,
      image_id: triple.imageId,
      ...(await scopeLabel(sql, scopeKey)),
    };
    const definition = await scopeDefinition(sql, scopeKey);
    // A scope no longer configured lists nothing: it cannot say the image left it.
    if (!definition) return 'unsure';
    const verdict = scopeVerdict(definition as ScopeDefinition, triple, snapshot);
    if (verdict.verdict === 'out') {
      if (await leaveScope(sql, triple, scopeKey)) {
        metrics?.scopeExits.inc();
        logger.info({ ...fields, filter: verdict.filter }, 'left its scope: the API still has it, but the scope no longer covers it');
      }
      return 'left';
    }
    if (verdict.verdict === 'unsure') {
      await noteFilterUnsure(sql, triple, scopeKey);
      const key = `${scopeKey} ${verdict.filter}`;
      if (!reported.has(key)) {
        reported.add(key);
        logger.warn(
          { ...fields, filter: verdict.filter },
          'kept in its scope: its listing did not return it, and the server may read this filter otherwise than this worker (said once per scope and filter)',
        );
      }
      return 'unsure';
    }
    logger.warn(fields, 'kept in its scope: its listing did not return it, but the API still has it and the scope covers it');
    return 'in';
  }

  async function answered(triple: Triple, scopeKey: string, answer: ConfirmAnswer): Promise<void> {
    const sampleAnswer: SampleAnswer =
      answer.kind === 'gone' ? 'gone' : answer.kind === 'failed' ? 'failed' : await judge(triple, scopeKey, answer.snapshot);
    const decisions = await answerSample(sql, scopeKey, triple, sampleAnswer, { batchSize: deps.batchSize, jobPrefix: deps.jobPrefix });
    for (const decision of decisions) await settleSample(scopeKey, decision);
    // The absences a sample did not confirm have their attempt now: a run may be done.
    if (decisions.length > 0) await finishRunsSaying(sql, deps.queues, logger);
  }

  async function settleSample(scopeKey: string, decision: SampleDecision): Promise<void> {
    metrics?.listings.inc({ account: deps.account, status: decision.believed ? 'complete' : 'incomplete' });
    const fields = { listing_id: decision.listingId, ...(await scopeLabel(deps.sql, scopeKey)), sampled: decision.sampled };
    if (decision.believed) {
      await enqueueClaims(deps.queues, decision.confirm, (t) => ({ ...t, attempt: 0, confirmScope: scopeKey }));
      const absent = decision.confirm.reduce((n, c) => n + c.triples.length, 0);
      logger.info({ ...fields, absent }, 'suspect listing believed: its sample confirmed every absence; confirming the rest');
    } else {
      logger.error(
        { ...fields, contradicted: decision.contradicted, unconfirmed: decision.unconfirmed, error: decision.error },
        'suspect listing not believed: nothing else confirmed or marked left',
      );
    }
  }

  return { answered };
}
