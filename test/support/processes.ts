/**
 * Real BFF processes for the crash and scale-out tests (test/server/charge-crash, submit-crash, scale-out): the
 * entry point `server/main.ts` spawned on the test's PostgreSQL schema, ready once `/healthz` answers, SIGKILLed or
 * stopped with SIGTERM, its stdout and stderr kept for failure messages. And what those tests put around the
 * processes: a round-robin load balancer, KASU registries behind a front with network latency, and a customer who
 * buys through the public API and retries a submit until it gets a final answer.
 *
 * How the process runs: `server/main.ts` is transpiled once per test file by esbuild (tsx's own transpiler) into
 * one ES module in a temporary directory, and each process is `node <that file>`: the same code as `tsx
 * server/main.ts`, without tsx's loader hooks, which make every start-up about three times slower (1.4 s instead of
 * 0.5 s on the two-core test machine, 2–5 s instead of 0.7–2.5 s when it is busy). The crash tests start some fifty
 * processes. BFF_RUNNER=tsx spawns `node --import tsx server/main.ts` instead.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { createServer, request as httpRequest, Agent, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseCurp } from '../../shared/curp.js';
import { PRODUCTS, PRODUCT_AGE_LIMITS, type Product } from '../../shared/products.js';
import { SANDBOX_CURPS, startKasuSandbox, type KasuSandboxState } from '../../server/sandbox/kasu/kasu-sandbox.js';
import { POSTGRES_URL } from './databases.js';
import { apiClient } from './test-server.js';

export { sleep };

/** The admin token every spawned BFF gets (the sandbox default, as `npm start` uses). */
export const ADMIN_TOKEN = 'sandbox-admin-token-not-for-production';

/** The test database as a spawned process reaches it: `schema` first on its search path. */
export function databaseUrl(schema: string): string {
  return `${POSTGRES_URL}${POSTGRES_URL.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
}

const handedOut = new Set<number>();

/**
 * A TCP port free right now on 127.0.0.1, for a process that must know its port before it listens; never the same
 * one twice in a test file (the process it went to may not be listening yet).
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

export type BffProcess = {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Milliseconds from spawn to the first healthy /healthz. */
  readonly startupMs: number;
  /** What the process wrote so far, stdout and stderr interleaved (the last 512 KB). */
  output(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL: no shutdown hook runs, in-flight requests and transactions die with it. */
  kill(): Promise<void>;
  /** SIGTERM (a clean shutdown), then SIGKILL if it has not exited after 10 s. */
  stop(): Promise<void>;
};

/** Every child spawned and not yet exited, ready or still starting: killAll() and the worker's exit kill them. */
const children = new Map<ChildProcess, Promise<unknown>>();
process.once('exit', () => {
  for (const child of children.keys()) child.kill('SIGKILL');
});
const OUTPUT_LIMIT = 512 * 1024;

let bundled: Promise<string> | null = null;
let bundleDir: string | null = null;

function removeBundle(): void {
  if (bundleDir) rmSync(bundleDir, { recursive: true, force: true });
  bundleDir = null;
  bundled = null;
}
process.once('exit', removeBundle);

/** The node arguments that run server/main.ts (see the header). */
async function entryArguments(): Promise<string[]> {
  if (process.env.BFF_RUNNER === 'tsx') return ['--import', 'tsx', 'server/main.ts'];
  bundled ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kasu-bff-'));
    bundleDir = dir;
    // Dependencies stay external, resolved from the project's node_modules through a link next to the bundle.
    symlinkSync(resolve('node_modules'), join(dir, 'node_modules'), 'dir');
    const outfile = join(dir, 'main.mjs');
    await build({
      entryPoints: ['server/main.ts'], outfile, bundle: true, packages: 'external', platform: 'node', format: 'esm',
      target: 'node20', logLevel: 'silent',
    });
    return outfile;
  })();
  return [await bundled];
}

/**
 * Spawns `server/main.ts` in sandbox mode on PostgreSQL `schema` (already migrated or not: migrations run under an
 * advisory lock) and resolves once GET /healthz answers 200. Background jobs are quiet unless `env` turns them on:
 * Khipu polling, webhook dispatch and card charges every hour.
 */
export async function startBff(options: {
  schema: string;
  env?: Record<string, string>;
  /** Default: a free port. PUBLIC_URL defaults to http://127.0.0.1:<port>. */
  port?: number;
  readyTimeoutMs?: number;
}): Promise<BffProcess> {
  const port = options.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const args = await entryArguments();
  const started = performance.now();
  const child = spawn(process.execPath, args, {
    env: {
      ...process.env,
      MODE: 'sandbox',
      HOST: '127.0.0.1',
      PORT: String(port),
      PUBLIC_URL: url,
      LOG_LEVEL: 'info',
      ADMIN_TOKEN,
      DATABASE_URL: databaseUrl(options.schema),
      // The test's customers and load balancer reach the process over loopback and say who the customer is in
      // X-Forwarded-For (each their own address, so the per-IP rate limit counts customers, not the test).
      TRUST_PROXY: 'loopback',
      KHIPU_POLL_INTERVAL_SECONDS: '3600',
      WEBHOOK_DISPATCH_INTERVAL_MS: '3600000',
      CARD_CHARGE_INTERVAL_SECONDS: '3600',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > OUTPUT_LIMIT) output = output.slice(-OUTPUT_LIMIT);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  let hasExited = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      hasExited = true;
      children.delete(child);
      resolve({ code, signal });
    });
  });
  children.set(child, exited);

  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (hasExited) {
      const { code, signal } = await exited;
      throw new Error(`BFF on port ${port} exited before it was healthy (code ${code}, signal ${signal}):\n${output.slice(-4000)}`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`BFF on port ${port} not healthy after ${options.readyTimeoutMs ?? 30_000} ms:\n${output.slice(-4000)}`);
    }
    // A request accepted in the instant between listen() and the app being attached would hang: short timeouts.
    const healthy = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(500) }).then((r) => r.ok, () => false);
    if (healthy) break;
    await sleep(50);
  }

  const bff: BffProcess = {
    url,
    port,
    pid: child.pid!,
    child,
    startupMs: Math.round(performance.now() - started),
    output: () => output,
    exited,
    async kill() {
      if (!hasExited) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (!hasExited) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
  return bff;
}

/**
 * SIGKILLs every BFF process this module started that is still running or starting, and removes the transpiled
 * server (afterAll of each test file).
 */
export async function killAll(): Promise<void> {
  const pending = [...children.entries()];
  for (const [child] of pending) child.kill('SIGKILL');
  await Promise.all(pending.map(([, exited]) => exited));
  removeBundle();
}

/** POST to the admin API of one instance (jobs, reconciliations); the parsed JSON answer. */
export async function admin(baseUrl: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  try {
    return { status: response.status, body: JSON.parse(text) };
  } catch {
    return { status: response.status, body: text };
  }
}

// ---------- a load balancer ----------

export type Balancer = { url: string; /** Requests sent to each target, by target URL. */ counts: Map<string, number>; close(): Promise<void> };

/**
 * Round-robin HTTP proxy over `targets` (no stickiness, no health checks): each request goes to the next instance.
 * It appends the client's address to X-Forwarded-For as a real load balancer does.
 */
export async function startBalancer(targets: string[]): Promise<Balancer> {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const counts = new Map(targets.map((target) => [target, 0]));
  let next = 0;
  const server: Server = createServer((req, res) => {
    const target = targets[next++ % targets.length]!;
    counts.set(target, counts.get(target)! + 1);
    const forwardedFor = [req.headers['x-forwarded-for'], req.socket.remoteAddress].filter(Boolean).join(', ');
    const upstream = httpRequest(`${target}${req.url ?? '/'}`, {
      method: req.method, agent, headers: { ...req.headers, host: new URL(target).host, 'x-forwarded-for': forwardedFor },
    }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', (error) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`balancer: ${error.message}`);
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    counts,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}

// ---------- KASU: registries behind a front with latency ----------

/** One KASU call as the front saw it. */
export type KasuFrontCall = {
  registry: number;
  fn: string;
  curp: string;
  product: string | null;
  /** KASU's status, or 0 if KASU was not reached. */
  status: number;
  /**
   * The caller's connection was gone when KASU's answer was ready: the answer was lost. (An answer written just before
   * the caller died is lost too, and not counted here.)
   */
  answerLost: boolean;
};

export type KasuFront = {
  url: string;
  /** registries[n] is a whole KASU sandbox: its own state.registrations. */
  registries: KasuSandboxState[];
  calls: KasuFrontCall[];
  /** Every request the front has accepted has reached KASU and its answer has been sent or lost. */
  settled(): Promise<void>;
  /**
   * The next new_service is forwarded to KASU (which registers) and its answer is held back: resolves then, with a
   * function that lets the answer go (to a caller that may be dead by then).
   */
  holdNextRegistrationAnswer(): Promise<() => void>;
  close(): Promise<void>;
};

/**
 * `registries` KASU sandboxes behind one HTTP front that adds `delayMs` before forwarding a request and again before
 * answering, so that a BFF killed "during the KASU call" may die before KASU registered or after, with the answer
 * lost. A request whose caller died is still forwarded: it was sent, as on a real network.
 *
 * Why several registries: the sandbox knows 10 living people, i.e. 16 (CURP, product) pairs, and registers each once.
 * KASU's tokens are HMACs (stateless), so token_full and modify_record go to registry 0 and new_service goes to the
 * registry named by the email's domain (`…@r<N>.example.mx`, see `slot`): each registry is a KASU of its own.
 */
export async function startKasuFront(options: { registries: number; delayMs?: number }): Promise<KasuFront> {
  const sandboxes = await Promise.all(
    Array.from({ length: options.registries }, () => startKasuSandbox({ tokenRateLimitPerMinute: 100_000 })),
  );
  const delayMs = options.delayMs ?? 0;
  const calls: KasuFrontCall[] = [];
  const inFlight = new Set<Promise<void>>();
  let holds: Array<(release: () => void) => void> = [];

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // forwarded as it is: KASU answers 400
    }
    const fn = typeof parsed.tipo_peticion === 'string' ? parsed.tipo_peticion : '';
    const mail = typeof parsed.mail === 'string' ? parsed.mail : '';
    const registry = fn === 'new_service' ? Number(/@r(\d+)\./.exec(mail)?.[1] ?? 0) : 0;
    let callerGone = false;
    res.on('close', () => {
      if (!res.writableFinished) callerGone = true;
    });
    await sleep(delayMs);
    const target = sandboxes[registry] ?? sandboxes[0]!;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (req.headers.authorization) headers.authorization = req.headers.authorization;
    let status = 0;
    let answer = '';
    try {
      const upstream = await fetch(`${target.url}${req.url === '/' ? '' : req.url ?? ''}`, { method: req.method ?? 'POST', headers, body: text });
      status = upstream.status;
      answer = await upstream.text();
    } catch {
      status = 0;
    }
    if (fn === 'new_service' && holds.length) {
      const hold = holds.shift()!;
      await new Promise<void>((release) => hold(release));
    }
    await sleep(delayMs);
    const call: KasuFrontCall = {
      registry, fn, curp: typeof parsed.curp_en_uso === 'string' ? parsed.curp_en_uso : '',
      product: typeof parsed.producto === 'string' ? parsed.producto : null, status,
      // A killed caller's socket ends (FIN) or resets; the server would still write into the half-closed socket.
      answerLost: callerGone || res.destroyed || req.socket.destroyed || req.socket.readableEnded,
    };
    calls.push(call);
    if (call.answerLost) return;
    if (status === 0) res.writeHead(502, { 'content-type': 'text/plain' }).end('KASU unreachable');
    else res.writeHead(status, { 'content-type': 'application/json' }).end(answer);
  };

  const server: Server = createServer((req, res) => {
    const work = handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(502).end();
    });
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    registries: sandboxes.map((sandbox) => sandbox.state),
    calls,
    async settled() {
      while (inFlight.size) await Promise.allSettled([...inFlight]);
    },
    holdNextRegistrationAnswer() {
      return new Promise((resolve) => holds.push(resolve));
    },
    async close() {
      holds = [];
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all(sandboxes.map((sandbox) => sandbox.close()));
    },
  };
}

// ---------- customers ----------

/** Every (living sandbox person, eligible product) pair: 16 today. */
export const SANDBOX_PAIRS: ReadonlyArray<{ person: number; curp: string; product: Product }> = SANDBOX_CURPS.flatMap(
  (person, index) => {
    const parsed = parseCurp(person.curp);
    if (person.deceased || !parsed.ok) return [];
    return PRODUCTS.filter((product) => parsed.age >= PRODUCT_AGE_LIMITS[product].minAge && parsed.age <= PRODUCT_AGE_LIMITS[product].maxAge)
      .map((product) => ({ person: index, curp: person.curp, product }));
  },
);

export type Slot = { index: number; registry: number; curp: string; product: Product; email: string; phone: string };

/** The `index`-th purchase: a (CURP, product) pair used once in its KASU registry, with contact data unique there. */
export function slot(index: number): Slot {
  const registry = Math.floor(index / SANDBOX_PAIRS.length);
  const pair = SANDBOX_PAIRS[index % SANDBOX_PAIRS.length]!;
  return {
    index, registry, curp: pair.curp, product: pair.product,
    email: `${pair.curp.toLowerCase()}.${pair.product.toLowerCase()}@r${registry}.example.mx`,
    // KASU refuses an email or phone another CURP registered (409): one phone per person and registry.
    phone: `55${String(10_000_000 + pair.person * 1_000 + registry)}`,
  };
}

/** The customer's address as seen through a proxy: a documentation address (TEST-NET-3) of their own. */
function customerIp(index: number): string {
  return `203.0.113.${(index % 250) + 1}`;
}

/** A checkout with product, plan (`planCount`, else the first), contact, address and consents: ready to submit. */
export async function prepareCheckout(baseUrl: string, s: Slot, options: { planCount?: number } = {}) {
  const call = apiClient(baseUrl);
  const headers = { 'x-forwarded-for': customerIp(s.index) };
  const created = await call('POST', '/v1/checkouts', { body: { curp: s.curp }, headers });
  if (created.status !== 201) throw new Error(`create ${s.curp}: ${created.status} ${JSON.stringify(created.body)}`);
  const { id } = created.body.checkout as { id: string };
  const token = created.body.token as string;
  const quoted = await call('POST', `/v1/checkouts/${id}/quote`, { token, body: { product: s.product }, headers });
  if (quoted.status !== 200) throw new Error(`quote ${s.curp}/${s.product}: ${quoted.status} ${JSON.stringify(quoted.body)}`);
  const plans = quoted.body.quote.plans as Array<{ count: number; instalment: number }>;
  const plan = plans.find((p) => p.count === options.planCount) ?? plans[0]!;
  const patched = await call('PATCH', `/v1/checkouts/${id}`, {
    token, headers,
    body: {
      planCount: plan.count,
      contact: { email: s.email, phone: s.phone },
      address: { street: 'Calle 5', number: '10', neighborhood: 'Centro', municipality: 'Toluca', postalCode: '50000', state: 'MEX' },
      consents: { terms: true, privacy: true, trust: true },
    },
  });
  if (patched.status !== 200) throw new Error(`update ${id}: ${patched.status} ${JSON.stringify(patched.body)}`);
  return { id, token, plan };
}

export type SubmitAnswer = { status: number; body: any; headers?: IncomingHttpHeaders };

/** One POST …/submit; status 0 when the connection failed or died without an answer. */
export async function submitOnce(
  baseUrl: string, checkout: { id: string; token: string }, key: string, body: Record<string, unknown>, index = 0,
): Promise<SubmitAnswer> {
  try {
    const response = await fetch(`${baseUrl}/v1/checkouts/${checkout.id}/submit`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json', authorization: `Bearer ${checkout.token}`, 'idempotency-key': key,
        'x-forwarded-for': customerIp(index),
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: response.status, body: parsed };
  } catch (error) {
    return { status: 0, body: { network: (error as Error).message } };
  }
}

/** A final answer: the checkout, or an error the customer cannot make go away by retrying. */
export function isFinal(answer: SubmitAnswer): boolean {
  return answer.status === 200 || (answer.status >= 400 && answer.body?.error?.retryable === false);
}

/**
 * What a customer (the widget's "Reintentar") does: the same submit with the same Idempotency-Key until a final
 * answer. `baseUrl` is asked for each attempt (another instance, or the restarted one). Returns every answer.
 */
export async function submitUntilFinal(
  baseUrl: () => string, checkout: { id: string; token: string }, key: string, body: Record<string, unknown>,
  options: { index?: number; attempts?: number; pauseMs?: number } = {},
): Promise<SubmitAnswer[]> {
  const answers: SubmitAnswer[] = [];
  for (let attempt = 0; attempt < (options.attempts ?? 20); attempt++) {
    const answer = await submitOnce(baseUrl(), checkout, key, body, options.index);
    answers.push(answer);
    if (isFinal(answer)) return answers;
    await sleep(options.pauseMs ?? 200);
  }
  return answers;
}

/** "200 registered", "409 ALREADY_REGISTERED", "503 PROVIDER_UNAVAILABLE", "0 network"… */
export function describeAnswer(answer: SubmitAnswer): string {
  if (answer.status === 0) return '0 network';
  if (answer.status === 200) return `200 ${answer.body?.checkout?.status ?? ''}`.trim();
  return `${answer.status} ${answer.body?.error?.code ?? ''}`.trim();
}
