import { afterEach, describe, expect, it } from 'vitest';
import {
  SANDBOX_TUPAY_ACCESS_KEY,
  SANDBOX_TUPAY_SECRET_KEY,
  customerPays,
  customerPaymentScenario,
  generateDeposits,
  seedSandboxActivity,
  startTupaySandbox,
  tupayDate,
  type CustomerPaymentScenario,
  type TupaySandboxOptions,
} from '../../server/sandbox/tupay/tupay-sandbox.js';

/** 1 June 2026, noon UTC. */
const BASE_NOW = Date.UTC(2026, 5, 1, 12);
const MINUTE = 60_000;
const DAY = 86_400_000;
const NOW_S = BASE_NOW / 1000;

let now = BASE_NOW;
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  now = BASE_NOW;
  await Promise.all(closers.splice(0).map((close) => close()));
});

async function sandbox(options: TupaySandboxOptions = {}) {
  const started = await startTupaySandbox({ now: () => now, ...options });
  closers.push(() => started.close());
  return started;
}

async function login(url: string, body: unknown = { accessKey: SANDBOX_TUPAY_ACCESS_KEY, secretKey: SANDBOX_TUPAY_SECRET_KEY }) {
  const response = await fetch(`${url}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const cookie = response.headers.getSetCookie().find((value) => value.startsWith('BEARER_TOKEN='));
  return { response, cookie, token: cookie?.split(';')[0]?.slice('BEARER_TOKEN='.length) };
}

async function get(url: string, path: string, token: string | undefined, via: 'cookie' | 'authorization' = 'cookie') {
  const headers: Record<string, string> = {};
  if (token) headers[via] = `BEARER_TOKEN=${token}`;
  const response = await fetch(`${url}${path}`, { headers });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const range = (from = NOW_S - 86_400, to = NOW_S) => `from=${from}&to=${to}`;

type Row = Record<string, unknown> & { externalId: string; status: string; creationDate: string; lastChangeDate: string };

/** Every record created in the 90 days up to `toS`, read page by page in two windows (the API allows 60 days). */
async function listAll(url: string, token: string | undefined, path: '/v1/deposits' | '/v1/cashouts', toS = NOW_S): Promise<Row[]> {
  const rows: Row[] = [];
  const half = 45 * 86_400;
  for (const [from, to] of [
    [toS - 2 * half, toS - half - 1],
    [toS - half, toS],
  ] as const) {
    for (let page = 0; ; page++) {
      const { status, body } = await get(url, `${path}?${range(from, to)}&page=${page}`, token);
      expect(status).toBe(200);
      const data = body.data as Row[];
      rows.push(...data);
      if (data.length < 50) break;
    }
  }
  return rows;
}

const byExternalId = (rows: Row[], externalId: string) => rows.find((row) => row.externalId === externalId);
const seconds = (date: string) => Date.parse(`${date.replace(' ', 'T')}Z`);

/** What checkout-service.ts's newOrderReference generates. */
const OUR_REFERENCE = /^KC-[23456789ABCDEFGHJKLMNPQRSTUVWXYZ]{10}$/;

/** References shaped like ours (KC- and 10 characters of its alphabet), numbered. */
function ourReference(n: number): string {
  const alphabet = '23456789ABCDEFGHJKLMNPQRSTUVWXYZ';
  let out = '';
  for (let rest = n, i = 0; i < 10; i++, rest = Math.floor(rest / alphabet.length)) out = (alphabet[rest % alphabet.length] ?? '2') + out;
  return `KC-${out}`;
}

/** The `nth` (from 0) reference of our shape that customerPaymentScenario gives `scenario`. */
function referenceFor(scenario: CustomerPaymentScenario, nth = 0): string {
  for (let n = 0, seen = 0; ; n++) {
    if (customerPaymentScenario(ourReference(n)) !== scenario) continue;
    if (seen === nth) return ourReference(n);
    seen += 1;
  }
}

describe('Tupay sandbox sessions', () => {
  it('when the keys are right, then login answers the user and an HttpOnly BEARER_TOKEN cookie', async () => {
    const tupay = await sandbox();
    const { response, cookie } = await login(tupay.url);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ username: SANDBOX_TUPAY_ACCESS_KEY, idUser: expect.any(Number), idMerchant: expect.any(Number) });
    expect(cookie).toMatch(/^BEARER_TOKEN=[\w-]+;.*HttpOnly/);
  });

  it('when the keys are wrong, then 412 code 11', async () => {
    const tupay = await sandbox();
    const { response, cookie } = await login(tupay.url, { accessKey: SANDBOX_TUPAY_ACCESS_KEY, secretKey: 'nope' });
    expect(response.status).toBe(412);
    expect(await response.json()).toEqual({ code: 11, description: expect.any(String) });
    expect(cookie).toBeUndefined();
  });

  it('when no token or an unknown one is sent, then 401 {code, description}', async () => {
    const tupay = await sandbox();
    expect(await get(tupay.url, `/v1/deposits?${range()}`, undefined)).toMatchObject({ status: 401, body: { code: 401 } });
    expect((await get(tupay.url, `/v1/deposits?${range()}`, 'forged')).status).toBe(401);
  });

  it('when the token comes as a cookie or an Authorization header, then both are accepted', async () => {
    const tupay = await sandbox();
    const { token } = await login(tupay.url);
    expect((await get(tupay.url, `/v1/deposits?${range()}`, token, 'cookie')).status).toBe(200);
    expect((await get(tupay.url, `/v1/deposits?${range()}`, token, 'authorization')).status).toBe(200);
  });

  it('when the session is used every 10 minutes, then it stays alive; after 15 idle minutes, then 401', async () => {
    const tupay = await sandbox();
    const { token } = await login(tupay.url);
    for (let step = 0; step < 3; step++) {
      now += 10 * MINUTE;
      expect((await get(tupay.url, `/v1/deposits?${range()}`, token)).status).toBe(200);
    }
    now += 15 * MINUTE + 1;
    expect((await get(tupay.url, `/v1/deposits?${range()}`, token)).status).toBe(401);
    expect(tupay.state.sessions.size).toBe(0);
  });

  it('when the session is destroyed, then the token no longer works', async () => {
    const tupay = await sandbox();
    const { token } = await login(tupay.url);
    const destroyed = await fetch(`${tupay.url}/v1/auth/session/destroy`, { method: 'DELETE', headers: { cookie: `BEARER_TOKEN=${token}` } });
    expect(destroyed.status).toBe(200);
    expect((await get(tupay.url, `/v1/deposits?${range()}`, token)).status).toBe(401);
  });

  it('when the caller’s IP is not allowed, then 403 code 83, login included', async () => {
    const tupay = await sandbox({ allowedIps: ['10.0.0.1'] });
    const { response } = await login(tupay.url);
    expect(response.status).toBe(403);
    expect(await response.json()).toEqual({ code: 83, description: expect.any(String) });
    const open = await sandbox({ allowedIps: ['127.0.0.1'] });
    expect((await login(open.url)).response.status).toBe(200);
  });
});

describe('Tupay sandbox listings', () => {
  it('when `from` is after `to`, then 412 code 17', async () => {
    const tupay = await sandbox();
    const { token } = await login(tupay.url);
    expect(await get(tupay.url, `/v1/deposits?${range(NOW_S, NOW_S - 1)}`, token)).toMatchObject({ status: 412, body: { code: 17 } });
  });

  it('when the range is longer than 60 days, then 412 code 18; exactly 60 days is accepted', async () => {
    const tupay = await sandbox();
    const { token } = await login(tupay.url);
    const sixty = 60 * 86_400;
    expect(await get(tupay.url, `/v1/cashouts?${range(NOW_S - sixty - 1, NOW_S)}`, token)).toMatchObject({ status: 412, body: { code: 18 } });
    expect((await get(tupay.url, `/v1/cashouts?${range(NOW_S - sixty, NOW_S)}`, token)).status).toBe(200);
  });

  it('when the country is unknown or `from` is missing, then 412 code 19 or 16', async () => {
    const tupay = await sandbox();
    const { token } = await login(tupay.url);
    expect(await get(tupay.url, `/v1/deposits?${range()}&country=XX`, token)).toMatchObject({ status: 412, body: { code: 19 } });
    expect(await get(tupay.url, `/v1/deposits?to=${NOW_S}`, token)).toMatchObject({ status: 412, body: { code: 16 } });
  });

  it('when 120 deposits match, then pages 0, 1, 2 hold 50, 50 and 20 rows and page 3 none', async () => {
    const tupay = await sandbox({ deposits: generateDeposits(120, 2, { startMs: BASE_NOW - DAY, stepMs: MINUTE }) });
    const { token } = await login(tupay.url);
    const pages = [];
    for (let page = 0; page < 4; page++) pages.push((await get(tupay.url, `/v1/deposits?${range()}&page=${page}`, token)).body);
    expect(pages.map((page) => [page.page, page.rows, page.maxRows, (page.data as unknown[]).length])).toEqual([
      [0, 50, 50, 50],
      [1, 50, 50, 50],
      [2, 20, 50, 20],
      [3, 0, 50, 0],
    ]);
  });

  it('when filters are given, then only matching deposits come, by creation date inclusive', async () => {
    const deposits = generateDeposits(10, 9, { startMs: BASE_NOW - 10 * DAY, stepMs: DAY });
    const tupay = await sandbox({ deposits });
    const { token } = await login(tupay.url);
    const target = deposits[4];
    const since = Date.parse(`${target?.creationDate.replace(' ', 'T')}Z`) / 1000;
    const byDate = await get(tupay.url, `/v1/deposits?${range(since, since)}`, token);
    expect((byDate.body.data as Array<{ idDeposit: number }>).map((deposit) => deposit.idDeposit)).toEqual([target?.idDeposit]);
    const byDocument = await get(tupay.url, `/v1/deposits?${range(NOW_S - 20 * 86_400)}&clienteDocument=${target?.clientDocument}`, token);
    expect((byDocument.body.data as unknown[]).length).toBeGreaterThanOrEqual(1);
    const byStatus = await get(tupay.url, `/v1/deposits?${range(NOW_S - 20 * 86_400)}&status=NOPE`, token);
    expect(byStatus.body.rows).toBe(0);
  });

  it('when a deposit’s status is changed, then lastChangeDate moves to the sandbox clock', async () => {
    const [deposit] = generateDeposits(1, 1, { startMs: BASE_NOW - DAY });
    const tupay = await sandbox({ deposits: deposit ? [deposit] : [] });
    now = Date.UTC(2026, 5, 2, 8, 30);
    expect(tupay.state.setStatus(deposit?.idDeposit ?? 0, 'COMPLETED')).toBe(true);
    expect(tupay.state.setStatus(1, 'COMPLETED')).toBe(false);
    expect(tupay.state.deposits[0]).toMatchObject({ status: 'COMPLETED', lastChangeDate: '2026-06-02 08:30:00' });
  });
});

describe('generateDeposits', () => {
  it('when called twice with the same seed, then the same deposits come; another seed gives others', () => {
    const first = generateDeposits(500, 42);
    expect(generateDeposits(500, 42)).toEqual(first);
    expect(generateDeposits(500, 43)).not.toEqual(first);
    expect(new Set(first.map((deposit) => deposit.idDeposit)).size).toBe(500);
    expect(first.every((deposit) => deposit.amount >= 100 && deposit.amount <= 5_000 && deposit.currency === 'MXN')).toBe(true);
  });
});

describe('Tupay sandbox status timelines', () => {
  it('when a timeline step’s time passes, then the listing shows its status stamped with the step’s time, not the read’s', async () => {
    const tupay = await sandbox();
    tupay.state.addDeposit({
      externalId: 'KSU-T-1',
      amountCentavos: 50_000,
      clientDocument: 'CURP00000001',
      status: 'PENDING',
      createdAtMs: BASE_NOW - 60 * MINUTE,
      timeline: [
        { atMs: BASE_NOW + 5 * MINUTE, status: 'EXPIRED' },
        { atMs: BASE_NOW + 20 * MINUTE, status: 'COMPLETED' },
      ],
    });
    const { token } = await login(tupay.url);
    const read = async () => byExternalId(await listAll(tupay.url, token, '/v1/deposits'), 'KSU-T-1');
    expect(await read()).toMatchObject({ status: 'PENDING', lastChangeDate: '2026-06-01 11:00:00' });
    now = BASE_NOW + 5 * MINUTE - 1;
    expect(await read()).toMatchObject({ status: 'PENDING', lastChangeDate: '2026-06-01 11:00:00' });
    now = BASE_NOW + 13 * MINUTE;
    expect(await read()).toMatchObject({ status: 'EXPIRED', lastChangeDate: '2026-06-01 12:05:00' });
    now = BASE_NOW + 27 * MINUTE;
    expect(await read()).toMatchObject({ status: 'COMPLETED', lastChangeDate: '2026-06-01 12:20:00' });
  });

  it('when a record has a timeline, then neither the answers nor the stored record show it', async () => {
    const tupay = await sandbox();
    tupay.state.addDeposit({
      externalId: 'KSU-T-2',
      amountCentavos: 10_000,
      clientDocument: 'CURP00000002',
      status: 'PENDING',
      timeline: [{ atMs: BASE_NOW + DAY, status: 'COMPLETED' }],
    });
    tupay.state.addCashout({
      externalId: 'KSU-T-3',
      amountCentavos: 10_000,
      clientDocument: 'CURP00000002',
      status: 'COMPLETED',
      timeline: [{ atMs: BASE_NOW + DAY, status: 'REJECTED' }],
    });
    const { token } = await login(tupay.url);
    for (const [path, future] of [
      ['/v1/deposits', 'COMPLETED'],
      ['/v1/cashouts', 'REJECTED'],
    ]) {
      const text = await (await fetch(`${tupay.url}${path}?${range()}`, { headers: { cookie: `BEARER_TOKEN=${token}` } })).text();
      expect(text).toContain('KSU-T-');
      expect(text).not.toMatch(/timeline|atMs/);
      expect(text).not.toContain(future);
    }
    expect(Object.keys(tupay.state.deposits[0] ?? {}).sort()).toEqual(
      ['idDeposit', 'externalId', 'creationDate', 'country', 'paymentMethodCode', 'requestedPaymentMethod', 'clientDocument', 'amount', 'currency', 'localAmount', 'localCurrency', 'fee', 'lastChangeDate', 'status'].sort(),
    );
    expect(Object.keys(tupay.state.cashouts[0] ?? {}).sort()).toEqual(
      ['idCashout', 'externalId', 'creationDate', 'country', 'currency', 'amount', 'fee', 'lastChangeDate', 'status', 'clientDocument', 'reason'].sort(),
    );
  });

  it('when deposits and cash-outs are added, then centavos are written in pesos and ids follow the existing ones', async () => {
    const tupay = await sandbox({ deposits: generateDeposits(3, 1, { startMs: BASE_NOW - DAY }) });
    const deposit = tupay.state.addDeposit({ externalId: 'KSU-A-1', amountCentavos: 123_456, clientDocument: 'CURP00000003', status: 'COMPLETED' });
    expect(deposit).toEqual({
      idDeposit: 300_000_004,
      externalId: 'KSU-A-1',
      creationDate: '2026-06-01 12:00:00',
      country: 'MX',
      paymentMethodCode: 'XA',
      requestedPaymentMethod: 'XA',
      clientDocument: 'CURP00000003',
      amount: 1234.56,
      currency: 'MXN',
      localAmount: 1234.56,
      localCurrency: 'MXN',
      fee: 37.04,
      lastChangeDate: '2026-06-01 12:00:00',
      status: 'COMPLETED',
    });
    const first = tupay.state.addCashout({ externalId: 'KSU-A-2', amountCentavos: 5, clientDocument: 'CURP00000003', status: 'PENDING', reason: 'Reembolso' });
    const second = tupay.state.addCashout({ externalId: 'KSU-A-3', amountCentavos: 100, clientDocument: 'CURP00000003', status: 'PENDING', createdAtMs: BASE_NOW - DAY });
    expect([first.idCashout, first.amount, first.reason, second.idCashout, second.amount, second.reason, second.creationDate]).toEqual([
      400_000_001, 0.05, 'Reembolso', 400_000_002, 1, null, '2026-05-31 12:00:00',
    ]);
    const { token } = await login(tupay.url);
    expect(byExternalId(await listAll(tupay.url, token, '/v1/deposits'), 'KSU-A-1')).toEqual(deposit);
    expect(() => tupay.state.addDeposit({ externalId: 'x', amountCentavos: 12.5, clientDocument: 'x', status: 'PENDING' })).toThrow(RangeError);
  });
});

describe('customerPays', () => {
  it('when references of our shape are many, then about 70 % are on time, 20 % late and 10 % short', () => {
    const counts = { on_time: 0, late: 0, short: 0 };
    for (let n = 0; n < 4_000; n++) counts[customerPaymentScenario(ourReference(n))] += 1;
    expect(Math.abs(counts.on_time / 4_000 - 0.7)).toBeLessThan(0.03);
    expect(Math.abs(counts.late / 4_000 - 0.2)).toBeLessThan(0.03);
    expect(Math.abs(counts.short / 4_000 - 0.1)).toBeLessThan(0.03);
    expect(customerPaymentScenario('KC-ABCDEFGHJK')).toBe(customerPaymentScenario('KC-ABCDEFGHJK'));
  });

  it('when the customer pays, then each scenario shows its statuses at +1, +3 and +11 minutes, and a short one 100.00 less', async () => {
    const tupay = await sandbox();
    const [onTime, late, short] = [referenceFor('on_time'), referenceFor('late'), referenceFor('short')] as const;
    for (const reference of [onTime, late, short]) {
      customerPays(tupay.state, { reference, amountCentavos: 250_000, clientDocument: 'CURP00000004', nowMs: BASE_NOW });
    }
    const expected: Record<string, string[]> = {
      [onTime]: ['PENDING', 'COMPLETED', 'COMPLETED'],
      [late]: ['PENDING', 'EXPIRED', 'COMPLETED'],
      [short]: ['PENDING', 'COMPLETED', 'COMPLETED'],
    };
    const { token } = await login(tupay.url);
    const seen: Record<string, string[]> = { [onTime]: [], [late]: [], [short]: [] };
    for (const minutes of [1, 3, 11]) {
      now = BASE_NOW + minutes * MINUTE;
      const rows = await listAll(tupay.url, token, '/v1/deposits', Math.floor(now / 1000));
      for (const reference of [onTime, late, short]) seen[reference]?.push(byExternalId(rows, reference)?.status ?? 'missing');
    }
    expect(seen).toEqual(expected);
    const rows = await listAll(tupay.url, token, '/v1/deposits', Math.floor(now / 1000));
    expect(byExternalId(rows, onTime)).toMatchObject({ amount: 2500, creationDate: '2026-06-01 12:00:00', lastChangeDate: '2026-06-01 12:02:00' });
    expect(byExternalId(rows, late)).toMatchObject({ amount: 2500, lastChangeDate: '2026-06-01 12:10:00' });
    expect(byExternalId(rows, short)).toMatchObject({ amount: 2400, localAmount: 2400, lastChangeDate: '2026-06-01 12:02:00' });
  });

  it('when a short payment is asked for 50.00 or a reference pays twice, then 1.00 is paid and the first deposit comes back', async () => {
    const tupay = await sandbox();
    const reference = referenceFor('short', 1);
    const paid = customerPays(tupay.state, { reference, amountCentavos: 5_000, clientDocument: 'CURP00000005', nowMs: BASE_NOW });
    expect(paid.amount).toBe(1);
    expect(customerPays(tupay.state, { reference, amountCentavos: 5_000, clientDocument: 'CURP00000005', nowMs: BASE_NOW + DAY })).toBe(paid);
    expect(tupay.state.deposits).toHaveLength(1);
  });
});

describe('seedSandboxActivity', () => {
  it('when seeded twice with one seed, then the same records come; they are 90 days old at most and none is one of our orders', async () => {
    const seeded = await sandbox({ seedActivity: { seed: 7 } });
    const again = await sandbox();
    const added = seedSandboxActivity(again.state, { nowMs: BASE_NOW, seed: 7 });
    const other = await sandbox({ seedActivity: { seed: 8 } });
    const read = async (url: string) => {
      const { token } = await login(url);
      return { deposits: await listAll(url, token, '/v1/deposits'), cashouts: await listAll(url, token, '/v1/cashouts') };
    };
    const first = await read(seeded.url);
    expect(await read(again.url)).toEqual(first);
    expect(await read(other.url)).not.toEqual(first);
    expect([first.deposits.length, first.cashouts.length, added.deposits.length, added.cashouts.length]).toEqual([24, 8, 24, 8]);
    for (const row of [...first.deposits, ...first.cashouts]) {
      expect(seconds(row.creationDate)).toBeGreaterThanOrEqual(BASE_NOW - 90 * DAY);
      expect(seconds(row.creationDate)).toBeLessThanOrEqual(BASE_NOW);
      expect(row.externalId).toMatch(/^TIENDA-7-/);
      expect(row.externalId).not.toMatch(OUR_REFERENCE);
    }
    expect(new Set(first.deposits.map((row) => row.status)).size).toBeGreaterThanOrEqual(3);
    // Past timeline steps were applied on the first read: a deposit paid after it expired shows a later change.
    expect(first.deposits.some((row) => row.status === 'COMPLETED' && seconds(row.lastChangeDate) > seconds(row.creationDate))).toBe(true);
    expect(first.cashouts.every((row) => typeof row.reason === 'string' && row.reason !== '')).toBe(true);
  });

  it('when three days pass, then one seeded cash-out goes COMPLETED → REJECTED 3 days after its creation, and one PENDING → DELIVERED', async () => {
    const tupay = await sandbox({ seedActivity: { seed: 3 } });
    const before = await listAll(tupay.url, (await login(tupay.url)).token, '/v1/cashouts');
    now = BASE_NOW + 3 * DAY;
    const after = await listAll(tupay.url, (await login(tupay.url)).token, '/v1/cashouts');
    const changes = before.map((row) => [row, byExternalId(after, row.externalId)] as const).filter(([was, is]) => was.status !== is?.status);
    expect(changes.map(([was, is]) => `${was.status} → ${is?.status}`).sort()).toEqual(['COMPLETED → REJECTED', 'PENDING → DELIVERED']);
    const [was, is] = changes.find(([, row]) => row?.status === 'REJECTED') ?? [];
    expect(was?.lastChangeDate).toBe(was?.creationDate);
    expect(is?.lastChangeDate).toBe(tupayDate(seconds(was?.creationDate ?? '') + 3 * DAY));
  });
});
