// When a scope's listing is believed about what it did not return. A listing
// whose pages add up can still contradict what is stored: a count below the
// images the scope holds there, an empty answer for a region that held images,
// a project or region not listed at all while it holds them. Such a listing is
// suspect: before a GET is spent on every image it did not return, a sample of
// them is confirmed. The sample decides; each GET still records what it found
// (a 404 the deletion, a 200 the image's state, and whether it left the scope).

/** Below this many absences a sample saves nothing: each is confirmed by its own GET. */
export const MIN_SAMPLE = 10;

/**
 * How many of `absent` images a suspect listing confirms first: the square
 * root, at least MIN_SAMPLE, at most all. 1,500 absences cost 39 GETs and
 * 10,000 cost 100. A list that hides live images among its absences is caught
 * unless nearly none of the absences are hidden ones (39 draws miss a 1-in-13
 * share 4% of the time); a lie the sample misses costs GETs, never an image
 * marked left, since each GET is judged by the scope itself (scope-match.ts).
 */
export function sampleSize(absent: number): number {
  return Math.min(absent, Math.max(MIN_SAMPLE, Math.ceil(Math.sqrt(absent))));
}

/** One project and region the scope holds stored images in, and what the listing said of it. */
export interface RegionTally {
  projectId: number;
  regionId: number;
  /** Live images of the scope stored there before the listing started. */
  stored: number;
  /** The sum of the counts its parts answered; null when no part listed it (its project or region was not in its list). */
  counted: number | null;
}

/** How many of a listing's contradictions are named before "and N more". */
const NAMED = 3;

/** Why a listing contradicts what is stored, or null when it does not. */
export function suspicion(tallies: RegionTally[]): string | null {
  const reasons: string[] = [];
  for (const { projectId, regionId, stored, counted } of tallies) {
    const where = `${projectId}/${regionId}`;
    if (stored === 0) continue;
    if (counted === null)
      reasons.push(`${where} holds ${stored} stored images but was not listed (missing from the projects or regions list)`);
    else if (counted === 0) reasons.push(`${where} answered an empty list where ${stored} images are stored`);
    else if (counted < stored) reasons.push(`${where} counts ${counted} images where ${stored} are stored`);
  }
  if (reasons.length === 0) return null;
  const more = reasons.length > NAMED ? `, and ${reasons.length - NAMED} more` : '';
  return reasons.slice(0, NAMED).join('; ') + more;
}

/** How many absences to confirm first: a sample when the listing is suspect and a sample is smaller than them all, else null (all at once). */
export function samplePlan(absent: number, suspect: string | null): number | null {
  if (suspect === null) return null;
  const size = sampleSize(absent);
  return size < absent ? size : null;
}

/**
 * What a sampled GET found: deleted (`gone`), alive and out of the scope
 * (`left`), alive and still in it (`in`), alive where this project's reading
 * of a filter and the server's may differ (`unsure`), or no answer (`failed`).
 */
export type SampleAnswer = 'gone' | 'left' | 'in' | 'unsure' | 'failed';

/**
 * The sampled images that contradict the listing: one it did not return that
 * is still in the scope says the list lied; one that got no answer cannot
 * vouch for it. A filter read differently by the server explains an absence,
 * so it never makes the list a liar (else that scope would be suspect forever).
 * The listing is believed only when this is 0.
 */
export function contradictions(answers: SampleAnswer[]): number {
  return answers.filter((answer) => answer === 'in' || answer === 'failed').length;
}
