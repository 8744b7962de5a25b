// Loaded with `node --import`: the import of a command's module (src/commands/*.js) says so on
// stderr and then never completes, so a test can signal the CLI while it is, for certain, still
// loading the command, as a slow start on a busy machine would be. A pending import alone keeps
// no process alive: the timer does, so only a signal ends it.
import { register } from 'node:module';

setInterval(() => {}, 60_000);

register(
  `data:text/javascript,${encodeURIComponent(`
import { writeSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  if (/\\/commands\\/[a-z-]+\\.js$/.test(resolved.url) && !resolved.url.endsWith('/context.js')) {
    writeSync(2, 'importing ' + resolved.url.split('/').pop() + '\\n');
    await new Promise(() => {});
  }
  return resolved;
}`)}`,
);
