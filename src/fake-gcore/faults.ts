// The ways a test makes the fake misbehave: a fault in place of an answer
// (server.ts applies it; to a list page too, lists.ts) and a list that lies
// about the images behind it (lists.ts). Read from control bodies by control.ts.

export type Fault =
  | { kind: 'status'; status: number; body?: string; headers?: Record<string, string> }
  | { kind: 'unauthorized' }
  | { kind: 'bare404' }
  | { kind: 'rateLimited'; retryAfter: string }
  | { kind: 'malformed' }
  | { kind: 'slow'; ms: number };

/**
 * A list answer that contradicts the images behind it while agreeing with
 * itself: a count cut short (the results with it), an empty list, or a list
 * without some ids (a projects list that omits a live project).
 */
export type ListLie =
  | { kind: 'shortCount'; count: number }
  | { kind: 'empty' }
  | { kind: 'omit'; ids: Array<number | string> }
  // The results as they are, with a count `by` more (or fewer) than they add up to: the one lie that disagrees with itself.
  | { kind: 'countOff'; by: number };
