import { parseArgs } from 'node:util';
import { loadConfig } from '../config/config.js';
import { ConfigError } from '../errors.js';
import { openStore } from '../queues/services.js';
import { DEFAULT_REPORTING_ROLE, grantReporting, REPORTING_FUNCTIONS, REPORTING_RELATIONS } from '../sql/grantReporting.js';
import type { CommandContext } from './context.js';

const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Creates a read-only reporting role: the reporting views and functions, nothing else. */
export async function reportingRoleCommand({ args, print }: CommandContext): Promise<number> {
  const { values } = parseArgs({ args, options: { role: { type: 'string', default: DEFAULT_REPORTING_ROLE } }, strict: true });
  if (!ROLE_NAME.test(values.role)) {
    throw new ConfigError('reporting-role flags', [`--role: "${values.role}" must be a lower-case SQL name (letters, digits, _)`]);
  }
  const config = loadConfig();
  const store = await openStore(config, 1);
  const { sql } = store;
  try {
    await grantReporting(sql, values.role);
    print(
      `role ${values.role} may read ${[...REPORTING_RELATIONS, ...REPORTING_FUNCTIONS].join(', ')}; grant it with GRANT ${values.role} TO <login role>`,
    );
    return 0;
  } finally {
    await store.close();
  }
}
