/**
 * The Tupay simulator in a process of its own, loaded with `generateDeposits(COUNT, SEED)` one every STEP_MS from
 * START_MS (no other activity). Prints `{"url", "deposits", "from", "to", "unindexedPageMs"}` once listening.
 *
 * The simulator answers each 50-row page by filtering and sorting every record it holds (≈ 60 ms a page at 100,000
 * deposits: 2,000 pages would take two minutes of the simulator's own time). To measure the BFF rather than the
 * simulator, list requests filtered only on the period go through an index: before the simulator's handler runs,
 * its deposit list is set to exactly the requested page's records (found by binary search in the sorted list) and
 * the page number to 0, so its own code (session, validation, settling, JSON) still answers. `unindexedPageMs` is
 * the simulator's unaided time for one page, measured at start, for the report's notes.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import {
  SANDBOX_TUPAY_ACCESS_KEY, SANDBOX_TUPAY_SECRET_KEY, TUPAY_SANDBOX_PAGE_SIZE, createTupaySandbox, generateDeposits,
  type TupaySandboxDeposit,
} from '../server/sandbox/tupay/tupay-sandbox.js';
import { exitWithParent } from './lib.js';

exitWithParent();

const COUNT = Number(process.env.COUNT ?? 100_000);
const SEED = Number(process.env.SEED ?? 7);
const START_MS = Number(process.env.START_MS ?? Date.UTC(2026, 0, 1));
const STEP_MS = Number(process.env.STEP_MS ?? 120_000);

const all = generateDeposits(COUNT, SEED, { startMs: START_MS, stepMs: STEP_MS });
// As the simulator orders them: creation date, then id.
all.sort((a, b) => a.creationDate.localeCompare(b.creationDate) || a.idDeposit - b.idDeposit);
const createdSeconds = all.map((deposit) => Math.floor(Date.parse(`${deposit.creationDate.replace(' ', 'T')}Z`) / 1000));
const sandbox = createTupaySandbox({ deposits: all });

/** The first index whose creation second is ≥ `second` (or > it, with `after`). */
function bound(second: number, after: boolean): number {
  let lo = 0;
  let hi = createdSeconds.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const value = createdSeconds[mid]!;
    if (after ? value <= second : value < second) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

let indexed = false;
const app = express();
app.disable('x-powered-by');
app.use((req: Request, _res: Response, next: NextFunction) => {
  sandbox.state.deposits = all;
  const url = new URL(req.url, 'http://sandbox');
  if (url.pathname !== '/v1/deposits') {
    next();
    return;
  }
  const params = url.searchParams;
  const only = [...params.keys()].every((key) => key === 'from' || key === 'to' || key === 'page');
  const from = Number(params.get('from'));
  const to = Number(params.get('to'));
  const page = Number(params.get('page') ?? 0);
  if (indexed && only && req.method === 'GET' && [from, to, page].every(Number.isSafeInteger) && page >= 0 && from <= to) {
    const first = bound(from, false);
    const end = bound(to, true);
    const start = Math.min(end, first + page * TUPAY_SANDBOX_PAGE_SIZE);
    sandbox.state.deposits = all.slice(start, Math.min(end, start + TUPAY_SANDBOX_PAGE_SIZE));
    params.set('page', '0');
    req.url = `${url.pathname}?${params.toString()}`;
  }
  next();
});
app.use(sandbox.router);
app.use((_req: Request, res: Response) => {
  res.status(404).json({ code: 404, description: 'Not found' });
});

const server = createServer(app);
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  void (async () => {
    const { port } = server.address() as AddressInfo;
    const url = `http://127.0.0.1:${port}`;
    const unindexedPageMs = await timeOnePage(url);
    indexed = true;
    const last = all[all.length - 1] as TupaySandboxDeposit | undefined;
    process.stdout.write(`${JSON.stringify({
      url, deposits: all.length, from: all[0]?.creationDate ?? null, to: last?.creationDate ?? null, unindexedPageMs,
    })}\n`);
  })();
});

/** The simulator's own time for one page of the first 60-day window (its median of three), before indexing. */
async function timeOnePage(url: string): Promise<number> {
  const login = await fetch(`${url}/v1/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ accessKey: SANDBOX_TUPAY_ACCESS_KEY, secretKey: SANDBOX_TUPAY_SECRET_KEY }),
  });
  await login.arrayBuffer();
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  const from = Math.floor(START_MS / 1000);
  const times: number[] = [];
  for (let page = 0; page < 3; page++) {
    const started = performance.now();
    const response = await fetch(`${url}/v1/deposits?from=${from}&to=${from + 60 * 86_400}&page=${page * 100}`, { headers: { cookie } });
    await response.arrayBuffer();
    times.push(performance.now() - started);
  }
  await (await fetch(`${url}/v1/auth/session/destroy`, { method: 'DELETE', headers: { cookie } })).arrayBuffer();
  return Math.round(times.sort((a, b) => a - b)[1]! * 10) / 10;
}

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
