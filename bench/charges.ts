/**
 * Part 4: due card instalments charged by real BFF processes (server/main.ts) against the card gateway simulator
 * (20 ms before every answer), once on the embedded database with one BFF and once on PostgreSQL with three, as
 * test/server/charge-crash.test.ts does. Each due instalment belongs to its own single-payment card order, seeded
 * with the store's createSubscription. The charge run is started through the admin API
 * (`POST /admin/jobs/card-charges/run`, which returns when no instalment is left due) on every BFF at once; the
 * time is from those requests to the last answer. The gateway's ledger then shows how many times each instalment was
 * charged, and the database how many are paid.
 */
import { randomBytes } from 'node:crypto';
import { dueDate } from '../server/cards/schedule.js';
import { createSubscription } from '../server/cards/subscription-store.js';
import { openDatabase, type Database } from '../server/db/database.js';
import { CardClient } from '../server/providers/card/card-client.js';
import { SANDBOX_CARD_KEY, SANDBOX_CARD_MERCHANT_ID, startCardSandbox } from '../server/sandbox/card/card-sandbox.js';
import { childEnv, freePort, onCleanup, postgresSchema, progress, round, spawnBff, tempDir, waitFor200, type Child } from './lib.js';

export type ChargeResult = {
  engine: 'pglite' | 'postgres';
  processes: number;
  instalments: number;
  latencyMs: number;
  seedSeconds: number;
  /** From the admin requests to the last answer; null when it did not finish within `capSeconds`. */
  seconds: number | null;
  capSeconds: number;
  /** Approved charges when the cap was reached (null when it finished). */
  chargedAtCap: number | null;
  /** Approved charges per second: over the whole run, or up to the cap. */
  chargesPerSecond: number;
  /** When capped: the time all of them would have taken at that rate. */
  projectedSeconds: number | null;
  /** Gateway ledger: approved charges, and instalments charged more than once. */
  approved: number;
  duplicates: number;
  /** Database: instalments paid, and those neither paid nor scheduled (review, failed). */
  paid: number;
  notPaid: number;
  /** What each BFF's run reported (approved per process shows how the work was shared). */
  runs: unknown[];
};

const ADMIN_TOKEN = `bench-admin-${randomBytes(12).toString('hex')}`;

/**
 * One single-payment card order per due instalment. The first order's card, subscription and instalment are written
 * by the store's own createSubscription; the others by three INSERT … SELECT statements writing the same rows (10,000
 * createSubscription calls take ~40 s on PGlite), checked against the first: a column createSubscription fills that
 * the bulk insert does not is an error, not a silently different benchmark.
 */
async function seed(db: Database, count: number, tag: string, card: { customerId: string; token: string }): Promise<void> {
  await db.query(
    `INSERT INTO checkouts (id, token_hash, curp, birth_date, sex, status, expires_at)
     SELECT 'chk_${tag}' || n, 'x', 'CAMC880526HMCBNR04', '1988-05-26', 'H', 'registered', now() + interval '1 day'
     FROM generate_series(1, $1::int) AS n`,
    [count],
  );
  await db.query(
    `INSERT INTO orders (id, reference, checkout_id, curp, product, payment_method, currency, price_centavos, instalments, instalment_centavos, status)
     SELECT 'ord_${tag}' || n, 'KC-${tag.toUpperCase()}' || lpad(n::text, 8, '0'), 'chk_${tag}' || n, 'CAMC880526HMCBNR04',
            'Funerario', 'card', 'MXN', 10000, 1, 10000, 'registered'
     FROM generate_series(1, $1::int) AS n`,
    [count],
  );
  const dueAt = new Date(Date.now() - 60_000);
  const firstChargeDate = '2026-11-23';
  await db.transaction((tx) => createSubscription(tx, {
    orderId: `ord_${tag}1`, card: { customerId: card.customerId, token: card.token, brand: 'visa', last4: '4242' },
    currency: 'MXN', instalmentAmount: 10_000, instalments: 1, firstChargeDate, payDay: 23, firstDueAt: dueAt,
  }));
  if (count < 2) return;
  await db.transaction(async (tx) => {
    await tx.query(
      `INSERT INTO payment_cards (id, order_id, customer_id, token, brand, last4)
       SELECT 'card_${tag}' || n, 'ord_${tag}' || n, $2, $3, 'visa', '4242' FROM generate_series(2, $1::int) AS n`,
      [count, card.customerId, card.token],
    );
    await tx.query(
      `INSERT INTO subscriptions (id, order_id, card_id, status, pay_day)
       SELECT 'sub_${tag}' || n, 'ord_${tag}' || n, 'card_${tag}' || n, 'active', 23 FROM generate_series(2, $1::int) AS n`,
      [count],
    );
    await tx.query(
      `INSERT INTO instalments (id, subscription_id, number, currency, amount_centavos, due_date, status, next_attempt_at)
       SELECT 'ins_${tag}' || n, 'sub_${tag}' || n, 1, 'MXN', 10000, $2, 'scheduled', $3 FROM generate_series(2, $1::int) AS n`,
      [count, dueDate(firstChargeDate, 23, 1), dueAt],
    );
  });
  const { rows } = await db.query<{ table: string; store: unknown; bulk: unknown }>(
    `WITH pair AS (SELECT 'ord_${tag}1' AS store, 'ord_${tag}2' AS bulk)
     SELECT 'payment_cards' AS table,
            (SELECT to_jsonb(c) - 'id' - 'order_id' - 'created_at' FROM payment_cards c, pair WHERE c.order_id = pair.store) AS store,
            (SELECT to_jsonb(c) - 'id' - 'order_id' - 'created_at' FROM payment_cards c, pair WHERE c.order_id = pair.bulk) AS bulk
     UNION ALL
     SELECT 'subscriptions',
            (SELECT to_jsonb(s) - 'id' - 'order_id' - 'card_id' - 'created_at' - 'updated_at' FROM subscriptions s, pair WHERE s.order_id = pair.store),
            (SELECT to_jsonb(s) - 'id' - 'order_id' - 'card_id' - 'created_at' - 'updated_at' FROM subscriptions s, pair WHERE s.order_id = pair.bulk)
     UNION ALL
     SELECT 'instalments',
            (SELECT jsonb_agg(to_jsonb(i) - 'id' - 'subscription_id' - 'updated_at') FROM instalments i JOIN subscriptions s ON s.id = i.subscription_id, pair WHERE s.order_id = pair.store),
            (SELECT jsonb_agg(to_jsonb(i) - 'id' - 'subscription_id' - 'updated_at') FROM instalments i JOIN subscriptions s ON s.id = i.subscription_id, pair WHERE s.order_id = pair.bulk)`,
  );
  for (const row of rows) {
    if (JSON.stringify(row.store) !== JSON.stringify(row.bulk)) {
      throw new Error(`bench seed out of date: ${row.table} written by createSubscription ${JSON.stringify(row.store)} but by the bulk seed ${JSON.stringify(row.bulk)}`);
    }
  }
}

/** A customer and a tokenised approving card at the simulator, as the tokenizer frame would make them. */
async function cardOnFile(url: string): Promise<{ customerId: string; token: string }> {
  const customerId = 'cus-bench';
  const client = new CardClient({
    baseUrl: url, merchantId: SANDBOX_CARD_MERCHANT_ID, key: SANDBOX_CARD_KEY,
    timeouts: { connectMs: 1_000, headersMs: 5_000, bodyMs: 5_000 }, userAgent: 'kasu-checkout/bench',
  });
  await client.ensureCustomer({ customerId, contractNumber: 'C1', email: 'c@example.mx', phoneNumber: '5512345678', address: 'Calle 5', zipCode: '50000' });
  await client.close();
  const response = await fetch(`${url}/tokenizer/tokens`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ merchantId: SANDBOX_CARD_MERCHANT_ID, customerId, number: '4242424242424242', expiry: '12/30', cvv: '123', name: 'ANA' }),
  });
  const { token } = (await response.json()) as { token: string };
  return { customerId, token };
}

async function startBff(name: string, env: Record<string, string>): Promise<{ child: Child; url: string }> {
  const port = await freePort();
  const child = await spawnBff(name, childEnv({
    MODE: 'sandbox', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', ADMIN_TOKEN,
    CARD_CHARGE_INTERVAL_SECONDS: '3600', KHIPU_POLL_INTERVAL_SECONDS: '3600', WEBHOOK_DISPATCH_INTERVAL_MS: '3600000',
    ...env,
  }));
  const url = `http://127.0.0.1:${port}`;
  await waitFor200(`${url}/healthz`, 60_000, child);
  return { child, url };
}

/**
 * Starts the charge run on every BFF at once and waits for every answer, or until `capMs` (then the BFFs are left
 * running and the caller stops them): the bench stays bounded when charging is far slower than its goal.
 */
async function chargeRun(
  bffs: Array<{ url: string }>,
  ledgerApproved: () => number,
  total: number,
  capMs: number,
): Promise<{ seconds: number | null; chargedAtCap: number | null; runs: unknown[] }> {
  const started = performance.now();
  const ticker = setInterval(() => progress(`  charged ${ledgerApproved()} / ${total}`), 5_000);
  const runs = Promise.all(bffs.map(async ({ url }) => {
    const response = await fetch(`${url}/admin/jobs/card-charges/run`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, signal: AbortSignal.timeout(capMs + 60_000),
    });
    const body = (await response.json()) as { result?: unknown };
    if (response.status !== 200) throw new Error(`charge run answered ${response.status}: ${JSON.stringify(body).slice(0, 300)}`);
    return body.result;
  }));
  let timer: NodeJS.Timeout | undefined;
  const cap = new Promise<'cap'>((resolve) => {
    timer = setTimeout(() => resolve('cap'), capMs);
  });
  try {
    const outcome = await Promise.race([runs, cap]);
    if (outcome === 'cap') {
      runs.catch(() => undefined); // answered (or cut off) after the BFFs are stopped: no longer of interest
      return { seconds: null, chargedAtCap: ledgerApproved(), runs: [] };
    }
    return { seconds: (performance.now() - started) / 1000, chargedAtCap: null, runs: outcome };
  } finally {
    clearTimeout(timer);
    clearInterval(ticker);
  }
}

function ledgerAudit(ledger: Array<{ outcome: string; merchantOrderId: string }>): { approved: number; duplicates: number } {
  const perInstalment = new Map<string, number>();
  let approved = 0;
  for (const entry of ledger) {
    if (entry.outcome !== 'approved') continue;
    approved += 1;
    // merchantOrderId = reference-instalment-attempt; the same instalment under two attempts is a double charge too.
    const instalment = entry.merchantOrderId.replace(/-\d+$/, '');
    perInstalment.set(instalment, (perInstalment.get(instalment) ?? 0) + 1);
  }
  return { approved, duplicates: [...perInstalment.values()].filter((n) => n > 1).length };
}

async function dbAudit(db: Database): Promise<{ paid: number; notPaid: number }> {
  const { rows } = await db.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM instalments GROUP BY status');
  const paid = rows.find((row) => row.status === 'paid')?.n ?? 0;
  const notPaid = rows.filter((row) => row.status !== 'paid').reduce((sum, row) => sum + row.n, 0);
  return { paid, notPaid };
}

/** (a) The embedded database (PGlite in a temporary DATA_DIR) and one BFF process. */
export async function chargesOnPglite(instalments: number, latencyMs: number, capSeconds: number): Promise<ChargeResult> {
  const sandbox = await startCardSandbox({ latencyMs });
  const closeSandbox = onCleanup('card simulator', () => sandbox.close());
  const { dir, remove } = await tempDir('charges');
  try {
    const card = await cardOnFile(sandbox.url);
    progress(`  seeding ${instalments} due instalments on PGlite`);
    const seedStart = performance.now();
    let db = await openDatabase({ kind: 'pglite', dataDir: dir });
    await seed(db, instalments, 'bp', card);
    await db.close();
    const seedSeconds = (performance.now() - seedStart) / 1000;
    progress(`  seeded in ${seedSeconds.toFixed(1)} s; starting the BFF`);
    const bff = await startBff('bff-charges', { DATA_DIR: dir, CARD_BASE_URL: sandbox.url });
    progress('  charging');
    const run = await chargeRun([bff], () => ledgerAudit(sandbox.state.ledger).approved, instalments, capSeconds * 1000);
    await bff.child.stop(15_000);
    db = await openDatabase({ kind: 'pglite', dataDir: dir });
    const audit = await dbAudit(db);
    await db.close();
    return result('pglite', 1, instalments, latencyMs, seedSeconds, capSeconds, run, ledgerAudit(sandbox.state.ledger), audit);
  } finally {
    await closeSandbox();
    await remove();
  }
}

/** (b) PostgreSQL (a schema of its own, dropped afterwards) and `processes` BFF processes. */
export async function chargesOnPostgres(
  url: string, instalments: number, latencyMs: number, processes: number, capSeconds: number,
): Promise<ChargeResult> {
  const { schema, databaseUrl, drop: dropSchema } = await postgresSchema(url, 'bench_charges');
  const sandbox = await startCardSandbox({ latencyMs });
  const closeSandbox = onCleanup('card simulator', () => sandbox.close());
  let db: Database | null = null;
  const bffs: Array<{ child: Child; url: string }> = [];
  try {
    db = await openDatabase({ kind: 'postgres', url, schema, maxConnections: 5 });
    const card = await cardOnFile(sandbox.url);
    progress(`  seeding ${instalments} due instalments in schema ${schema}`);
    const seedStart = performance.now();
    await seed(db, instalments, 'bq', card);
    const seedSeconds = (performance.now() - seedStart) / 1000;
    progress(`  seeded in ${seedSeconds.toFixed(1)} s; starting ${processes} BFFs`);
    const starting = Array.from({ length: processes }, (_, i) => startBff(`bff-charges-${i + 1}`, { DATABASE_URL: databaseUrl, CARD_BASE_URL: sandbox.url }));
    for (const started of await Promise.allSettled(starting)) if (started.status === 'fulfilled') bffs.push(started.value);
    await Promise.all(starting);
    progress('  charging');
    const run = await chargeRun(bffs, () => ledgerAudit(sandbox.state.ledger).approved, instalments, capSeconds * 1000);
    await Promise.all(bffs.map((bff) => bff.child.stop(15_000)));
    const audit = await dbAudit(db);
    return result('postgres', processes, instalments, latencyMs, seedSeconds, capSeconds, run, ledgerAudit(sandbox.state.ledger), audit);
  } finally {
    await Promise.all(bffs.map((bff) => bff.child.stop(15_000)));
    await db?.close();
    await closeSandbox();
    await dropSchema();
  }
}

function result(
  engine: 'pglite' | 'postgres', processes: number, instalments: number, latencyMs: number, seedSeconds: number, capSeconds: number,
  run: { seconds: number | null; chargedAtCap: number | null; runs: unknown[] },
  ledger: { approved: number; duplicates: number }, audit: { paid: number; notPaid: number },
): ChargeResult {
  const rate = run.seconds !== null ? ledger.approved / run.seconds : (run.chargedAtCap ?? 0) / capSeconds;
  return {
    engine, processes, instalments, latencyMs, seedSeconds: round(seedSeconds),
    seconds: run.seconds === null ? null : round(run.seconds, 2),
    capSeconds, chargedAtCap: run.chargedAtCap, chargesPerSecond: Math.round(rate),
    projectedSeconds: run.seconds === null && rate > 0 ? Math.round(instalments / rate) : null,
    approved: ledger.approved, duplicates: ledger.duplicates, paid: audit.paid, notPaid: audit.notPaid, runs: run.runs,
  };
}
