/**
 * Zod compiles faster parsers with `new Function` when it may, and probes for that with a `new Function` call of
 * its own. Under a strict Content-Security-Policy (no 'unsafe-eval') the probe fails safely but is still reported
 * as a violation, to the console and to the merchant's report-uri. The widget must be silent under strict CSPs,
 * so its zod runs jitless. Zod reads the setting when each schema is built: api.ts imports this module first,
 * before anything that builds schemas.
 */
import { config } from 'zod';

config({ jitless: true });
