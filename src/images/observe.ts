// An answer of the API turned into an observation: validated against the
// contract, hashed for "did it change", kept with the raw document and the
// time the request was sent. Every path that reads an image (a refresh's GET,
// a listing's page, an image the audit log names) observes it here.
import { contentHash } from './image-diff.js';
import { ORDINARY, type ImageKind } from './image-kinds.js';
import { validateImage } from './image-payload.js';
import type { Observation, Triple } from '../interfaces.js';

/** Throws InvalidPayloadError (image-payload.ts) when the answer is not an image of `kind` as the contract has it. */
export function observe(account: string, triple: Triple, body: unknown, observedAt: Date, kind: ImageKind = ORDINARY): Observation {
  const { snapshot, raw, warnings } = validateImage(body, triple, kind);
  return { triple, account, kind, snapshot, contentHash: contentHash(snapshot), raw, warnings, observedAt };
}
