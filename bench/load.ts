/**
 * Parts 2 and 3: create-checkout and quote under load (autocannon, 64 connections), through the BFF (a real
 * process of the compiled server on the embedded database in a temporary DATA_DIR, or on PostgreSQL in a schema of
 * its own) and through the bare relay (bench/relay.ts), both in front of the same KASU simulator running in a process
 * of its own (bench/kasu-sandbox.ts), in alternating rounds (see compare). Latencies are taken per response (2xx
 * only) from autocannon's `response` events, so percentiles keep sub-millisecond precision. The simulator's counters give token_full requests per CURP during the
 * BFF's part of the load, and the upstream calls each endpoint makes per request.
 */
import autocannon, { type Request as CannonRequest, type Result as CannonResult } from 'autocannon';
import { CreateCheckoutResponseSchema } from '../shared/contract.js';
import { SANDBOX_CURPS } from '../server/sandbox/kasu/kasu-sandbox.js';
import {
  childEnv, firstJsonLine, freePort, percentile, postgresSchema, postJson, progress, round, sleep, spawnBff, spawnNode, tempDir, waitFor200,
} from './lib.js';

export type LoadFigures = {
  /** 2xx answers per second over the measured run. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  ok: number;
  /** Answers other than 2xx, and transport errors/timeouts. */
  non2xx: number;
  errors: number;
  statusCodes: Record<string, number>;
  /** KASU calls per request sent during the run. */
  upstreamPerRequest: number;
};

export type LoadResult = {
  /** The BFF's database: the embedded one, or PostgreSQL when `databaseUrl` is given. */
  database: 'pglite' | 'postgres';
  connections: number;
  /** Measured seconds per server and endpoint, split into `rounds` alternating runs (BFF, relay, BFF…). */
  seconds: number;
  warmupSeconds: number;
  rounds: number;
  create: { bff: LoadFigures; relay: LoadFigures };
  quote: { bff: LoadFigures; relay: LoadFigures };
  /** token_full requests KASU received per CURP while the BFF was under load (setup, warm-up and runs). */
  tokenFull: { perCurp: Record<string, number>; max: number; min: number; curps: number };
};

type Stats = { tokenRequests: Record<string, number>; totalCalls: number };

const CONNECTIONS = 64;
/** The start of each measured round that is not measured (see cannon). */
const LEAD_IN_SECONDS = 0.5;
/** The BFF's rate limits during the load (per minute): counted in the database as in production, never reached. */
export const BFF_RATE_LIMIT = 1_000_000;

/** One autocannon run: its 2xx latencies (per response) and counts, merged later over the rounds of one side. */
type Run = { latencies: number[]; ok: number; non2xx: number; errors: number; statusCodes: Record<string, number>; sent: number; seconds: number };

/**
 * One autocannon run of `leadInSeconds + seconds`: answers that arrive in the lead-in (64 connections opening and
 * their first requests arriving at once) are left out of latencies and counts, so that a round measures the steady
 * state as a long run does.
 */
async function cannon(url: string, next: () => CannonRequest, seconds: number, leadInSeconds = 0): Promise<Run> {
  const latencies: number[] = [];
  let ok = 0;
  const measureFrom = performance.now() + leadInSeconds * 1000;
  const result = await new Promise<CannonResult>((resolve, reject) => {
    const instance = autocannon({
      url, connections: CONNECTIONS, duration: leadInSeconds + seconds, timeout: 10,
      requests: [{ method: 'POST', setupRequest: () => next() }],
      renderProgressBar: false, renderResultsTable: false, renderLatencyTable: false,
    }, (error, outcome) => (error ? reject(error) : resolve(outcome)));
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
      if (statusCode < 200 || statusCode >= 300 || performance.now() < measureFrom) return;
      latencies.push(responseTime);
      ok += 1;
    });
  });
  const statusCodes = Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, { count }]) => [code, count]));
  return {
    latencies, ok, non2xx: result.non2xx, errors: result.errors + result.timeouts, statusCodes,
    // Requests sent, answered or cut off when the run stopped: each of them reached the server and made its KASU calls.
    sent: result.requests.sent, seconds: Math.max(0.001, (performance.now() - measureFrom) / 1000),
  };
}

/** The figures of one side (BFF or relay) over all its rounds, with the KASU calls its requests made. */
function figures(runs: Run[], upstreamCalls: number): LoadFigures {
  const sum = (pick: (run: Run) => number) => runs.reduce((total, run) => total + pick(run), 0);
  const latencies = runs.flatMap((run) => run.latencies);
  const statusCodes: Record<string, number> = {};
  for (const run of runs) for (const [code, n] of Object.entries(run.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + n;
  const sent = sum((run) => run.sent);
  return {
    rps: Math.round(sum((run) => run.ok) / sum((run) => run.seconds)),
    p50Ms: round(percentile(latencies, 50), 2),
    p99Ms: round(percentile(latencies, 99), 2),
    ok: sum((run) => run.ok), non2xx: sum((run) => run.non2xx), errors: sum((run) => run.errors), statusCodes,
    upstreamPerRequest: sent ? round(upstreamCalls / sent, 3) : 0,
  };
}

export async function loadTest(options: { seconds: number; warmupSeconds: number; rounds: number; databaseUrl?: string }): Promise<LoadResult> {
  const { seconds, warmupSeconds, rounds } = options;
  const kasuChild = spawnNode('kasu-sandbox', 'bench/kasu-sandbox.ts', { env: childEnv({}) });
  const kasu = (await firstJsonLine<{ url: string }>(kasuChild, 30_000)).url;
  const stats = async (): Promise<Stats> => (await fetch(`${kasu}/__bench/stats`)).json() as Promise<Stats>;
  /** The simulator's counters once nothing is in flight any more (requests cut off by autocannon's stop still arrive). */
  const settled = async (): Promise<Stats> => {
    let last = await stats();
    for (let i = 0; i < 50; i++) {
      await sleep(200);
      const next = await stats();
      if (next.totalCalls === last.totalCalls) return next;
      last = next;
    }
    return last;
  };

  const relayPort = await freePort();
  const relayChild = spawnNode('relay', 'bench/relay.ts', { env: childEnv({ KASU_BASE_URL: kasu, PORT: String(relayPort) }) });
  const relay = (await firstJsonLine<{ url: string }>(relayChild, 30_000)).url;

  const { dir, remove } = await tempDir('load');
  const postgres = options.databaseUrl ? await postgresSchema(options.databaseUrl, 'bench_load') : null;
  const bffPort = await freePort();
  const bffChild = await spawnBff('bff', childEnv({
    MODE: 'sandbox', PORT: String(bffPort), HOST: '127.0.0.1', LOG_LEVEL: 'warn', KASU_BASE_URL: kasu,
    ...(postgres ? { DATABASE_URL: postgres.databaseUrl } : { DATA_DIR: dir }),
    CARD_CHARGE_INTERVAL_SECONDS: '3600', KHIPU_POLL_INTERVAL_SECONDS: '3600', WEBHOOK_DISPATCH_INTERVAL_MS: '3600000',
    // The load comes from one IP onto 64 checkouts: limits high enough never to refuse, still counted as in production.
    RATE_LIMIT_CURP_PER_IP_PER_MINUTE: String(BFF_RATE_LIMIT), RATE_LIMIT_PER_CHECKOUT_PER_MINUTE: String(BFF_RATE_LIMIT),
  }));
  const bff = `http://127.0.0.1:${bffPort}`;
  await waitFor200(`${bff}/healthz`, 60_000, bffChild);
  progress(`  BFF ${bff}, relay ${relay}, KASU simulator ${kasu}`);

  try {
    const curps = SANDBOX_CURPS.filter((person) => !person.deceased).map((person) => person.curp);
    const tokenFull: Record<string, number> = {};
    const addTokenRequests = (before: Stats, after: Stats) => {
      for (const [curp, n] of Object.entries(after.tokenRequests)) {
        const delta = n - (before.tokenRequests[curp] ?? 0);
        if (delta) tokenFull[curp] = (tokenFull[curp] ?? 0) + delta;
      }
    };
    /**
     * BFF and relay under the same load, in alternating rounds (BFF, relay, BFF, relay…) after a warm-up of each, so
     * that whatever else the machine does at one moment weighs on both alike. token_full requests are counted during
     * the BFF's turns only (the relay asks for a token on every create).
     */
    const compare = async (
      label: string, bff: { url: string; next: () => CannonRequest }, relayTarget: { url: string; next: () => CannonRequest },
    ): Promise<{ bff: LoadFigures; relay: LoadFigures }> => {
      const roundSeconds = seconds / rounds;
      progress(`  ${label}: ${warmupSeconds} s warm-up each, then ${rounds} rounds each, alternating, of ${round(roundSeconds, 2)} s measured after ${LEAD_IN_SECONDS} s`);
      const sides = { bff: { target: bff, runs: [] as Run[], calls: 0 }, relay: { target: relayTarget, runs: [] as Run[], calls: 0 } };
      for (const warmUp of [true, ...Array<false>(rounds).fill(false)]) {
        for (const [name, side] of Object.entries(sides)) {
          const before = await settled();
          const run = await cannon(side.target.url, side.target.next, warmUp ? warmupSeconds : roundSeconds, warmUp ? 0 : LEAD_IN_SECONDS);
          const after = await settled();
          if (name === 'bff') addTokenRequests(before, after);
          if (warmUp) continue;
          side.runs.push(run);
          side.calls += after.totalCalls - before.totalCalls;
        }
      }
      const result = { bff: figures(sides.bff.runs, sides.bff.calls), relay: figures(sides.relay.runs, sides.relay.calls) };
      for (const [name, f] of Object.entries(result)) {
        progress(`    ${name}: ${f.rps} req/s, p50 ${f.p50Ms} ms, p99 ${f.p99Ms} ms, non-2xx ${f.non2xx}, errors ${f.errors}`
          + (f.non2xx ? `; statuses ${JSON.stringify(f.statusCodes)}` : ''));
      }
      return result;
    };
    let turn = 0;
    const rotate = <T>(items: T[]) => items[turn++ % items.length]!;
    const json = { 'content-type': 'application/json' };

    // ---- create-checkout ----
    let before = await settled();
    const first = await postJson(`${bff}/v1/checkouts`, { curp: curps[0] });
    if (first.status !== 201) throw new Error(`the BFF's create-checkout answered ${first.status}: ${JSON.stringify(first.body).slice(0, 300)}`);
    addTokenRequests(before, await settled());
    const createRequest = () => ({ method: 'POST', path: '/v1/checkouts', headers: json, body: JSON.stringify({ curp: rotate(curps) }) });
    const create = await compare('create-checkout', { url: bff, next: createRequest }, { url: relay, next: createRequest });

    // ---- quote: 64 open checkouts over the CURPs that can buy something, each quoted for a product it may buy ----
    before = await settled();
    const targets: Array<{ id: string; token: string; curp: string; product: string }> = [];
    for (let i = 0; targets.length < CONNECTIONS && i < CONNECTIONS * 2; i++) {
      const curp = curps[i % curps.length]!;
      const created = await postJson(`${bff}/v1/checkouts`, { curp });
      if (created.status !== 201) throw new Error(`the BFF's create-checkout answered ${created.status}: ${JSON.stringify(created.body).slice(0, 300)}`);
      const { checkout, token } = CreateCheckoutResponseSchema.parse(created.body);
      const product = checkout.products.find((p) => p.eligible)?.product;
      if (product) targets.push({ id: checkout.id, token, curp, product });
    }
    if (!targets.length) throw new Error('no sandbox CURP is eligible for any product');
    const firstQuote = await postJson(`${bff}/v1/checkouts/${targets[0]!.id}/quote`, { product: targets[0]!.product }, {
      authorization: `Bearer ${targets[0]!.token}`,
    });
    if (firstQuote.status !== 200) throw new Error(`the BFF's quote answered ${firstQuote.status}: ${JSON.stringify(firstQuote.body).slice(0, 300)}`);
    addTokenRequests(before, await settled());

    const relayTargets = [...new Map(targets.map((t) => [t.curp, t])).values()];
    for (const target of relayTargets) {
      const created = await postJson(`${relay}/v1/checkouts`, { curp: target.curp });
      if (created.status !== 201) throw new Error(`the relay's create answered ${created.status}`);
    }
    const quote = await compare('quote', {
      url: bff,
      next: () => {
        const target = rotate(targets);
        return {
          method: 'POST', path: `/v1/checkouts/${target.id}/quote`,
          headers: { ...json, authorization: `Bearer ${target.token}` }, body: JSON.stringify({ product: target.product }),
        };
      },
    }, {
      url: relay,
      next: () => {
        const target = rotate(relayTargets);
        return { method: 'POST', path: `/v1/checkouts/${target.curp}/quote`, headers: json, body: JSON.stringify({ product: target.product }) };
      },
    });

    const counts = Object.values(tokenFull);
    return {
      database: postgres ? 'postgres' : 'pglite', connections: CONNECTIONS, seconds, warmupSeconds, rounds,
      create, quote,
      tokenFull: {
        perCurp: tokenFull, max: counts.length ? Math.max(...counts) : 0, min: counts.length ? Math.min(...counts) : 0,
        curps: counts.length,
      },
    };
  } finally {
    await Promise.all([bffChild.stop(15_000), relayChild.stop(), kasuChild.stop()]);
    await remove();
    await postgres?.drop();
  }
}
