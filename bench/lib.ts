/**
 * What the benchmark's parts share: child processes that are always cleaned up, free ports, waiting for HTTP,
 * temporary directories, percentiles and progress lines on stderr.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

/** The repository's root (bench/..). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const started = performance.now();

/** A progress line on stderr, with the seconds since the benchmark started. */
export function progress(message: string): void {
  const seconds = ((performance.now() - started) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[bench ${seconds}s] ${message}\n`);
}

// ---------- cleanup ----------

type Cleanup = { name: string; run: () => Promise<void> };
const cleanups: Cleanup[] = [];

/** Registers `run` to be called by cleanupAll(), most recent first; returns a function that runs it now, once. */
export function onCleanup(name: string, run: () => Promise<void>): () => Promise<void> {
  const entry: Cleanup = { name, run };
  cleanups.push(entry);
  return async () => {
    const index = cleanups.indexOf(entry);
    if (index === -1) return;
    cleanups.splice(index, 1);
    await run();
  };
}

/** Runs every registered cleanup (processes, directories, schemas), most recent first; never throws. */
export async function cleanupAll(): Promise<void> {
  while (cleanups.length) {
    const entry = cleanups.pop()!;
    try {
      await entry.run();
    } catch (error) {
      process.stderr.write(`[bench] cleanup of ${entry.name} failed: ${(error as Error).message}\n`);
    }
  }
}

/** A fresh temporary directory, removed by cleanupAll() (or by the returned remove()). */
export async function tempDir(prefix: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), `kasu-bench-${prefix}-`));
  const remove = onCleanup(`directory ${dir}`, () => rm(dir, { recursive: true, force: true }));
  return { dir, remove };
}

/**
 * A fresh PostgreSQL schema on `url`, dropped (CASCADE) by cleanupAll() or the returned drop(). `databaseUrl` is `url`
 * with `search_path` set to it, for a BFF's DATABASE_URL (the BFF migrates it on start).
 */
export async function postgresSchema(url: string, prefix: string): Promise<{ schema: string; databaseUrl: string; drop: () => Promise<void> }> {
  const schema = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  try {
    await admin(`CREATE SCHEMA ${schema}`);
  } catch (error) {
    throw new Error(`PostgreSQL at ${url.replace(/\/\/[^@/]*@/, '//…@')} is unreachable or refused: ${errorText(error)}`);
  }
  const drop = onCleanup(`schema ${schema}`, () => admin(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
  const databaseUrl = `${url}${url.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  return { schema, databaseUrl, drop };
}

// ---------- child processes ----------

export type Child = {
  name: string;
  child: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** stdout so far (only when captured). */
  stdout(): string;
  /** The last lines of stderr, for error messages. */
  stderrTail(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  stop(graceMs?: number): Promise<void>;
};

/**
 * Spawns `node …nodeArgs [--import tsx] script …args` from the repository root. stderr is kept (its tail, for errors) and
 * echoed with a prefix when `echo` is set; stdout is captured. The process is stopped by cleanupAll() if still alive.
 */
export function spawnNode(
  name: string,
  script: string,
  options: {
    args?: string[]; nodeArgs?: string[]; env?: Record<string, string | undefined>; tsx?: boolean; echo?: boolean;
  } = {},
): Child {
  const argv = [
    ...(options.nodeArgs ?? []), ...(options.tsx === false ? [] : ['--import', 'tsx']), script, ...(options.args ?? []),
  ];
  const child = spawn(process.execPath, argv, {
    cwd: ROOT,
    env: { ...options.env } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let errTail = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    // Children answer on their first lines; a BFF's log lines after that are not needed (bounded).
    if (out.length < 1_000_000) out += chunk;
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    errTail = (errTail + chunk).slice(-4_000);
    if (options.echo) {
      for (const line of chunk.split('\n')) if (line.trim()) process.stderr.write(`  [${name}] ${line}\n`);
    }
  });
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      exitCode = code;
      resolve(code);
    });
    child.on('error', () => {
      exitCode = null;
      resolve(null);
    });
  });
  const stop = async (graceMs = 10_000) => {
    if (exitCode !== undefined || child.pid === undefined) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (exitCode === undefined) child.kill('SIGKILL');
    }, graceMs);
    await exited;
    clearTimeout(timer);
  };
  const remove = onCleanup(`process ${name}`, () => stop(5_000));
  void exited.then(() => remove());
  return { name, child, exited, stdout: () => out, stderrTail: () => errTail.trim(), stop };
}

/** The first line of a child's stdout that parses as JSON (children report their address and results so). */
export async function firstJsonLine<T>(child: Child, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void child.exited.then(() => {
    exited = true;
  });
  for (;;) {
    for (const line of child.stdout().split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        return JSON.parse(line) as T;
      } catch {
        // an incomplete line: wait for the rest
      }
    }
    if (exited) throw new Error(`${child.name} exited without answering: ${child.stderrTail().slice(-800)}`);
    if (Date.now() > deadline) throw new Error(`${child.name} did not answer within ${timeoutMs} ms: ${child.stderrTail().slice(-800)}`);
    await sleep(20);
  }
}

/**
 * For the benchmark's own child scripts: exit when the benchmark that started them is gone (killed with SIGKILL, say,
 * so that it could not stop them), instead of living on as orphans.
 */
export function exitWithParent(): void {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, 1_000).unref();
}

// ---------- network ----------

/** A port nobody listens on right now (on 127.0.0.1). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Polls `url` until it answers 200; returns the milliseconds waited. Throws after `timeoutMs` or if `child` exits. */
export async function waitFor200(url: string, timeoutMs: number, child?: Child, intervalMs = 20): Promise<number> {
  const start = performance.now();
  let exited = false;
  void child?.exited.then(() => {
    exited = true;
  });
  for (;;) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (response.status === 200) return performance.now() - start;
    } catch {
      // not listening yet
    }
    if (exited) throw new Error(`${child!.name} exited before ${url} answered: ${child!.stderrTail().slice(-800)}`);
    if (performance.now() - start > timeoutMs) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
    await sleep(intervalMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A JSON POST; the parsed answer (or its text) and status. */
export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  try {
    return { status: response.status, body: JSON.parse(text) as unknown };
  } catch {
    return { status: response.status, body: text };
  }
}

// ---------- numbers ----------

/** The p-th percentile (0–100) of `values` by nearest rank; NaN when empty. Sorts `values` in place. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  values.sort((a, b) => a - b);
  const rank = Math.min(values.length, Math.max(1, Math.ceil((p / 100) * values.length)));
  return values[rank - 1]!;
}

export function median(values: number[]): number {
  return percentile([...values], 50);
}

export function round(value: number, digits = 1): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The environment for a child BFF or simulator: this process's environment without the BFF's own settings
 * (a DATABASE_URL or PORT exported in the shell must not leak into a measurement), plus `env`.
 */
export function childEnv(env: Record<string, string>): Record<string, string | undefined> {
  const base: Record<string, string | undefined> = { ...process.env };
  for (const key of Object.keys(base)) {
    if (/^(MODE|PORT|HOST|PUBLIC_URL|DATA_DIR|DATABASE_URL|ADMIN_TOKEN|LOG_LEVEL|ALLOWED_ORIGINS)$/.test(key)) delete base[key];
    if (/^(KASU|KHIPU|CARD|TUPAY|MERCHANT_WEBHOOK|WEBHOOK|RECONCILIATION|PAYMENT_METHODS|INSTALMENT)_/.test(key)) delete base[key];
  }
  return { ...base, ...env };
}

/** The compiled BFF, as `npm start` runs it (`npm run build:server` writes it). */
export const BFF_ENTRY = 'dist/server/server/main.js';
let bffBuilt: Promise<void> | null = null;

/** Compiles the server once per benchmark run (tsc, a few seconds), so every part measures the code of the tree. */
export function buildBff(): Promise<void> {
  bffBuilt ??= new Promise<void>((resolve, reject) => {
    progress('  compiling the server (npm run build:server)');
    const tsc = spawn(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'server/tsconfig.build.json'], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    tsc.stdout!.on('data', (chunk: Buffer) => { output += String(chunk); });
    tsc.stderr!.on('data', (chunk: Buffer) => { output += String(chunk); });
    tsc.on('error', reject);
    tsc.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`the server does not compile: ${output.slice(-800)}`))));
  });
  return bffBuilt;
}

/**
 * A BFF process: the compiled server (see buildBff) as `npm start` runs it. BENCH_CPU_PROF=<dir> writes a V8 CPU
 * profile of each BFF there when it stops (open it in Chrome DevTools → Performance, or speedscope).
 */
export async function spawnBff(name: string, env: Record<string, string | undefined>): Promise<Child> {
  await buildBff();
  const profileDir = process.env.BENCH_CPU_PROF;
  return spawnNode(name, BFF_ENTRY, {
    tsx: false,
    env,
    echo: process.env.BENCH_ECHO === '1',
    nodeArgs: ['--enable-source-maps', ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])],
  });
}
