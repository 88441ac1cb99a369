/**
 * `npm run bench`: measures the widget's weight, the BFF under load against a bare relay, KASU token reuse, card
 * charging on both databases, Tupay reconciliation at 100,000 deposits and cold start, and writes bench/report.json,
 * bench/report.md and bench/chart.svg. Progress goes to stderr. Goals are reported, never asserted: a miss is a row
 * marked ✗, and a part that cannot run (PostgreSQL unreachable, say) is a ✗ row with its error. Every process,
 * temporary directory and PostgreSQL schema it creates is removed at the end, on failure and on Ctrl-C too.
 *
 * Settings (environment): BENCH_ONLY (comma-separated: widget, load, charges, tupay, coldstart; default all),
 * BENCH_LOAD_SECONDS (10), BENCH_WARMUP_SECONDS (2), BENCH_ROUNDS (5), BENCH_INSTALMENTS (10000), BENCH_DEPOSITS (100000),
 * BENCH_RESTARTS (5), BENCH_CHARGE_CAP_SECONDS (45: a charge run still going then is stopped and reported with its
 * rate), BENCH_DATABASE_URL (else TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/test: the PostgreSQL of
 * the load and charge parts), BENCH_CPU_PROF (a directory: V8 CPU profiles of every BFF process) and BENCH_ECHO=1
 * (every BFF's stderr echoed with a prefix).
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, platform, release, totalmem } from 'node:os';
import { chargesOnPglite, chargesOnPostgres } from './charges.js';
import { coldStart } from './coldstart.js';
import { loadTest } from './load.js';
import { cleanupAll, errorText, progress } from './lib.js';
import { writeReports, type Environment, type Outcome, type Results } from './report.js';
import { tupayReconciliation } from './tupay.js';
import { widgetSize } from './widget.js';

const PARTS = ['widget', 'load', 'charges', 'tupay', 'coldstart'] as const;
type Part = (typeof PARTS)[number];

function setting(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
}

const only = (process.env.BENCH_ONLY ?? '').split(',').map((part) => part.trim()).filter(Boolean);
const unknown = only.filter((part) => !(PARTS as readonly string[]).includes(part));
if (unknown.length) {
  process.stderr.write(`BENCH_ONLY: unknown part(s) ${unknown.join(', ')}; choose among ${PARTS.join(', ')}\n`);
  process.exit(2);
}
const enabled = (part: Part) => only.length === 0 || only.includes(part);
const LOAD_SECONDS = setting('BENCH_LOAD_SECONDS', 10);
const WARMUP_SECONDS = setting('BENCH_WARMUP_SECONDS', 2);
const ROUNDS = Math.round(setting('BENCH_ROUNDS', 5));
const INSTALMENTS = setting('BENCH_INSTALMENTS', 10_000);
const DEPOSITS = setting('BENCH_DEPOSITS', 100_000);
const RESTARTS = setting('BENCH_RESTARTS', 5);
const CHARGE_CAP_SECONDS = setting('BENCH_CHARGE_CAP_SECONDS', 45);
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const CARD_LATENCY_MS = 20;
const DEPOSIT_SEED = 7;
const DEPOSIT_STEP_MS = 120_000;

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\n[bench] ${signal}: cleaning up\n`);
    void cleanupAll().finally(() => process.exit(130));
  });
}

for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (error: unknown) => {
    process.stderr.write(`[bench] ${event}: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    void cleanupAll().finally(() => process.exit(1));
  });
}

async function part<T>(name: string, enabledPart: boolean, run: () => Promise<T>): Promise<Outcome<T>> {
  if (!enabledPart || interrupted) return null;
  progress(`${name}…`);
  const started = performance.now();
  try {
    const value = await run();
    progress(`${name}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return { ok: true, value };
  } catch (error) {
    progress(`${name}: FAILED: ${errorText(error)}`);
    return { ok: false, error: errorText(error) };
  } finally {
    // Whatever the part left behind (it cleans up after itself; this catches what a failure skipped).
    await cleanupAll();
  }
}

function git(args: string[]): string | null {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const date = new Date().toISOString();
  const loadAtStart = loadavg().map((n) => Math.round(n * 100) / 100);
  const results: Results = {
    widget: await part('1/6 widget size', enabled('widget'), widgetSize),
    loadPglite: await part('2-3/6 BFF (embedded DB) vs bare relay under load', enabled('load'), () => loadTest({
      seconds: LOAD_SECONDS, warmupSeconds: WARMUP_SECONDS, rounds: ROUNDS,
    })),
    loadPostgres: await part('2-3/6 BFF (PostgreSQL) vs bare relay under load', enabled('load'), () => loadTest({
      seconds: LOAD_SECONDS, warmupSeconds: WARMUP_SECONDS, rounds: ROUNDS, databaseUrl: DATABASE_URL,
    })),
    chargesPglite: await part(`4a/6 ${INSTALMENTS} card charges, embedded DB, 1 BFF`, enabled('charges'), () => chargesOnPglite(INSTALMENTS, CARD_LATENCY_MS, CHARGE_CAP_SECONDS)),
    chargesPostgres: await part(`4b/6 ${INSTALMENTS} card charges, PostgreSQL, 3 BFFs`, enabled('charges'), () => chargesOnPostgres(DATABASE_URL, INSTALMENTS, CARD_LATENCY_MS, 3, CHARGE_CAP_SECONDS)),
    tupay: await part(`5/6 ${DEPOSITS} Tupay deposits reconciled`, enabled('tupay'), () => tupayReconciliation(DEPOSITS, DEPOSIT_SEED, DEPOSIT_STEP_MS)),
    coldStart: await part('6/6 cold start', enabled('coldstart'), () => coldStart(RESTARTS)),
  };
  if (interrupted) return;
  const status = git(['status', '--porcelain']);
  const env: Environment = {
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown',
    platform: `${platform()} ${release()}`,
    memoryGiB: Math.round(totalmem() / 1_073_741_824),
    date,
    durationSeconds: Math.round((performance.now() - started) / 1000),
    commit: git(['rev-parse', 'HEAD']),
    uncommittedChanges: status === null ? null : status.length > 0,
    loadAverage: { start: loadAtStart, end: loadavg().map((n) => Math.round(n * 100) / 100) },
  };
  const table = await writeReports(results, env);
  const width = Math.max(...table.map((row) => row.measure.length));
  process.stderr.write('\n');
  for (const row of table) {
    process.stderr.write(`${row.pass === null ? '-' : row.pass ? '✓' : '✗'} ${row.measure.padEnd(width)}  ${row.figure}  (goal ${row.goal})\n`);
  }
  process.stderr.write(`\nWrote bench/report.json, bench/report.md and bench/chart.svg in ${env.durationSeconds} s.\n`);
}

main().then(
  () => cleanupAll(),
  async (error: unknown) => {
    process.stderr.write(`[bench] failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    await cleanupAll();
    process.exitCode = 1;
  },
);
