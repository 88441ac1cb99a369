/**
 * Part 5 in a process of its own, so that its memory is its own: on a fresh embedded database (PGlite in DATA_DIR),
 * the BFF's ReconciliationService reads every deposit of [FROM, TO] from the Tupay simulator at TUPAY_URL into the
 * ledger (TupayLedger.sync) and builds the report. Samples heapUsed every 50 ms. Prints one JSON line on stdout:
 * times (sync, report, total), the ledger counts, the report's counts, maxRSS and the heap peak.
 */
import { openDatabase } from '../server/db/database.js';
import { createLogger } from '../server/log.js';
import { TupayClient } from '../server/providers/tupay/tupay-client.js';
import { ReconciliationService } from '../server/reconciliation/reconciliation-service.js';
import { DEFAULT_STATUS_SETS } from '../server/reconciliation/reconciliation.js';
import { SANDBOX_TUPAY_ACCESS_KEY, SANDBOX_TUPAY_SECRET_KEY } from '../server/sandbox/tupay/tupay-sandbox.js';
import { exitWithParent } from './lib.js';

exitWithParent();

const tupayUrl = process.env.TUPAY_URL;
const dataDir = process.env.DATA_DIR;
const from = new Date(process.env.FROM ?? '');
const to = new Date(process.env.TO ?? '');
if (!tupayUrl || !dataDir || Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) {
  process.stderr.write('TUPAY_URL, DATA_DIR, FROM and TO are required\n');
  process.exit(2);
}

let heapPeak = process.memoryUsage().heapUsed;
const sampler = setInterval(() => {
  heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
}, 50);

const logger = createLogger({ level: 'warn', write: (line) => process.stderr.write(`${line}\n`) });
const db = await openDatabase({ kind: 'pglite', dataDir });
const clients: TupayClient[] = [];
const service = new ReconciliationService(db, () => {
  const client = new TupayClient({
    baseUrl: tupayUrl, accessKey: SANDBOX_TUPAY_ACCESS_KEY, secretKey: SANDBOX_TUPAY_SECRET_KEY,
    timeouts: { connectMs: 5_000, headersMs: 30_000, bodyMs: 30_000 }, userAgent: 'kasu-checkout/bench',
  }, { logger });
  clients.push(client);
  return client;
}, {
  statuses: DEFAULT_STATUS_SETS, tupayUtcOffset: '+00:00', lookbackDays: 30, dailyHour: 6, merchantWebhookUrl: null,
}, logger);

const started = performance.now();
let syncedAt = 0;
let lastNote = 0;
const summary = await service.run({ from, to, trigger: 'cli' }, (step) => {
  if (step.phase === 'report') {
    syncedAt = performance.now();
    process.stderr.write('building the report\n');
  } else if (performance.now() - lastNote > 5_000) {
    lastNote = performance.now();
    process.stderr.write(`read ${step.records} ${step.phase} (window ${step.window}/${step.windows})\n`);
  }
});
const finished = performance.now();
clearInterval(sampler);
heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
for (const client of clients) await client.close();
const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM tupay_records');
await db.close();

process.stdout.write(`${JSON.stringify({
  totalMs: Math.round(finished - started),
  syncMs: Math.round((syncedAt || finished) - started),
  reportMs: Math.round(finished - (syncedAt || finished)),
  stored: rows[0]?.n ?? 0,
  tupay: summary.tupay,
  counts: summary.counts,
  discrepancies: summary.discrepancies,
  maxRssBytes: process.resourceUsage().maxRSS * 1024,
  heapPeakBytes: heapPeak,
})}\n`);
process.exit(0);
