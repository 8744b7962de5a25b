// Which deployments (databases) use one set of queues. Workers mark their own
// identity every few seconds, and the identity of any foreign job they refuse;
// an entry lapses a short while after its last mark. More than one identity
// means two deployments take each other's jobs: `status`, /readyz and the
// worker log say so before, or without, a job crossing over. Only queues on a
// shared Redis can be shared (backend.ts).

/** How long a mark lasts: a few missed heartbeats, so a stopped deployment drops out soon. */
export const MARK_TTL_MS = 30_000;

/** What is wrong when deployments other than `own` use the queues at `where`, in words an operator can act on; undefined when none do. */
export function sharingProblem(where: string, own: string, live: string[]): string | undefined {
  const others = live.filter((id) => id !== own).sort();
  if (others.length === 0) return undefined;
  const who =
    others.length === 1 ? `another deployment (database ${others[0]}) uses` : `other deployments (databases ${others.join(', ')}) use`;
  return (
    `${who} ${where} too (this one is database ${own}): ` +
    "each hands the other's jobs back instead of doing them, which holds up both; " +
    'give each deployment its own QUEUE_PREFIX or Redis database'
  );
}
