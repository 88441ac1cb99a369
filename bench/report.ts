/**
 * The benchmark's output: bench/report.json (every figure and the raw results), bench/report.md (the table of
 * measures against their goals, the load detail and the method) and bench/chart.svg (BFF vs bare relay, hand-written
 * SVG). A goal missed is a row marked ✗ with its figure; a part that could not run is a row marked ✗ with its error.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ChargeResult } from './charges.js';
import type { ColdStart } from './coldstart.js';
import type { LoadFigures, LoadResult } from './load.js';
import type { TupayResult } from './tupay.js';
import type { WidgetSize } from './widget.js';
import { ROOT } from './lib.js';

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: string } | null;

export type Results = {
  widget: Outcome<WidgetSize>;
  loadPglite: Outcome<LoadResult>;
  loadPostgres: Outcome<LoadResult>;
  chargesPglite: Outcome<ChargeResult>;
  chargesPostgres: Outcome<ChargeResult>;
  tupay: Outcome<TupayResult>;
  coldStart: Outcome<ColdStart>;
};

export type Environment = {
  node: string; cpus: number; cpuModel: string; platform: string; memoryGiB: number; date: string;
  durationSeconds: number; commit: string | null; uncommittedChanges: boolean | null;
  /** os.loadavg() (1, 5, 15 minutes) when the benchmark started and when it ended: other work on the machine skews it. */
  loadAverage: { start: number[]; end: number[] };
};

export type Row = { id: string; measure: string; figure: string; value: number | null; unit: string; goal: string; pass: boolean | null };

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number) => `${n < 100 ? n.toFixed(n < 10 ? 2 : 1) : int(n)} ms`;
const mib = (bytes: number) => `${int(bytes / 1_048_576)} MiB`;

function failed(id: string, measure: string, goal: string, error: string): Row {
  return { id, measure, figure: `not measured: ${error.replace(/\s+/g, ' ').slice(0, 240)}`, value: null, unit: '', goal, pass: false };
}

function transportNote(f: LoadFigures): string {
  return f.non2xx || f.errors ? ` (${int(f.non2xx)} non-2xx, ${int(f.errors)} errors)` : '';
}

export function rows(results: Results): Row[] {
  const out: Row[] = [];

  const w = results.widget;
  if (w?.ok) {
    const v = w.value;
    out.push({
      id: 'widget.firstPaint.brotli', measure: 'Widget first paint (JS + CSS, brotli)',
      figure: `${int(v.brotli)} B (raw ${int(v.raw)} B, gzip ${int(v.gzip)} B)`, value: v.brotli, unit: 'B',
      goal: `≤ ${int(v.budgetBrotli)} B`, pass: v.brotli <= v.budgetBrotli,
    });
  } else if (w) out.push(failed('widget.firstPaint.brotli', 'Widget first paint (JS + CSS, brotli)', '≤ 20,000 B', w.error));

  for (const [key, l, on] of [
    ['pglite', results.loadPglite, 'embedded DB'],
    ['postgres', results.loadPostgres, 'PostgreSQL'],
  ] as const) {
    for (const endpoint of ['create', 'quote'] as const) {
      const name = `${endpoint === 'create' ? 'create-checkout' : 'quote'} (BFF on ${on})`;
      if (l?.ok) {
        const { bff, relay } = l.value[endpoint];
        const ratio = relay.rps ? bff.rps / relay.rps : 0;
        out.push({
          id: `load.${key}.${endpoint}.ratio`, measure: `${name}: BFF / bare relay throughput`,
          figure: `${ratio.toFixed(2)} (BFF ${int(bff.rps)} req/s${transportNote(bff)}, relay ${int(relay.rps)} req/s${transportNote(relay)})`,
          value: Math.round(ratio * 100) / 100, unit: '', goal: '≥ 0.7', pass: ratio >= 0.7 && bff.non2xx === 0 && bff.errors === 0,
        });
        const overhead = bff.p99Ms - relay.p99Ms;
        out.push({
          id: `load.${key}.${endpoint}.p99Overhead`, measure: `${name}: p99 overhead over the relay`,
          figure: `${overhead >= 0 ? '+' : '−'}${ms(Math.abs(overhead))} (BFF p50 ${ms(bff.p50Ms)} / p99 ${ms(bff.p99Ms)}, relay p50 ${ms(relay.p50Ms)} / p99 ${ms(relay.p99Ms)})`,
          value: Math.round(overhead * 100) / 100, unit: 'ms', goal: '≤ 5 ms', pass: overhead <= 5,
        });
      } else if (l) {
        out.push(failed(`load.${key}.${endpoint}.ratio`, `${name}: BFF / bare relay throughput`, '≥ 0.7', l.error));
        out.push(failed(`load.${key}.${endpoint}.p99Overhead`, `${name}: p99 overhead over the relay`, '≤ 5 ms', l.error));
      }
    }
    const measure = `KASU token_full calls per CURP during the BFF load (${on})`;
    if (l?.ok) {
      const t = l.value.tokenFull;
      out.push({
        id: `load.${key}.tokenFullPerCurp`, measure,
        figure: t.curps === 0 ? 'none' : t.min === t.max ? `${t.max} for each of ${t.curps} CURPs` : `${t.min}–${t.max} over ${t.curps} CURPs`,
        value: t.max, unit: 'calls', goal: '1', pass: t.curps > 0 && t.max === 1 && t.min === 1,
      });
    } else if (l) out.push(failed(`load.${key}.tokenFullPerCurp`, measure, '1', l.error));
  }

  for (const [key, outcome, label] of [
    ['pglite', results.chargesPglite, 'embedded DB, 1 BFF'],
    ['postgres', results.chargesPostgres, 'PostgreSQL, 3 BFFs'],
  ] as const) {
    const measure = `Due card instalments charged (${label}; gateway 20 ms)`;
    if (outcome?.ok) {
      const c = outcome.value;
      out.push({
        id: `charges.${key}.seconds`, measure: `${int(c.instalments)} ${measure.charAt(0).toLowerCase()}${measure.slice(1)}: time`,
        figure: c.seconds === null
          ? `> ${c.capSeconds} s: stopped at the cap with ${int(c.chargedAtCap ?? 0)} charged (${int(c.chargesPerSecond)} charges/s; all ${int(c.instalments)} ≈ ${c.projectedSeconds === null ? '?' : int(c.projectedSeconds)} s at that rate)`
          : `${c.seconds.toFixed(1)} s (${int(c.chargesPerSecond ?? 0)} charges/s)`,
        value: c.seconds, unit: 's', goal: '≤ 30 s', pass: c.seconds !== null && c.seconds <= 30 && c.paid === c.instalments,
      });
      out.push({
        id: `charges.${key}.duplicates`, measure: `${int(c.instalments)} ${measure.charAt(0).toLowerCase()}${measure.slice(1)}: charged twice`,
        figure: `${int(c.duplicates)} (gateway: ${int(c.approved)} approved; database: ${int(c.paid)} paid, ${int(c.notPaid)} not)`,
        value: c.duplicates, unit: 'instalments', goal: '0', pass: c.duplicates === 0,
      });
    } else if (outcome) {
      out.push(failed(`charges.${key}.seconds`, `${measure}: time`, '≤ 30 s', outcome.error));
      out.push(failed(`charges.${key}.duplicates`, `${measure}: charged twice`, '0', outcome.error));
    }
  }

  const t = results.tupay;
  if (t?.ok) {
    const v = t.value;
    out.push({
      id: 'tupay.seconds', measure: `${int(v.deposits)} Tupay deposits fetched, stored and reconciled`,
      figure: `${(v.totalMs / 1000).toFixed(1)} s (fetch + store ${(v.syncMs / 1000).toFixed(1)} s, report ${(v.reportMs / 1000).toFixed(1)} s; ${int(v.stored)} stored)`,
      value: Math.round(v.totalMs / 100) / 10, unit: 's', goal: '≤ 60 s', pass: v.totalMs <= 60_000 && v.stored === v.deposits,
    });
    out.push({
      id: 'tupay.memory', measure: 'Tupay reconciliation: peak memory of its process',
      figure: `max RSS ${mib(v.maxRssBytes)}, heap peak ${mib(v.heapPeakBytes)}`,
      value: Math.round(v.maxRssBytes / 1_048_576), unit: 'MiB', goal: 'reported', pass: null,
    });
  } else if (t) {
    out.push(failed('tupay.seconds', 'Tupay deposits fetched, stored and reconciled', '≤ 60 s', t.error));
  }

  const s = results.coldStart;
  if (s?.ok) {
    const v = s.value;
    out.push({
      id: 'coldStart.medianMs', measure: `Cold start to /healthz 200, existing data directory (${v.restartsMs.length} restarts)`,
      figure: `median ${int(v.medianMs)} ms, max ${int(v.maxMs)} ms`, value: v.medianMs, unit: 'ms', goal: 'median ≤ 2 s',
      pass: v.medianMs <= 2_000,
    });
  } else if (s) out.push(failed('coldStart.medianMs', 'Cold start to /healthz 200, existing data directory', 'median ≤ 2 s', s.error));
  return out;
}

const mark = (pass: boolean | null) => (pass === null ? '—' : pass ? '✓' : '✗');
const cell = (text: string) => text.replace(/\|/g, '\\|');

export function markdown(results: Results, env: Environment, table: Row[]): string {
  const lines: string[] = [];
  const charges = results.chargesPglite?.ok ? results.chargesPglite.value : results.chargesPostgres?.ok ? results.chargesPostgres.value : null;
  const capSeconds = charges?.capSeconds ?? null;
  lines.push('# kasu-checkout benchmark', '');
  lines.push(`${env.date} · Node ${env.node} · ${env.cpus} CPU${env.cpus === 1 ? '' : 's'} (${env.cpuModel}) · ${env.memoryGiB} GiB · ${env.platform}`
    + `${env.commit ? ` · commit ${env.commit.slice(0, 10)}${env.uncommittedChanges ? ' + uncommitted changes' : ''}` : ''} · ran ${Math.round(env.durationSeconds)} s`
    + ` · load average ${env.loadAverage.start[0]?.toFixed(2)} at start, ${env.loadAverage.end[0]?.toFixed(2)} at end`, '');
  lines.push('| Measure | Figure | Goal | Pass |', '|---|---|---|---|');
  for (const row of table) lines.push(`| ${cell(row.measure)} | ${cell(row.figure)} | ${cell(row.goal)} | ${mark(row.pass)} |`);
  lines.push('');

  const loads = [results.loadPglite, results.loadPostgres].flatMap((l) => (l?.ok ? [l.value] : []));
  if (loads.length) {
    const v = loads[0]!;
    lines.push(`## Load: BFF vs bare relay (${v.connections} connections, ${v.seconds} s each in ${v.rounds} alternating rounds, after ${v.warmupSeconds} s of warm-up)`, '');
    lines.push('| Endpoint | Server | req/s (2xx) | p50 | p99 | non-2xx | errors | KASU calls per request |', '|---|---|---|---|---|---|---|---|');
    for (const load of loads) {
      for (const endpoint of ['create', 'quote'] as const) {
        for (const server of ['bff', 'relay'] as const) {
          const f = load[endpoint][server];
          const who = server === 'bff' ? `BFF on ${load.database === 'postgres' ? 'PostgreSQL' : 'embedded DB'}` : `bare relay (rounds in between)`;
          lines.push(`| ${endpoint === 'create' ? 'create-checkout' : 'quote'} | ${who} | ${int(f.rps)} | ${ms(f.p50Ms)} | ${ms(f.p99Ms)} | ${int(f.non2xx)} | ${int(f.errors)} | ${f.upstreamPerRequest} |`);
        }
      }
    }
    lines.push('', '![BFF vs bare relay](chart.svg)', '');
  }

  lines.push('## How each figure is measured', '');
  lines.push(
    '- **Widget**: `vite build --logLevel warn` into a temporary directory (dist/widget is left alone), then `scripts/size.mjs` on it: the first paint is `kasu-checkout.js` and every chunk it imports statically (gzip level 9, brotli quality 11).',
    '- **Load**: the KASU simulator runs alone in its own process with its per-IP token rate limit lifted (`bench/kasu-sandbox.ts`); the BFF is a real process of the compiled server as `npm start` runs it (`LOG_LEVEL=warn`, `KASU_BASE_URL` at the simulator), once on the embedded database in a temporary `DATA_DIR` and once on PostgreSQL (a schema of its own, dropped afterwards), each compared with the relay measured in the same run: after a warm-up of each, BFF and relay take turns (BFF, relay, BFF, relay… `BENCH_ROUNDS` rounds each, splitting `BENCH_LOAD_SECONDS`), so that whatever else the machine does at one moment weighs on both alike, and each side\'s figures are over all its rounds; the bare relay (`bench/relay.ts`) is a `node:http` server with the same undici client settings as the BFF\'s KASU adapter. autocannon runs in the benchmark\'s own process. Create-checkout rotates over the 10 living sandbox CURPs; quote over 64 open checkouts (each with a product its CURP may buy). The relay forwards create-checkout to KASU `token_full` on every request (no state) and quote to `modify_record` with the token its create got; the BFF answers create-checkout from its token cache and database after the first `token_full` per CURP (see "KASU calls per request"), and quote with `modify_record` plus its database reads and writes. p50/p99 are over every 2xx answer of the measured rounds; the overhead is BFF p99 minus relay p99.',
    '- **BFF rate limits** during the load: `RATE_LIMIT_CURP_PER_IP_PER_MINUTE` and `RATE_LIMIT_PER_CHECKOUT_PER_MINUTE` at 1,000,000, so that every request is still counted in the database as in production but none is refused (the whole load comes from one IP onto 64 checkouts).',
    '- **token_full per CURP**: the simulator\'s own counter (`state.tokenRequests`), read before and after each of the BFF\'s turns (set-up, warm-up and measured rounds of both endpoints; the relay\'s turns, which ask for a token on every create, are left out).',
    '- **Card charges**: one single-payment card order per due instalment (the first written by the store\'s `createSubscription`, the others by bulk `INSERT … SELECT` of the same rows, checked against it); BFF processes (the compiled server, the engine\'s default concurrency) on the embedded database or on PostgreSQL (a schema of its own, dropped afterwards); the card gateway simulator answers after 20 ms. The charge run is started on every BFF at once with `POST /admin/jobs/card-charges/run` (which returns when nothing is left due) and timed to the last answer; a run still going after the cap'
      + (capSeconds ? ` (${capSeconds} s)` : '') + ' is stopped (SIGTERM) and reported with its rate and the time all would take at that rate. Charged twice: instalments with more than one approved charge in the gateway\'s ledger (by merchantOrderId without its attempt suffix); the database counts are read after the BFFs stopped (charges in flight when a BFF is stopped stay unpaid, to be resent with the same merchantOrderId).',
    '- **Tupay**: `generateDeposits(N, seed)` one every 2 minutes from 2026-01-01 in a simulator process of its own; a second process runs the BFF\'s `ReconciliationService.run` (TupayLedger.sync over 60-day windows of 50-row pages, then the report) on a fresh embedded database and reports `process.resourceUsage().maxRSS` and the peak of `heapUsed` sampled every 50 ms. The simulator answers a page by filtering and sorting all its records'
      + (results.tupay?.ok ? ` (${results.tupay.value.unindexedPageMs} ms a page at this size, measured at its start)` : '')
      + ', so the benchmark serves list requests through an index in front of its handler (`bench/tupay-sandbox.ts`): the figure is the BFF\'s time, not the simulator\'s.',
    '- **Cold start**: the compiled server (`node dist/server/server/main.js`, as `npm start` runs it after building) on an existing embedded data directory, from spawn until `GET /healthz` answers 200, polled every 10 ms.',
    '',
  );
  return lines.join('\n');
}

/** Two panels of grouped bars (create-checkout and quote × each BFF run and its relay): req/s, and p99 in ms. */
export function chart(loads: Array<Outcome<LoadResult>>): string {
  const width = 760;
  const height = 320;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="11">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  const runs = loads.flatMap((l) => (l?.ok ? [l.value] : []));
  if (!runs.length) {
    parts.push(`<text x="${width / 2}" y="${height / 2}" text-anchor="middle" fill="#b3261e">load test not measured</text></svg>`);
    return `${parts.join('\n')}\n`;
  }
  const dbName = (run: LoadResult) => (run.database === 'postgres' ? 'PostgreSQL' : 'embedded DB');
  const bars = runs.flatMap((run) => [
    { label: `BFF on ${dbName(run)}`, colour: run.database === 'postgres' ? '#0b5cad' : '#6fa8dc', figures: (e: 'create' | 'quote') => run[e].bff },
    { label: `relay (${dbName(run)} run)`, colour: run.database === 'postgres' ? '#7b8794' : '#c5ccd3', figures: (e: 'create' | 'quote') => run[e].relay },
  ]);
  const panels = [
    { title: 'Throughput (2xx req/s, higher is better)', value: (f: LoadFigures) => f.rps, format: (n: number) => int(n) },
    { title: 'p99 latency (ms, lower is better)', value: (f: LoadFigures) => f.p99Ms, format: (n: number) => (n < 100 ? n.toFixed(1) : int(n)) },
  ];
  const panelWidth = width / 2;
  const top = 50;
  const bottom = height - 64;
  panels.forEach((panel, index) => {
    const x0 = index * panelWidth + 24;
    const plotWidth = panelWidth - 48;
    const values = (['create', 'quote'] as const).flatMap((e) => bars.map((bar) => panel.value(bar.figures(e))));
    const max = Math.max(...values, 1) * 1.15;
    parts.push(`<text x="${x0 + plotWidth / 2}" y="24" text-anchor="middle" font-weight="600" fill="#1f2933" font-size="12">${panel.title}</text>`);
    parts.push(`<line x1="${x0}" y1="${bottom}" x2="${x0 + plotWidth}" y2="${bottom}" stroke="#7b8794"/>`);
    (['create', 'quote'] as const).forEach((endpoint, group) => {
      const groupWidth = plotWidth / 2;
      const barWidth = (groupWidth - 16) / bars.length;
      bars.forEach((bar, i) => {
        const v = panel.value(bar.figures(endpoint));
        const h = Math.max(1, ((bottom - top) * v) / max);
        const x = x0 + group * groupWidth + 8 + i * barWidth;
        parts.push(`<rect x="${x.toFixed(1)}" y="${(bottom - h).toFixed(1)}" width="${(barWidth - 3).toFixed(1)}" height="${h.toFixed(1)}" fill="${bar.colour}"><title>${bar.label} ${endpoint}: ${panel.format(v)}</title></rect>`);
        parts.push(`<text x="${(x + (barWidth - 3) / 2).toFixed(1)}" y="${(bottom - h - 4).toFixed(1)}" text-anchor="middle" fill="#1f2933" font-size="9">${panel.format(v)}</text>`);
      });
      parts.push(`<text x="${(x0 + group * groupWidth + groupWidth / 2).toFixed(1)}" y="${bottom + 16}" text-anchor="middle" fill="#4b5563">${endpoint === 'create' ? 'create-checkout' : 'quote'}</text>`);
    });
  });
  const legendWidth = width / bars.length;
  bars.forEach((bar, i) => {
    const x = i * legendWidth + 16;
    parts.push(`<rect x="${x}" y="${height - 26}" width="12" height="12" fill="${bar.colour}"/><text x="${x + 17}" y="${height - 16}" fill="#1f2933">${bar.label}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

export async function writeReports(results: Results, env: Environment): Promise<Row[]> {
  const table = rows(results);
  const dir = path.join(ROOT, 'bench');
  await writeFile(path.join(dir, 'report.json'), `${JSON.stringify({ environment: env, rows: table, results }, null, 2)}\n`);
  await writeFile(path.join(dir, 'report.md'), markdown(results, env, table));
  await writeFile(path.join(dir, 'chart.svg'), chart([results.loadPostgres, results.loadPglite]));
  return table;
}
