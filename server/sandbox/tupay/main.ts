/**
 * `tsx server/sandbox/tupay/main.ts`: the Tupay reconciliation simulator on its own port (env PORT, default 8084;
 * HOST default 127.0.0.1), loaded with SEED_DEPOSITS generated deposits (default 120, one an hour up to now; large
 * counts serve benchmarks) and, unless SEED_ACTIVITY=0, other sales channels' activity of the last 90 days
 * (seedSandboxActivity: 24 deposits and 8 cash-outs, some changing status in the hours after start). Both follow
 * SEED (default 1). Point TUPAY_BASE_URL at the printed URL. TUPAY_ACCESS_KEY and TUPAY_SECRET_KEY replace the
 * default sandbox user.
 */
import { createLogger } from '../../log.js';
import { SANDBOX_TUPAY_ACCESS_KEY, generateDeposits, startTupaySandbox } from './tupay-sandbox.js';

const log = createLogger({ base: { service: 'tupay-sandbox' } });

const port = Number(process.env.PORT ?? 8084);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  log.error('PORT must be a port number', { port: process.env.PORT });
  process.exit(1);
}
if (Boolean(process.env.TUPAY_ACCESS_KEY) !== Boolean(process.env.TUPAY_SECRET_KEY)) {
  log.error('TUPAY_ACCESS_KEY and TUPAY_SECRET_KEY go together');
  process.exit(1);
}
const count = Number(process.env.SEED_DEPOSITS ?? 120);
const seed = Number(process.env.SEED ?? 1);
if (!Number.isInteger(count) || count < 0 || !Number.isInteger(seed)) {
  log.error('SEED_DEPOSITS and SEED must be whole numbers');
  process.exit(1);
}
const activity = process.env.SEED_ACTIVITY !== '0';

const accessKey = process.env.TUPAY_ACCESS_KEY;
const sandbox = await startTupaySandbox({
  port,
  host: process.env.HOST ?? '127.0.0.1',
  ...(accessKey && process.env.TUPAY_SECRET_KEY ? { accessKey, secretKey: process.env.TUPAY_SECRET_KEY } : {}),
  deposits: generateDeposits(count, seed, { startMs: Date.now() - count * 3_600_000 }),
  ...(activity ? { seedActivity: { seed } } : {}),
});
log.info('Tupay sandbox listening', {
  url: sandbox.url,
  accessKey: accessKey ?? SANDBOX_TUPAY_ACCESS_KEY,
  deposits: sandbox.state.deposits.length,
  cashouts: sandbox.state.cashouts.length,
});

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info('Tupay sandbox stopping', { signal });
  await sandbox.close();
  process.exit(0);
}
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
