/**
 * Reconciliation through the admin API, against the built-in Tupay simulator and real orders bought through the
 * public API: matched, unpaid, orphan, mismatch, duplicate, status changes (EXPIRED → COMPLETED, COMPLETED →
 * REJECTED), re-runs that change nothing, CSV, NDJSON progress, the daily job and its webhooks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../support/databases.js';
import { purchaser } from '../support/purchase.js';
import { startStubServer, type StubServer } from '../support/stub-server.js';
import { apiClient, startTestServer, type TestServer } from '../support/test-server.js';
import { startTupaySandbox } from '../../server/sandbox/tupay/tupay-sandbox.js';

const ADMIN_TOKEN = 'admin-token-for-reconciliation-tests-01';
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

describe.each(ENGINES)('reconciliation on %s', (engine) => {
  let server: TestServer;
  let receiver: StubServer;
  const received = () => receiver.requests.map((request) => JSON.parse(request.body) as { type: string; data: any });
  let call: ReturnType<typeof apiClient>;
  const period = () => ({ from: new Date(Date.now() - 3_600_000).toISOString(), to: new Date(Date.now() + 3_600_000).toISOString() });
  let window: { from: string; to: string };
  const orders: Record<string, { reference: string; instalmentAmount: number; price: number }> = {};
  const ids: Record<string, number> = {};
  let simulated: Array<{ externalId: string; amount: number }> = [];

  const reconcile = async (body: Record<string, unknown> = window) => {
    const answer = await call('POST', '/admin/reconciliations', { headers: admin, body });
    expect(answer.status, JSON.stringify(answer.body)).toBe(201);
    return answer.body.report;
  };
  const lines = async (id: string, query = '') => (await call('GET', `/admin/reconciliations/${id}/lines?limit=1000${query}`, { headers: admin })).body.lines as any[];
  const lineOf = (all: any[], kind: string, id: number | string) => all.find((line) => line.kind === kind && line.id === String(id));

  beforeAll(async () => {
    receiver = await startStubServer((_request, res) => res.writeHead(204).end());
    server = await startTestServer({
      engine, backgroundJobs: false,
      env: { ADMIN_TOKEN, MERCHANT_WEBHOOK_URL: `${receiver.url}/hooks`, MERCHANT_WEBHOOK_SECRET: 'reconciliation-webhook-secret' },
    });
    call = apiClient(server.url);
    const shop = purchaser(call, server.url);
    for (const name of ['late', 'short', 'unpaid', 'twice']) {
      const { order } = await shop.buy('email', { planCount: name === 'twice' ? 1 : 12 });
      orders[name] = order;
    }
    orders.card = (await shop.buy('card', { planCount: 12 })).order;
    orders.khipu = (await shop.buy('khipu', { planCount: 1 })).order;

    const tupay = server.tupaySandbox!;
    simulated = tupay.deposits.map((deposit) => ({ externalId: deposit.externalId, amount: deposit.amount }));
    // Only the deposits this test writes: no seeded activity, no simulated customers.
    tupay.deposits.length = 0;
    tupay.cashouts.length = 0;
    const deposit = (externalId: string, amountCentavos: number, status: string) =>
      tupay.addDeposit({ externalId, amountCentavos, status, clientDocument: 'CAMC880526HMCBNR04' }).idDeposit;
    ids.late = deposit(orders.late!.reference, orders.late!.instalmentAmount, 'EXPIRED');
    ids.short = deposit(orders.short!.reference, orders.short!.instalmentAmount - 10_000, 'COMPLETED');
    ids.twice1 = deposit(orders.twice!.reference, orders.twice!.price, 'COMPLETED');
    ids.twice2 = deposit(orders.twice!.reference, orders.twice!.price, 'COMPLETED');
    ids.orphan = deposit('OTRA-TIENDA-0001', 150_000, 'COMPLETED');
    ids.pendingOrphan = deposit('OTRA-TIENDA-0002', 99_000, 'PENDING');
    ids.odd = deposit(orders.unpaid!.reference, orders.unpaid!.instalmentAmount, 'SOMETHING_NEW');
    ids.cashout = tupay.addCashout({ externalId: 'REEMBOLSO-1', amountCentavos: 50_000, status: 'COMPLETED', clientDocument: 'X' }).idCashout;
    window = period();
  });
  afterAll(async () => {
    await server?.close();
    await receiver?.close();
  });

  it('when customers choose to pay later in sandbox mode, then the Tupay simulator receives their deposits, referenced by order', () => {
    const ours = new Set(Object.values(orders).map((order) => order.reference));
    const paidLater = simulated.filter((deposit) => ours.has(deposit.externalId)).map((deposit) => deposit.externalId).sort();
    expect(paidLater).toEqual(['late', 'short', 'unpaid', 'twice'].map((name) => orders[name]!.reference).sort());
    // The sandbox's other sales channels are there too, under references that are not ours.
    expect(simulated.filter((deposit) => !ours.has(deposit.externalId)).length).toBeGreaterThan(10);
  });

  let first: any;
  it('when a period is reconciled, then every payment line and order gets its category, with totals per rail', async () => {
    first = await reconcile();
    expect(first).toMatchObject({
      status: 'completed', trigger: 'admin', previousReportId: null,
      tupay: { synced: true, deposits: { read: 7, inserted: 7, updated: 0 }, cashouts: { read: 1, inserted: 1 } },
      orders: { total: 6, paid: 3, unpaid: 3 },
      counts: {
        matched: 2, mismatch: 1, duplicate: 1, orphan: 2, unknown: 1, unpaid: 3, failed: 1, pending: 1, cashout: 1,
        statusChanges: 0, reversals: 0, paidOrphans: 1,
      },
      // The short payment, the second payment of a one-instalment order, the paid orphan, the unknown status.
      discrepancies: 4,
    });
    const all = await lines(first.id);
    expect(lineOf(all, 'deposit', ids.short!)).toMatchObject({
      category: 'mismatch', orderReference: orders.short!.reference, amount: orders.short!.instalmentAmount - 10_000,
      expected: orders.short!.instalmentAmount, currency: 'MXN', providerStatus: 'COMPLETED',
    });
    expect(lineOf(all, 'deposit', ids.twice1!)).toMatchObject({ category: 'matched' });
    expect(lineOf(all, 'deposit', ids.twice2!)).toMatchObject({ category: 'duplicate' });
    expect(lineOf(all, 'deposit', ids.late!)).toMatchObject({ category: 'failed', state: 'failed', providerStatus: 'EXPIRED' });
    expect(lineOf(all, 'deposit', ids.orphan!)).toMatchObject({ category: 'orphan', state: 'paid', orderReference: 'OTRA-TIENDA-0001' });
    expect(lineOf(all, 'deposit', ids.odd!)).toMatchObject({ category: 'unknown', providerStatus: 'SOMETHING_NEW', orderReference: orders.unpaid!.reference });
    expect(all.filter((line) => line.category === 'unpaid').map((line) => line.id).sort())
      .toEqual([orders.late!.reference, orders.unpaid!.reference, orders.khipu!.reference].sort());
    expect(all.find((line) => line.rail === 'card')).toMatchObject({
      category: 'matched', kind: 'charge', instalmentNumber: 1, amount: orders.card!.instalmentAmount, orderReference: orders.card!.reference,
    });
    expect(all.find((line) => line.rail === 'khipu' && line.kind === 'payment')).toMatchObject({ category: 'pending', kind: 'payment', orderReference: orders.khipu!.reference });
    // Discrepancies first.
    expect(all.slice(0, 5).map((line) => line.category)).toEqual(['mismatch', 'duplicate', 'orphan', 'orphan', 'unknown']);

    const tupayTotal = first.totals.find((total: any) => total.rail === 'tupay');
    expect(tupayTotal).toMatchObject({
      currency: 'MXN',
      paid: { count: 4, centavos: orders.short!.instalmentAmount - 10_000 + 2 * orders.twice!.price + 150_000 },
      pending: { count: 2, centavos: 99_000 + orders.unpaid!.instalmentAmount },
      failed: { count: 1, centavos: orders.late!.instalmentAmount },
    });
    expect(first.totals.find((total: any) => total.rail === 'card')).toMatchObject({ paid: { count: 1, centavos: orders.card!.instalmentAmount } });
    expect(first.totals.find((total: any) => total.rail === 'tupay-cashout')).toMatchObject({ paid: { count: 1, centavos: 50_000 } });
  });

  it('when the run ends, then the Tupay session was destroyed after the last read', () => {
    const requests = server.tupaySandbox!.requests.map((request) => `${request.method} ${request.path}`);
    expect(requests.at(-1)).toBe('DELETE /v1/auth/session/destroy');
    expect(requests.filter((request) => request.startsWith('POST /v1/auth/login'))).toHaveLength(1);
  });

  let second: any;
  it('when a deposit goes EXPIRED → COMPLETED and a cash-out COMPLETED → REJECTED, then the next report shows both changes and the order matched', async () => {
    const tupay = server.tupaySandbox!;
    expect(tupay.setStatus(ids.late!, 'COMPLETED')).toBe(true);
    expect(tupay.setStatus(ids.cashout!, 'REJECTED')).toBe(true);
    second = await reconcile();
    expect(second).toMatchObject({
      previousReportId: first.id,
      tupay: { deposits: { read: 7, inserted: 0, updated: 1, unchanged: 6 }, cashouts: { updated: 1 } },
      orders: { paid: 4, unpaid: 2 },
      counts: { matched: 3, failed: 0, unpaid: 2, statusChanges: 2, reversals: 1 },
      discrepancies: 5,
    });
    const changed = await lines(second.id, '&category=status_change');
    expect(changed).toHaveLength(2);
    expect(lineOf(changed, 'deposit', ids.late!)).toMatchObject({
      category: 'matched', previousStatus: 'EXPIRED', providerStatus: 'COMPLETED', reversal: false, orderReference: orders.late!.reference,
    });
    expect(lineOf(changed, 'cashout', ids.cashout!)).toMatchObject({ category: 'cashout', previousStatus: 'COMPLETED', providerStatus: 'REJECTED', reversal: true });
  });

  it('when the same period is reconciled again, then the ledger changes nothing and no status change is reported', async () => {
    const versions = async () => (await server.db.query<{ n: number }>('SELECT count(*)::int AS n FROM tupay_record_versions')).rows[0]!.n;
    const before = await versions();
    const third = await reconcile();
    expect(third.tupay).toMatchObject({ deposits: { inserted: 0, updated: 0, unchanged: 7 }, cashouts: { inserted: 0, updated: 0, unchanged: 1 } });
    expect(await versions()).toBe(before);
    expect(third.counts).toMatchObject({ ...second.counts, statusChanges: 0, reversals: 0 });
    const strip = (all: any[]) => all.map(({ previousStatus: _p, reversal: _r, ...line }) => line);
    expect(strip(await lines(third.id))).toEqual(strip(await lines(second.id)));
  });

  it('when a record changes while the last report looked at another period, then the ledger’s history still shows the change', async () => {
    const tupay = server.tupaySandbox!;
    const tenDaysAgo = Date.now() - 10 * 86_400_000;
    const old = tupay.addDeposit({
      externalId: orders.unpaid!.reference, amountCentavos: orders.unpaid!.instalmentAmount, status: 'EXPIRED',
      clientDocument: 'X', createdAtMs: tenDaysAgo,
    }).idDeposit;
    const then = { from: new Date(tenDaysAgo - 86_400_000).toISOString(), to: new Date(tenDaysAgo + 86_400_000).toISOString() };
    const before = await reconcile(then);
    expect(lineOf(await lines(before.id), 'deposit', old)).toMatchObject({ category: 'failed', previousStatus: null });
    tupay.setStatus(old, 'COMPLETED');
    // The latest report covers today, without this deposit; the change is seen by this run's re-read.
    await reconcile();
    const after = await reconcile(then);
    expect(lineOf(await lines(after.id), 'deposit', old)).toMatchObject({ category: 'matched', previousStatus: 'EXPIRED' });
  });

  it('when the report is downloaded as CSV, then every line comes with amounts in pesos', async () => {
    const response = await fetch(`${server.url}/admin/reconciliations/${second.id}/report.csv`, { headers: admin });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/csv/);
    const rows = (await response.text()).trimEnd().split('\r\n');
    expect(rows[0]).toBe('seq,category,rail,kind,id,order_reference,provider_status,previous_status,reversal,state,currency,amount,expected,fee,refunded,instalment,occurred_at,changed_at');
    expect(rows).toHaveLength(1 + (await lines(second.id)).length);
    const short = rows.find((row) => row.includes(`,${ids.short},`))!.split(',');
    expect(short.slice(1, 4)).toEqual(['mismatch', 'tupay', 'deposit']);
    const pesos = (centavos: number) => `${Math.trunc(centavos / 100)}.${String(centavos % 100).padStart(2, '0')}`;
    expect(short[11]).toBe(pesos(orders.short!.instalmentAmount - 10_000));
    expect(short[12]).toBe(pesos(orders.short!.instalmentAmount));
  });

  it('when asked for NDJSON, then progress lines stream before the report', async () => {
    const response = await fetch(`${server.url}/admin/reconciliations`, {
      method: 'POST', headers: { ...admin, 'content-type': 'application/json', accept: 'application/x-ndjson' }, body: JSON.stringify(window),
    });
    expect(response.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const events = (await response.text()).trim().split('\n').map((line) => JSON.parse(line));
    expect(events[0]).toMatchObject({ type: 'progress', phase: 'deposits', window: 1, windows: 1, records: 7 });
    expect(events.map((event) => event.phase ?? event.type)).toEqual(['deposits', 'cashouts', 'report', 'report']);
    expect(events.at(-1)).toMatchObject({ type: 'report', report: { status: 'completed', trigger: 'cli' } });
  });

  it('when the period is reversed or too long, or the caller has no token, then a clear error and no report', async () => {
    const before = (await call('GET', '/admin/reconciliations?limit=200', { headers: admin })).body.reports.length;
    const reversed = await call('POST', '/admin/reconciliations', { headers: admin, body: { from: '2026-03-02', to: '2026-03-01' } });
    expect(reversed.status).toBe(400);
    expect(reversed.body.error.code).toBe('VALIDATION_FAILED');
    const long = await call('POST', '/admin/reconciliations', { headers: admin, body: { from: '2024-01-01', to: '2026-01-01' } });
    expect(long.status).toBe(400);
    const streamed = await call('POST', '/admin/reconciliations', {
      headers: { ...admin, accept: 'application/x-ndjson' }, body: { from: '2024-01-01', to: '2026-01-01' },
    });
    expect(streamed.status).toBe(400);
    expect(streamed.body.error.fields).toEqual({ to: 'PERIOD_TOO_LONG' });
    const bad = await call('POST', '/admin/reconciliations', { headers: admin, body: { from: '2026-02-30', to: '2026-03-01' } });
    expect(bad.status).toBe(400);
    const anonymous = await call('POST', '/admin/reconciliations', { body: window });
    expect(anonymous.status).toBe(401);
    expect((await call('GET', '/admin/reconciliations?limit=200', { headers: admin })).body.reports).toHaveLength(before);
  });

  it('when the daily job runs, then one report a day covers the look-back window and the merchant is told, discrepancies included', async () => {
    const at = new Date();
    const hour = (Number(new Date(at.getTime() - 6 * 3_600_000).toISOString().slice(11, 13)));
    // Today in Mexico City, at an hour past the default 06:00 start (or now, if later).
    const runAt = hour >= 6 ? at : new Date(at.getTime() + (6 - hour) * 3_600_000);
    const runs = await Promise.all([1, 2, 3].map(() =>
      call('POST', `/admin/jobs/reconciliation/run?now=${encodeURIComponent(runAt.toISOString())}`, { headers: admin })));
    const reports = runs.map((run) => run.body.result).filter(Boolean);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ trigger: 'daily', status: 'completed' });
    expect(Date.parse(reports[0].period.to) - Date.parse(reports[0].period.from)).toBeGreaterThan(30 * 86_400_000);
    const again = await call('POST', `/admin/jobs/reconciliation/run?now=${encodeURIComponent(runAt.toISOString())}`, { headers: admin });
    expect(again.body.result).toBeNull();

    await server.jobs.webhooks.runNow();
    const completed = received().filter((event) => event.type === 'reconciliation.completed');
    const discrepancy = received().filter((event) => event.type === 'reconciliation.discrepancy');
    expect(completed.map((event) => event.data.reportId)).toEqual(expect.arrayContaining([first.id, second.id, reports[0].id]));
    expect(discrepancy.find((event) => event.data.reportId === second.id)?.data).toMatchObject({
      discrepancies: 5, counts: { mismatch: 1, duplicate: 1, reversals: 1 },
    });
  });

  it('when a Khipu payment of ours was paid after its instalment already was (held for review), then it is a duplicate line of its own, and refunded once refunded', async () => {
    const { rows: [payment] } = await server.db.query<{ id: string; amount_centavos: number }>(
      `UPDATE payments p SET status = 'paid', paid_at = now() FROM orders o
       WHERE o.id = p.order_id AND o.reference = $1 RETURNING p.id, p.amount_centavos`, [orders.khipu!.reference]);
    await server.db.query(
      `INSERT INTO payment_reviews (provider, provider_reference, payment_id, reason, currency, amount_centavos, paid_at)
       VALUES ('khipu', 'khipu-extra-0001', $1, 'payment_already_paid', 'MXN', $2, now())`, [payment!.id, Number(payment!.amount_centavos)]);
    const withReview = await reconcile(period());
    const all = await lines(withReview.id);
    const khipuLines = all.filter((line) => line.rail === 'khipu');
    expect(khipuLines.map((line) => [line.id, line.category, line.state, line.providerStatus, line.instalmentNumber, line.refunded])).toEqual([
      ['khipu-extra-0001', 'duplicate', 'paid', 'needs_review', 1, 0],
      [payment!.id, 'matched', 'paid', 'paid', 1, 0],
    ]);
    // The order is paid by its own payment only; the extra money shows in Khipu's total and as a discrepancy.
    expect(all.filter((line) => line.category === 'unpaid').map((line) => line.id)).not.toContain(orders.khipu!.reference);
    expect(withReview.totals.find((total: any) => total.rail === 'khipu')).toMatchObject({ paid: { count: 2, centavos: 2 * Number(payment!.amount_centavos) } });
    expect(withReview.counts.duplicate).toBe(2);

    await server.db.query(`UPDATE payment_reviews SET status = 'refunded', updated_at = now() WHERE provider_reference = 'khipu-extra-0001'`);
    const refunded = await reconcile(period());
    expect(lineOf(await lines(refunded.id), 'payment', 'khipu-extra-0001')).toMatchObject({
      category: 'duplicate', providerStatus: 'refunded', previousStatus: 'needs_review', refunded: Number(payment!.amount_centavos), reversal: false,
    });
  });
});

describe('reconciliation when Tupay refuses', () => {
  it('when Tupay refuses the keys, then the run fails with a configuration error, is recorded as failed, and nothing leaks', async () => {
    const tupay = await startTupaySandbox({ accessKey: 'ours@kasu.example', secretKey: 'the-right-one' });
    const server = await startTestServer({
      backgroundJobs: false,
      env: { ADMIN_TOKEN, TUPAY_BASE_URL: tupay.url, TUPAY_ACCESS_KEY: 'ours@kasu.example', TUPAY_SECRET_KEY: 'a-wrong-secret-value' },
    });
    try {
      const call = apiClient(server.url);
      const answer = await call('POST', '/admin/reconciliations', { headers: admin, body: { from: '2026-11-01', to: '2026-11-20' } });
      expect(answer.status).toBe(502);
      expect(answer.body.error.code).toBe('PROVIDER_CONFIG_ERROR');
      const { reports } = (await call('GET', '/admin/reconciliations', { headers: admin })).body;
      expect(reports[0]).toMatchObject({ status: 'failed', error: { code: 'PROVIDER_CONFIG_ERROR' } });
      expect(JSON.stringify(answer.body) + server.logs.join('\n')).not.toContain('a-wrong-secret-value');
      // Without sync, the report is built from what the ledger holds.
      const offline = await call('POST', '/admin/reconciliations', { headers: admin, body: { from: '2026-11-01', to: '2026-11-20', sync: false } });
      expect(offline.status).toBe(201);
      expect(offline.body.report.tupay).toEqual({ synced: false, reason: 'not_requested' });
    } finally {
      await server.close();
      await tupay.close();
    }
  });
});
