/**
 * A charge-running process for crash and scale-out tests: the same ChargeEngine the BFF runs, on a PostgreSQL
 * schema, against a card gateway URL, charging everything due until nothing is left (or until it is killed).
 * Env: DATABASE_URL, DB_SCHEMA, CARD_BASE_URL, NOW (ISO clock override), LEASE_SECONDS.
 */
import { ChargeEngine, DEFAULT_CHARGE_ENGINE_CONFIG } from '../../server/cards/charge-engine.js';
import { openDatabase } from '../../server/db/database.js';
import { createLogger } from '../../server/log.js';
import { CardClient } from '../../server/providers/card/card-client.js';
import { SANDBOX_CARD_KEY, SANDBOX_CARD_MERCHANT_ID } from '../../server/sandbox/card/card-sandbox.js';

const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};

const db = await openDatabase({ kind: 'postgres', url: env('DATABASE_URL'), schema: env('DB_SCHEMA'), maxConnections: 4 });
const card = new CardClient({
  baseUrl: env('CARD_BASE_URL'), merchantId: SANDBOX_CARD_MERCHANT_ID, key: SANDBOX_CARD_KEY,
  timeouts: { connectMs: 1_000, headersMs: 2_000, bodyMs: 2_000 }, userAgent: 'charge-worker',
});
const engine = new ChargeEngine(db, card, {
  ...DEFAULT_CHARGE_ENGINE_CONFIG,
  leaseSeconds: Number(process.env.LEASE_SECONDS ?? 3),
  unknownRetrySeconds: 0,
  concurrency: 4,
  batchSize: 20,
  merchantWebhookUrl: null,
}, createLogger({ level: 'warn', write: (line) => process.stderr.write(`${line}\n`) }));

const now = new Date(env('NOW'));
process.stdout.write('ready\n');
const result = await engine.runDue(now);
process.stdout.write(`${JSON.stringify(result)}\n`);
await card.close();
await db.close();
