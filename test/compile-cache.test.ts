// Where compiled code is cached: the user's own cache directory, never a shared one.
import { describe, expect, it } from 'vitest';
import { compileCacheDir } from '../src/ops/compile-cache.js';

describe('the compile cache', () => {
  it("lives in the user's cache directory, and nowhere without one", () => {
    const home = () => '/home/ops';
    expect(compileCacheDir({}, home)).toBe('/home/ops/.cache/gcore-image-sync/compiled');
    expect(compileCacheDir({ XDG_CACHE_HOME: '/var/cache/ops' }, home)).toBe('/var/cache/ops/gcore-image-sync/compiled');
    // A relative XDG_CACHE_HOME would follow the current directory: the specification says to ignore it.
    expect(compileCacheDir({ XDG_CACHE_HOME: 'cache' }, home)).toBe('/home/ops/.cache/gcore-image-sync/compiled');
    expect(
      compileCacheDir({}, () => {
        throw new Error('no home');
      }),
    ).toBeUndefined();
  });
});
