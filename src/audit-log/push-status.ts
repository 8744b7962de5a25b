// How an account's audit-log push is said, the same in `status` and /readyz:
// whether Gcore holds the subscription, when a push last came, how many were
// refused, and whether the account's broker is away.
import type { AuditPushState } from '../sql/auditPush.js';

export function describePush(state: AuditPushState): string {
  const parts: string[] = [];
  if (state.checked_at === null) parts.push('subscription not checked yet');
  else if (state.subscribed) parts.push(`subscribed (checked ${state.checked_at.toISOString()})`);
  else
    parts.push(`NOT subscribed (checked ${state.checked_at.toISOString()}): ${state.subscription_problem ?? 'unknown'}; polling goes on`);
  if (state.subscribed && state.subscription_problem) parts.push(state.subscription_problem);
  parts.push(state.last_push_at ? `last push ${state.last_push_at.toISOString()}` : 'no push received yet');
  parts.push(`${state.pushes_received} received, ${state.pushes_refused} refused`);
  if (state.kind === 'amqp' && state.broker_problem)
    parts.push(`broker away since ${state.broker_since?.toISOString() ?? '?'}: ${state.broker_problem}`);
  return `${state.target ?? state.kind}: ${parts.join('; ')}`;
}
