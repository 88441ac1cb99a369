import { afterEach, describe, expect, it } from 'vitest';
import { failure } from '../support/provider-errors.js';
import { sendJson, startStubServer } from '../support/stub-server.js';
import { createMemoryLogger } from '../../server/log.js';
import { TupayClient, tupayWindows, type TupayConfig } from '../../server/providers/tupay/tupay-client.js';
import {
  SANDBOX_TUPAY_ACCESS_KEY,
  SANDBOX_TUPAY_SECRET_KEY,
  generateDeposits,
  startTupaySandbox,
  type TupaySandboxCashout,
  type TupaySandboxOptions,
  type TupaySandboxRequest,
} from '../../server/sandbox/tupay/tupay-sandbox.js';

/** 1 June 2026, noon UTC. */
const BASE_NOW = Date.UTC(2026, 5, 1, 12);
const MINUTE = 60_000;
const DAY = 86_400_000;

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

function client(baseUrl: string, overrides: Partial<TupayConfig> = {}, clientNow?: () => number, logger = createMemoryLogger()) {
  const made = new TupayClient(
    {
      baseUrl,
      accessKey: SANDBOX_TUPAY_ACCESS_KEY,
      secretKey: SANDBOX_TUPAY_SECRET_KEY,
      timeouts: { connectMs: 2_000, headersMs: 1_000, bodyMs: 1_000 },
      userAgent: 'kasu-checkout-test/0.1',
      ...overrides,
    },
    { logger, ...(clientNow ? { now: clientNow } : {}) },
  );
  closers.push(() => made.close());
  return made;
}

async function collect<T>(records: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const record of records) all.push(record);
  return all;
}

const listCalls = (requests: TupaySandboxRequest[], path = '/v1/deposits') => requests.filter((request) => request.path === path);

describe('TupayClient windows and pages', () => {
  it('when a 150-day period is read, then it is asked as three windows of at most 60 days covering it exactly', async () => {
    const from = new Date(Date.UTC(2026, 0, 1));
    const to = new Date(from.getTime() + 150 * DAY);
    const tupay = await sandbox({ deposits: generateDeposits(151, 7, { startMs: from.getTime(), stepMs: DAY }) });

    const records = await collect(client(tupay.url).deposits({ from, to }));

    expect(records).toHaveLength(151);
    expect(new Set(records.map((record) => record.idDeposit)).size).toBe(151);
    const calls = listCalls(tupay.state.requests);
    // One record a day: the first two windows hold 61 records each (two pages), the last one 29.
    expect(calls.map((request) => request.query.page)).toEqual(['0', '1', '0', '1', '0']);
    const windows = calls
      .filter((request) => request.query.page === '0')
      .map((request) => ({ from: Number(request.query.from), to: Number(request.query.to) }));
    expect(windows).toHaveLength(3);
    expect(windows[0]?.from).toBe(from.getTime() / 1000);
    expect(windows[2]?.to).toBe(to.getTime() / 1000);
    for (const [index, window] of windows.entries()) {
      expect(window.to - window.from).toBeLessThanOrEqual(60 * 86_400);
      if (index > 0) expect(window.from).toBe((windows[index - 1]?.to ?? 0) + 1);
    }
    expect(tupay.state.requests.every((request) => request.status === 200)).toBe(true);
  });

  it('when the period is exactly 60 days or reversed, then it is asked as one window', () => {
    expect(tupayWindows(0, 60 * 86_400)).toEqual([{ from: 0, to: 60 * 86_400 }]);
    expect(tupayWindows(10, 5)).toEqual([{ from: 10, to: 5 }]);
  });

  it('when 120 records match, then three pages are read from page 0 and every record comes once, amounts in centavos', async () => {
    const deposits = generateDeposits(120, 3, { startMs: BASE_NOW - 10 * DAY, stepMs: MINUTE });
    const tupay = await sandbox({ deposits });

    const records = await collect(client(tupay.url).deposits({ from: new Date(BASE_NOW - 30 * DAY), to: new Date(BASE_NOW) }));

    expect(records.map((record) => record.idDeposit)).toEqual(deposits.map((deposit) => String(deposit.idDeposit)));
    expect(listCalls(tupay.state.requests).map((request) => request.query.page)).toEqual(['0', '1', '2']);
    const first = deposits[0];
    expect(records[0]).toMatchObject({
      externalId: first?.externalId,
      amount: Math.round((first?.amount ?? 0) * 100),
      fee: Math.round((first?.fee ?? 0) * 100),
      currency: 'MXN',
      status: first?.status,
    });
    expect(records.every((record) => Number.isSafeInteger(record.amount))).toBe(true);
  });

  it('when exactly 50 records match, then the full page is followed by an empty page and the read stops', async () => {
    const tupay = await sandbox({ deposits: generateDeposits(50, 4, { startMs: BASE_NOW - DAY, stepMs: MINUTE }) });

    const records = await collect(client(tupay.url).deposits({ from: new Date(BASE_NOW - 2 * DAY), to: new Date(BASE_NOW) }));

    expect(records).toHaveLength(50);
    expect(listCalls(tupay.state.requests).map((request) => request.query.page)).toEqual(['0', '1']);
  });

  it('when `rows` claims a total, then the client still pages by the length of `data`', async () => {
    const page = (index: number, count: number) =>
      Array.from({ length: count }, (_, n) => ({ idDeposit: index * 100 + n, creationDate: '2026-05-01 00:00:00', amount: 1, status: 'COMPLETED' }));
    const stub = await startStubServer((req, res) => {
      if (req.url.startsWith('/v1/auth/login')) {
        res.setHeader('set-cookie', 'BEARER_TOKEN=abc; Path=/; HttpOnly');
        sendJson(res, 200, {});
        return;
      }
      const index = Number(new URL(req.url, 'http://x').searchParams.get('page'));
      sendJson(res, 200, { page: index, rows: 999, maxRows: 50, data: page(index, index === 0 ? 50 : 3) });
    });
    closers.push(() => stub.close());

    const records = await collect(client(stub.url).deposits({ from: new Date(BASE_NOW - DAY), to: new Date(BASE_NOW) }));

    expect(records).toHaveLength(53);
  });

  it('when records carry unknown statuses, extra fields and string amounts, then they are read all the same', async () => {
    const stub = await startStubServer((req, res) => {
      if (req.url.startsWith('/v1/auth/login')) {
        res.setHeader('set-cookie', ['other=1; Path=/', 'BEARER_TOKEN=tok-1; Path=/; HttpOnly']);
        sendJson(res, 200, { idUser: 1, username: 'x', idMerchant: 2 });
        return;
      }
      sendJson(res, 200, {
        page: 0,
        rows: 1,
        maxRows: 50,
        data: [{ idCashout: 9, creationDate: '2026-05-01 00:00:00', amount: '1234.5', fee: 2.345, status: 'SOMETHING_NEW', brandNew: { x: 1 } }],
      });
    });
    closers.push(() => stub.close());

    const [cashout] = await collect(client(stub.url).cashouts({ from: new Date(BASE_NOW - DAY), to: new Date(BASE_NOW) }));

    expect(cashout).toMatchObject({ idCashout: '9', amount: 123_450, fee: 235, status: 'SOMETHING_NEW', reason: null });
    expect(stub.requests[1]?.headers.cookie).toBe('BEARER_TOKEN=tok-1');
  });

  it('when filters are given, then they go as the document names them (clienteDocument unless configured)', async () => {
    const tupay = await sandbox();
    const filter = { from: new Date(BASE_NOW - DAY), to: new Date(BASE_NOW), paymentMethod: 'XAQR', country: 'MX', clientDocument: 'DOC1', status: 'COMPLETED' };

    await collect(client(tupay.url).deposits(filter));
    await collect(client(tupay.url, { clientDocumentParam: 'clientDocument' }).cashouts(filter));

    const [deposits] = listCalls(tupay.state.requests);
    const [cashouts] = listCalls(tupay.state.requests, '/v1/cashouts');
    expect(deposits?.query).toMatchObject({ paymentMethod: 'XAQR', country: 'MX', clienteDocument: 'DOC1', status: 'COMPLETED', page: '0' });
    expect(cashouts?.query).toMatchObject({ clientDocument: 'DOC1' });
    expect(cashouts?.query.clienteDocument).toBeUndefined();
  });
});

describe('TupayClient session', () => {
  const period = () => ({ from: new Date(now - DAY), to: new Date(now) });

  it('when calls follow each other within 15 minutes, then one login serves them all (the session slides)', async () => {
    const tupay = await sandbox();
    const tupayClient = client(tupay.url, {}, () => now);

    for (let step = 0; step < 4; step++) {
      await collect(tupayClient.deposits(period()));
      now += 10 * MINUTE;
    }

    expect(tupay.state.logins).toBe(1);
  });

  it('when the session expired at Tupay, then the client logs in again once and repeats the call', async () => {
    const tupay = await sandbox({ deposits: generateDeposits(3, 1, { startMs: BASE_NOW - DAY }) });
    // The client's clock stands still, so only Tupay's 401 tells it the session is gone.
    const tupayClient = client(tupay.url, {}, () => BASE_NOW);
    await collect(tupayClient.deposits(period()));

    now += 16 * MINUTE;
    const records = await collect(tupayClient.deposits({ from: new Date(BASE_NOW - DAY), to: new Date(BASE_NOW) }));

    expect(records).toHaveLength(3);
    expect(tupay.state.logins).toBe(2);
    expect(listCalls(tupay.state.requests).map((request) => request.status)).toEqual([200, 401, 200]);
  });

  it('when the client knows the session has been idle too long, then it logs in before calling', async () => {
    const tupay = await sandbox();
    const tupayClient = client(tupay.url, {}, () => now);
    await collect(tupayClient.deposits(period()));

    now += 15 * MINUTE;
    await collect(tupayClient.deposits(period()));

    expect(tupay.state.logins).toBe(2);
    expect(tupay.state.requests.some((request) => request.status === 401)).toBe(false);
  });

  it('when Tupay refuses even a fresh token, then it fails as a configuration error after one retry', async () => {
    const stub = await startStubServer((req, res) => {
      if (req.url.startsWith('/v1/auth/login')) {
        res.setHeader('set-cookie', 'BEARER_TOKEN=t; Path=/');
        sendJson(res, 200, {});
        return;
      }
      sendJson(res, 401, { code: 401, description: 'Unauthorized' });
    });
    closers.push(() => stub.close());

    const error = await failure(collect(client(stub.url).deposits(period())));

    expect(error.code).toBe('PROVIDER_CONFIG_ERROR');
    expect(stub.requests.filter((request) => request.url.startsWith('/v1/auth/login'))).toHaveLength(2);
  });

  it('when the work is done and logout is called, then the session is destroyed at Tupay', async () => {
    const tupay = await sandbox();
    const tupayClient = client(tupay.url, {}, () => now);
    await collect(tupayClient.deposits(period()));
    expect(tupay.state.sessions.size).toBe(1);

    await tupayClient.logout();

    expect(tupay.state.sessions.size).toBe(0);
    const destroy = tupay.state.requests.at(-1);
    expect(destroy).toMatchObject({ method: 'DELETE', path: '/v1/auth/session/destroy', status: 200 });
    await tupayClient.logout(); // nothing to end: no call
    expect(tupay.state.requests.at(-1)).toBe(destroy);
  });

  it.each(['cookie', 'authorization'] as const)('when the token is sent as %s, then Tupay accepts it', async (sendTokenAs) => {
    const tupay = await sandbox({ deposits: generateDeposits(2, 1, { startMs: BASE_NOW - DAY }) });
    const tupayClient = client(tupay.url, { sendTokenAs }, () => now);

    expect(await collect(tupayClient.deposits(period()))).toHaveLength(2);
    await tupayClient.logout();

    const authorized = tupay.state.requests.filter((request) => request.path !== '/v1/auth/login');
    expect(authorized.map((request) => [request.tokenVia, request.status])).toEqual([
      [sendTokenAs, 200],
      [sendTokenAs, 200],
    ]);
  });
});

describe('TupayClient errors', () => {
  const period = { from: new Date(BASE_NOW - DAY), to: new Date(BASE_NOW) };

  it('when the secret key is wrong, then PROVIDER_CONFIG_ERROR, with Tupay’s code in detail and no secret anywhere', async () => {
    const tupay = await sandbox();
    const logger = createMemoryLogger();
    const error = await failure(collect(client(tupay.url, { secretKey: 'wrong-secret-xyz' }, undefined, logger).deposits(period)));

    expect(error.code).toBe('PROVIDER_CONFIG_ERROR');
    expect(error.upstreamStatus).toBe(412);
    expect(error.detail).toMatchObject({ operation: 'login', providerCode: 11 });
    const everything = JSON.stringify({ message: error.message, detail: error.detail, lines: logger.lines });
    expect(everything).not.toContain('wrong-secret-xyz');
  });

  it('when our IP is not allowed, then PROVIDER_CONFIG_ERROR (code 83)', async () => {
    const tupay = await sandbox({ allowedIps: ['10.9.8.7'] });
    const error = await failure(collect(client(tupay.url).deposits(period)));
    expect(error.code).toBe('PROVIDER_CONFIG_ERROR');
    expect(error.upstreamStatus).toBe(403);
    expect(error.detail).toMatchObject({ providerCode: 83 });
  });

  it('when `from` is after `to`, then VALIDATION_FAILED (code 17)', async () => {
    const tupay = await sandbox();
    const error = await failure(collect(client(tupay.url).deposits({ from: period.to, to: period.from })));
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.detail).toMatchObject({ operation: 'deposits', providerCode: 17 });
  });

  it('when the country is unknown, then VALIDATION_FAILED (code 19)', async () => {
    const tupay = await sandbox();
    const error = await failure(collect(client(tupay.url).cashouts({ ...period, country: 'ZZ' })));
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.detail).toMatchObject({ operation: 'cashouts', providerCode: 19 });
  });

  it.each([
    ['a 500', (res: Parameters<Parameters<typeof startStubServer>[0]>[1]) => sendJson(res, 500, { code: 1, description: 'boom' })],
    ['a body that is not JSON', (res: Parameters<Parameters<typeof startStubServer>[0]>[1]) => res.end('<html>oops</html>')],
    ['a page without data', (res: Parameters<Parameters<typeof startStubServer>[0]>[1]) => sendJson(res, 200, { page: 0, rows: 0 })],
    ['no answer before the timeout', () => undefined],
  ])('when the listing gets %s, then PROVIDER_UNAVAILABLE', async (_what, answer) => {
    const stub = await startStubServer((req, res) => {
      if (req.url.startsWith('/v1/auth/login')) {
        res.setHeader('set-cookie', 'BEARER_TOKEN=t; Path=/');
        sendJson(res, 200, {});
        return;
      }
      answer(res);
    });
    closers.push(() => stub.close());
    const error = await failure(collect(client(stub.url).deposits(period)));
    expect(error.code).toBe('PROVIDER_UNAVAILABLE');
  });

  it('when the login answer has no BEARER_TOKEN, then PROVIDER_UNAVAILABLE', async () => {
    const stub = await startStubServer((_req, res) => sendJson(res, 200, {}));
    closers.push(() => stub.close());
    const error = await failure(collect(client(stub.url).deposits(period)));
    expect(error.code).toBe('PROVIDER_UNAVAILABLE');
  });

  it('when nothing listens, then PROVIDER_UNAVAILABLE', async () => {
    const error = await failure(collect(client('http://127.0.0.1:1').deposits(period)));
    expect(error.code).toBe('PROVIDER_UNAVAILABLE');
  });
});

describe('TupayClient re-reading', () => {
  it('when a record changes status later, then a re-read returns it with the new status and lastChangeDate', async () => {
    const [deposit] = generateDeposits(1, 5, { startMs: BASE_NOW - DAY });
    const tupay = await sandbox({ deposits: deposit ? [{ ...deposit, status: 'EXPIRED' }] : [] });
    const tupayClient = client(tupay.url, {}, () => now);
    const period = { from: new Date(BASE_NOW - 2 * DAY), to: new Date(BASE_NOW) };
    const [before] = await collect(tupayClient.deposits(period));

    now += 2 * DAY;
    tupay.state.setStatus(deposit?.idDeposit ?? 0, 'COMPLETED');
    const [after] = await collect(tupayClient.deposits(period));

    expect(before?.status).toBe('EXPIRED');
    expect(after).toMatchObject({ idDeposit: before?.idDeposit, status: 'COMPLETED', lastChangeDate: '2026-06-03 12:00:00' });
  });

  it('when cash-outs are read, then their records come in the cash-out shape', async () => {
    const cashout: TupaySandboxCashout = {
      idCashout: 77,
      externalId: 'KSU-CO-1',
      creationDate: '2026-06-01 10:00:00',
      country: 'MX',
      currency: 'MXN',
      amount: 250,
      fee: 5.5,
      lastChangeDate: '2026-06-01 10:05:00',
      status: 'COMPLETED',
      clientDocument: 'DOC9',
      reason: null,
    };
    const tupay = await sandbox({ cashouts: [cashout] });
    const records = await collect(client(tupay.url).cashouts({ from: new Date(BASE_NOW - DAY), to: new Date(BASE_NOW) }));
    expect(records).toEqual([{ ...cashout, idCashout: '77', amount: 25_000, fee: 550 }]);
  });
});
