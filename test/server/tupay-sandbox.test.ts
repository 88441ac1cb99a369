import { afterEach, describe, expect, it } from 'vitest';
import {
  SANDBOX_TUPAY_ACCESS_KEY,
  SANDBOX_TUPAY_SECRET_KEY,
  generateDeposits,
  startTupaySandbox,
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
