/**
 * The Tupay ledger against the Tupay simulator over real HTTP, on both databases: batches across page and batch
 * boundaries, idempotent re-reads, versions kept, stale reads ignored, zone-less dates read in the configured offset.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TupayClient, type TupayDeposit } from '../../server/providers/tupay/tupay-client.js';
import { TupayLedger, parseTupayDate, type TupayReader } from '../../server/reconciliation/tupay-ledger.js';
import {
  SANDBOX_TUPAY_ACCESS_KEY, SANDBOX_TUPAY_SECRET_KEY, generateDeposits, startTupaySandbox,
} from '../../server/sandbox/tupay/tupay-sandbox.js';
import { ENGINES, openTestDatabase } from '../support/databases.js';

const START = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;

describe.each(ENGINES)('Tupay ledger on %s', (engine) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  let tupay: Awaited<ReturnType<typeof startTupaySandbox>>;
  let client: TupayClient;
  const ledger = () => new TupayLedger(database.db, { utcOffset: '+00:00' });
  // 1,234 deposits an hour apart: 52 days, 25 pages, 3 batches of 500.
  const period = { from: new Date(START), to: new Date(START + 1_234 * HOUR) };

  beforeAll(async () => {
    database = await openTestDatabase(engine);
    tupay = await startTupaySandbox({ deposits: generateDeposits(1_234, 7, { startMs: START, stepMs: HOUR }) });
    client = new TupayClient({
      baseUrl: tupay.url, accessKey: SANDBOX_TUPAY_ACCESS_KEY, secretKey: SANDBOX_TUPAY_SECRET_KEY,
      timeouts: { connectMs: 2_000, headersMs: 5_000, bodyMs: 5_000 }, userAgent: 'test',
    });
  });
  afterAll(async () => {
    await client?.close();
    await tupay?.close();
    await database?.drop();
  });

  const count = async (table: string) => (await database.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]!.n;

  it('when 1,234 deposits are read, then all are stored once in centavos, and reading them again changes nothing', async () => {
    const pages: number[] = [];
    const first = await ledger().sync(client, period, (progress) => pages.push(progress.page));
    expect(first.deposits).toEqual({ read: 1_234, inserted: 1_234, updated: 0, unchanged: 0, rejected: 0 });
    expect(pages).toHaveLength(Math.ceil(1_234 / 50) + 1);
    expect(await count('tupay_records')).toBe(1_234);
    const sample = tupay.state.deposits[777]!;
    const { rows } = await database.db.query<{ amount_centavos: number; created_at: Date; status: string }>(
      `SELECT amount_centavos, created_at, status FROM tupay_records WHERE kind = 'deposit' AND id = $1`, [String(sample.idDeposit)],
    );
    expect(rows[0]).toMatchObject({ amount_centavos: Math.round(sample.amount * 100), status: sample.status });
    expect(new Date(rows[0]!.created_at).getTime()).toBe(START + 777 * HOUR);

    const versions = await count('tupay_record_versions');
    const again = await ledger().sync(client, period);
    expect(again.deposits).toEqual({ read: 1_234, inserted: 0, updated: 0, unchanged: 1_234, rejected: 0 });
    expect(await count('tupay_record_versions')).toBe(versions);
    expect(await count('tupay_records')).toBe(1_234);
  });

  it('when a record changes at Tupay, then one update and one more version, with the status before', async () => {
    const record = tupay.state.deposits[10]!;
    const before = record.status;
    const after = before === 'COMPLETED' ? 'REJECTED' : 'COMPLETED';
    tupay.state.setStatus(record.idDeposit, after);
    const result = await ledger().sync(client, period);
    expect(result.deposits).toMatchObject({ updated: 1, inserted: 0, unchanged: 1_233 });
    const { rows } = await database.db.query<{ status: string; previous_status: string | null }>(
      `SELECT status, previous_status FROM tupay_record_versions WHERE kind = 'deposit' AND record_id = $1 ORDER BY id`,
      [String(record.idDeposit)],
    );
    expect(rows).toEqual([{ status: before, previous_status: null }, { status: after, previous_status: before }]);
  });

  it('when a read is older than what the ledger holds, then it does not undo the later change', async () => {
    const record = tupay.state.deposits[10]!;
    const stale: TupayDeposit = {
      idDeposit: String(record.idDeposit), externalId: record.externalId, creationDate: record.creationDate, country: 'MX',
      paymentMethodCode: 'XA', requestedPaymentMethod: 'XA', clientDocument: null, amount: 100, currency: 'MXN',
      localAmount: null, localCurrency: null, fee: null, lastChangeDate: '2020-01-01 00:00:00', status: 'PENDING',
    };
    let loggedOut = false;
    const reader: TupayReader = {
      async *deposits() { yield stale; },
      async *cashouts() {},
      async logout() { loggedOut = true; },
    };
    const result = await ledger().sync(reader, period);
    expect(result.deposits).toMatchObject({ read: 1, unchanged: 1, updated: 0 });
    expect(loggedOut).toBe(true);
    const { rows } = await database.db.query<{ status: string }>(
      `SELECT status FROM tupay_records WHERE kind = 'deposit' AND id = $1`, [String(record.idDeposit)]);
    expect(rows[0]!.status).toBe(record.status);
  });

  it('when a record has an unreadable date, then it is left out and counted, and the others are stored', async () => {
    const good = { ...generateDeposits(1, 99, { startMs: START, firstId: 900_000_001 })[0]! };
    const reader: TupayReader = {
      async *deposits() {
        yield { ...(good as any), idDeposit: '900000002', creationDate: 'yesterday', amount: 1, lastChangeDate: null, fee: null, localAmount: null };
        yield { ...(good as any), idDeposit: String(good.idDeposit), amount: 12_345, fee: null, localAmount: null };
      },
      async *cashouts() {},
      async logout() {},
    };
    const result = await ledger().sync(reader, period);
    expect(result.deposits).toEqual({ read: 2, inserted: 1, updated: 0, unchanged: 0, rejected: 1 });
  });

  it('when the reader fails midway, then what was read is kept and the session is still ended', async () => {
    let loggedOut = false;
    const reader: TupayReader = {
      async *deposits() {
        yield* generateDeposits(3, 5, { startMs: START, firstId: 910_000_001 }).map((record) => ({ ...(record as any), idDeposit: String(record.idDeposit), amount: Math.round(record.amount * 100), lastChangeDate: null, fee: null, localAmount: null }));
        throw new Error('connection reset');
      },
      async *cashouts() {},
      async logout() { loggedOut = true; },
    };
    await expect(ledger().sync(reader, period)).rejects.toThrow('connection reset');
    expect(loggedOut).toBe(true);
    const { rows } = await database.db.query<{ id: string }>(
      `SELECT id FROM tupay_records WHERE id IN ('910000001', '910000002', '910000003') ORDER BY id`);
    expect(rows.map((row) => row.id)).toEqual(['910000001', '910000002', '910000003']);
  });
});

describe('Tupay dates', () => {
  it('when a date has no zone, then it is read in the configured offset; with a zone, as it says', () => {
    expect(parseTupayDate('2026-03-01 10:00:00', '+00:00')).toBe(Date.UTC(2026, 2, 1, 10));
    expect(parseTupayDate('2026-03-01 10:00:00', '-05:00')).toBe(Date.UTC(2026, 2, 1, 15));
    expect(parseTupayDate('2026-03-01T10:00:00-06:00', '+00:00')).toBe(Date.UTC(2026, 2, 1, 16));
    expect(parseTupayDate('not a date', '+00:00')).toBeNaN();
  });
});
