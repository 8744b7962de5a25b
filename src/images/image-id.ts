// Which image ids can travel in a URL path segment. Checked when the targets
// file is read, and again by the client, so that no id such as `../../x` can
// ever reach another API route.

const MAX_IMAGE_ID_LENGTH = 128;

/** Why an image id cannot be placed in a URL path segment, or null when it can. */
export function imageIdProblem(id: string): string | null {
  if (id.length === 0) return 'must not be empty';
  if (id.length > MAX_IMAGE_ID_LENGTH) return `must be at most ${MAX_IMAGE_ID_LENGTH} characters (has ${id.length})`;
  // "." and ".." are dot segments: a URL parser drops them, with the segment before for "..", and so does a browser.
  if (id === '.') return 'must not be "." (a URL drops it from the path)';
  if (id.includes('..')) return 'must not contain ".."';
  const bad = /[/\\%?#\s\p{Cc}]/u.exec(id);
  if (bad)
    return `must not contain ${JSON.stringify(bad[0])} (slashes, "%", "?", "#", spaces and control characters could leave the URL path segment)`;
  return null;
}
