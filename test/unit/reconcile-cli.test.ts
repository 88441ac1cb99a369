import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ReconciliationReportSchema,
  SANDBOX_ADMIN_TOKEN,
  USAGE,
  formatSummary,
  parseArguments,
  runCli,
  runReconcile,
  type ReconcileOptions,
} from '../../server/cli/reconcile.js';
import { sendJson, startStubServer, type StubRequest, type StubServer } from '../support/stub-server.js';

const TOKEN = 'test-admin-token-0123456789abcdef';

const REPORT = {
  id: 'rec_01JTEST',
  status: 'completed',
  trigger: 'cli',
  period: { from: '2026-01-01T06:00:00.000Z', to: '2026-04-01T06:00:00.000Z' },
  createdAt: '2026-04-02T16:00:00.000Z',
  completedAt: '2026-04-02T16:00:03.000Z',
  previousReportId: null,
  tupay: {
    synced: true,
    deposits: { read: 1500, inserted: 3, updated: 1, unchanged: 1496 },
    cashouts: { read: 8, inserted: 0, updated: 0, unchanged: 8 },
  },
  orders: { total: 12, paid: 10, unpaid: 2 },
  counts: { matched: 10, unpaid: 2, orphan: 3, mismatch: 1, duplicate: 0, pending: 1, failed: 0, cashout: 8, statusChanges: 2 },
  discrepancies: 4,
  totals: [
    {
      rail: 'tupay', currency: 'MXN',
      paid: { count: 10, centavos: 1_234_500 }, pending: { count: 1, centavos: 59_000 }, failed: { count: 0, centavos: 0 }, fees: 3702,
    },
    {
      rail: 'tupay-cashout', currency: 'MXN',
      paid: { count: 8, centavos: 500_000 }, pending: { count: 0, centavos: 0 }, failed: { count: 1, centavos: 12_050 }, fees: 0,
    },
  ],
  // Fields a later BFF may add are kept and printed with --json.
  generator: { version: 2 },
};

// CRLF, quotes, accents and an emoji: split below so multi-byte characters straddle chunks.
const CSV = 'kind,reference,amount\r\nmatched,KASU-1,"12,345.00"\r\norphan,Depósito sin pedido 💸,590.00\r\n';

let dir: string;
let servers: StubServer[] = [];

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'kasu-reconcile-'));
});

afterEach(async () => {
  await Promise.all(servers.map((server) => server.close()));
  servers = [];
  await rm(dir, { recursive: true, force: true });
});

function capture(isTTY = false) {
  const out: string[] = [];
  const err: string[] = [];
  const listeners: Array<(text: string) => void> = [];
  return {
    io: {
      stdout: { write: (chunk: string) => out.push(chunk) },
      stderr: {
        write: (chunk: string) => {
          err.push(chunk);
          for (const listener of listeners) listener(chunk);
        },
      },
      isTTY,
    },
    stdout: () => out.join(''),
    stderr: () => err.join(''),
    /** Resolves once stderr has shown `text` (proves progress is printed while the answer is still open). */
    seen: (text: string) =>
      new Promise<void>((resolve) => {
        if (err.join('').includes(text)) return resolve();
        listeners.push(() => {
          if (err.join('').includes(text)) resolve();
        });
      }),
  };
}

const line = (value: unknown) => `${JSON.stringify(value)}\n`;

function sendCsv(res: ServerResponse) {
  res.writeHead(200, { 'content-type': 'text/csv; charset=utf-8' });
  const bytes = Buffer.from(CSV, 'utf8');
  const emoji = bytes.indexOf(Buffer.from('💸', 'utf8'));
  res.write(bytes.subarray(0, 10));
  res.write(bytes.subarray(10, emoji + 2));
  setTimeout(() => res.end(bytes.subarray(emoji + 2)), 5);
}

/** A BFF speaking the reconciliation contract; `stream` writes the NDJSON answer. */
async function startBff(stream: (res: ServerResponse, req: StubRequest) => unknown): Promise<StubServer> {
  const server = await startStubServer((req, res) => {
    if (req.method === 'POST' && req.url === '/admin/reconciliations') {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      void stream(res, req);
    } else if (req.method === 'GET' && req.url === `/admin/reconciliations/${REPORT.id}/report.csv`) {
      sendCsv(res);
    } else {
      sendJson(res, 404, { error: { code: 'NOT_FOUND', message: 'Not found.', retryable: false, requestId: 'req_1' } });
    }
  });
  servers.push(server);
  return server;
}

function optionsFor(url: string, extra: string[] = [], env: Record<string, string> = { ADMIN_TOKEN: TOKEN }): ReconcileOptions {
  const parsed = parseArguments(
    ['--from', '2026-01-01', '--to', '2026-03-31', '--csv', path.join(dir, 'out.csv'), '--url', url, ...extra],
    env,
  );
  if (parsed.kind !== 'run') throw new Error(`arguments rejected: ${JSON.stringify(parsed)}`);
  return parsed.options;
}

describe('parseArguments', () => {
  const period = ['--from', '2026-01-01', '--to', '2026-03-31'];

  it('when only the period is given, then the CSV, sync, output, URL and token take their defaults', () => {
    expect(parseArguments(period, {})).toEqual({
      kind: 'run',
      options: {
        from: '2026-01-01',
        to: '2026-03-31',
        csv: 'reconciliation-2026-01-01-2026-03-31.csv',
        sync: true,
        json: false,
        url: 'http://localhost:8080',
        token: SANDBOX_ADMIN_TOKEN,
        tokenSource: 'sandbox',
      },
    });
    expect(SANDBOX_ADMIN_TOKEN).toBe('sandbox-admin-token-not-for-production');
  });

  it('when the environment names the BFF or its port and a token, then they are used', () => {
    const fromPort = parseArguments(period, { PORT: '9090', ADMIN_TOKEN: ` ${TOKEN} ` });
    expect(fromPort).toMatchObject({ kind: 'run', options: { url: 'http://localhost:9090', token: TOKEN, tokenSource: 'env' } });
    const fromUrl = parseArguments(period, { PORT: '9090', KASU_BFF_URL: 'https://bff.example/' });
    expect(fromUrl).toMatchObject({ kind: 'run', options: { url: 'https://bff.example' } });
    const fromFlag = parseArguments([...period, '--url', 'http://127.0.0.1:1234/base/'], { KASU_BFF_URL: 'https://bff.example' });
    expect(fromFlag).toMatchObject({ kind: 'run', options: { url: 'http://127.0.0.1:1234/base' } });
  });

  it('when --no-sync, --json and --csv are given, then they are honoured (also as --name=value)', () => {
    expect(parseArguments(['--from=2026-01-01', '--to=2026-01-01', '--no-sync', '--json', '--csv', 'q1.csv'], {})).toMatchObject({
      kind: 'run',
      options: { from: '2026-01-01', to: '2026-01-01', sync: false, json: true, csv: 'q1.csv' },
    });
  });

  it('when --help or -h is given, then help is asked for, even beside a bad argument', () => {
    expect(parseArguments(['--help'], {})).toEqual({ kind: 'help' });
    expect(parseArguments(['-h', '--from', 'nope'], {})).toEqual({ kind: 'help' });
    expect(parseArguments(['--bogus', '--help'], {})).toEqual({ kind: 'help' });
  });

  it.each([
    [['--from', '2026-02-30', '--to', '2026-03-31'], '--from must be a real day as YYYY-MM-DD (got "2026-02-30")'],
    [['--from', '2026-01-01', '--to', '2026-13-01'], '--to must be a real day as YYYY-MM-DD (got "2026-13-01")'],
    [['--from', '2025-02-29', '--to', '2026-03-31'], '--from must be a real day as YYYY-MM-DD (got "2025-02-29")'],
    [['--from', '2026-1-1', '--to', '2026-03-31'], '--from must be a real day as YYYY-MM-DD (got "2026-1-1")'],
    [['--from', '2026-03-31', '--to', '2026-01-01'], '--from 2026-03-31 is after --to 2026-01-01'],
    [['--to', '2026-03-31'], '--from is required (YYYY-MM-DD)'],
    [['--from', '2026-01-01'], '--to is required (YYYY-MM-DD)'],
    [[...period, '--url', 'ftp://bff.example'], '--url must be an http:// or https:// URL (got "ftp://bff.example")'],
    [[...period, '--csv', ''], '--csv must not be empty (got "")'],
    [[...period, '--verbose'], "unknown option '--verbose'"],
    [[...period, 'extra'], "unexpected argument 'extra'"],
  ])('when the arguments are %j, then they are rejected: %s', (argv, message) => {
    expect(parseArguments(argv, {})).toEqual({ kind: 'invalid', message });
  });

  it('when a leap day is real, then it is accepted', () => {
    expect(parseArguments(['--from', '2028-02-29', '--to', '2028-02-29'], {})).toMatchObject({ kind: 'run' });
  });

  it('when the BFF address from the environment is not usable, then the variable is named', () => {
    expect(parseArguments(period, { PORT: 'eighty' })).toEqual({ kind: 'invalid', message: 'PORT must be a port number (got "eighty")' });
    expect(parseArguments(period, { KASU_BFF_URL: 'bff:8080' })).toMatchObject({ kind: 'invalid', message: expect.stringMatching(/^KASU_BFF_URL /) });
  });
});

describe('runCli', () => {
  it('when --help is given, then the usage goes to stdout and the exit code is 0', async () => {
    const out = capture();
    expect(await runCli(['--help'], {}, out.io)).toBe(0);
    expect(out.stdout()).toBe(USAGE);
    expect(out.stderr()).toBe('');
  });

  it('when an argument is bad, then one line of error and the usage go to stderr and the exit code is 2', async () => {
    const out = capture();
    expect(await runCli(['--from', '2026-02-30', '--to', '2026-03-31'], {}, out.io)).toBe(2);
    expect(out.stdout()).toBe('');
    expect(out.stderr()).toBe(`reconcile: --from must be a real day as YYYY-MM-DD (got "2026-02-30")\n\n${USAGE}`);
  });
});

describe('runReconcile', () => {
  it('when the BFF streams progress and then the report, then the CSV is saved byte for byte and the summary printed', async () => {
    const out = capture();
    const bff = await startBff(async (res) => {
      res.write(line({ type: 'progress', phase: 'deposits', window: 1, windows: 2, records: 0 }));
      const progress = line({ type: 'progress', phase: 'deposits', window: 2, windows: 2, records: 1500 });
      res.write(progress.slice(0, 20)); // a line split across chunks
      res.write(progress.slice(20));
      res.write(line({ type: 'progress', phase: 'cashouts', window: 1, windows: 1, records: 8 }));
      res.write(line({ type: 'progress', phase: 'ledger-cleanup' })); // unknown to this version: ignored
      res.write(line({ type: 'progress', phase: 'report' }));
      await out.seen('Generando el reporte'); // the answer is still open: progress arrives as it is sent
      res.end(line({ type: 'report', report: REPORT }));
    });
    const options = optionsFor(bff.url);

    expect(await runReconcile(options, out.io)).toBe(0);

    const csvPath = path.join(dir, 'out.csv');
    expect(await readFile(csvPath)).toEqual(Buffer.from(CSV, 'utf8'));
    expect(await readdir(dir)).toEqual(['out.csv']);
    expect(out.stdout()).toBe(
      [
        'Conciliación rec_01JTEST · 2026-01-01 → 2026-03-31',
        'Tupay: 1,500 depósitos leídos (3 nuevos, 1 actualizados), 8 retiros leídos (0 nuevos, 0 actualizados)',
        'Pedidos: 12 (10 pagados, 2 sin pago)',
        'Pagos: conciliados 10 · sin pedido 3 · diferencias de monto 1 · duplicados 0 · pendientes 1 · fallidos 0 · retiros 8 · cambios de estado 2',
        'Totales por vía:',
        '  tupay          MXN  pagado $12,345.00 (10) · pendiente $590.00 (1) · fallido $0.00 (0) · comisiones $37.02',
        '  tupay-cashout  MXN  pagado $5,000.00 (8) · pendiente $0.00 (0) · fallido $120.50 (1) · comisiones $0.00',
        `Discrepancias: 4 → revise ${csvPath}`,
        `CSV: ${csvPath}`,
        '',
      ].join('\n'),
    );
    expect(out.stderr()).toBe(
      'Leyendo depósitos de Tupay: ventana 1/2, 0 registros\n'
        + 'Leyendo depósitos de Tupay: ventana 2/2, 1,500 registros\n'
        + 'Leyendo retiros de Tupay: ventana 1/1, 8 registros\n'
        + 'Generando el reporte\n',
    );

    const [start, download] = bff.requests;
    expect(start?.method).toBe('POST');
    expect(start?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(start?.headers['content-type']).toBe('application/json');
    expect(start?.headers.accept).toBe('application/x-ndjson');
    expect(JSON.parse(start?.body ?? '')).toEqual({ from: '2026-01-01', to: '2026-03-31', sync: true });
    expect(download?.method).toBe('GET');
    expect(download?.url).toBe('/admin/reconciliations/rec_01JTEST/report.csv');
    expect(download?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(out.stdout() + out.stderr()).not.toContain(TOKEN);
  });

  it('when stderr is a terminal, then the bar is redrawn in place and cleared before the summary', async () => {
    const out = capture(true);
    const bff = await startBff((res) => {
      res.write(line({ type: 'progress', phase: 'deposits', window: 1, windows: 1, records: 5 }));
      res.end(line({ type: 'report', report: REPORT }));
    });
    expect(await runReconcile(optionsFor(bff.url), out.io)).toBe(0);
    expect(out.stderr()).toBe(`\r\x1b[KDepósitos ${'█'.repeat(13)}${'░'.repeat(17)}  45%  ventana 1/1 · 5 registros\r\x1b[K`);
  });

  it('when --json and --no-sync are given, then sync: false is sent and the whole report, extra fields too, is printed as JSON', async () => {
    const out = capture();
    const unsynced = { ...REPORT, tupay: { synced: false, reason: 'not_requested' } };
    const bff = await startBff((res) => {
      res.write(line({ type: 'progress', phase: 'report' }));
      res.end(line({ type: 'report', report: unsynced }));
    });
    expect(await runReconcile(optionsFor(bff.url, ['--no-sync', '--json']), out.io)).toBe(0);
    expect(JSON.parse(bff.requests[0]?.body ?? '')).toEqual({ from: '2026-01-01', to: '2026-03-31', sync: false });
    expect(JSON.parse(out.stdout())).toEqual(unsynced);
    expect(out.stderr()).toBe(`Generando el reporte\nCSV: ${path.join(dir, 'out.csv')}\n`);
    expect(await readFile(path.join(dir, 'out.csv'), 'utf8')).toBe(CSV);
  });

  it('when Tupay was not re-read and nothing disagrees, then the summary says so', async () => {
    const out = capture();
    const quiet = { ...REPORT, tupay: { synced: false, reason: 'not_requested' }, discrepancies: 0, totals: [] };
    const bff = await startBff((res) => res.end(line({ type: 'report', report: quiet })));
    expect(await runReconcile(optionsFor(bff.url, ['--no-sync']), out.io)).toBe(0);
    expect(out.stdout()).toContain('\nTupay: no se releyó (se pidió --no-sync)\n');
    expect(out.stdout()).toContain('\nTotales por vía: ninguno\nDiscrepancias: 0\nCSV: ');
  });

  it('when Tupay is not configured or the reason is new, then the summary words it or shows it as sent', () => {
    const context = { from: '2026-01-01', to: '2026-01-31', csv: 'r.csv', csvPath: '/tmp/r.csv' };
    const summary = (tupay: unknown) => formatSummary(ReconciliationReportSchema.parse({ ...REPORT, tupay }), context);
    expect(summary({ synced: false, reason: 'not_configured' })).toContain('\nTupay: no se releyó (Tupay no está configurado en el BFF)\n');
    expect(summary({ synced: false, reason: 'rate_limited' })).toContain('\nTupay: no se releyó (rate_limited)\n');
    expect(summary({ synced: false })).toContain('\nTupay: no se releyó\n');
  });

  it('when the BFF refuses the token, then the merchant is told to set ADMIN_TOKEN, the token is not printed and the exit code is 1', async () => {
    const out = capture();
    const bff = await startStubServer((_req, res) =>
      sendJson(res, 401, { error: { code: 'UNAUTHORIZED', message: 'Unauthorized.', retryable: false, requestId: 'req_1' } }));
    servers.push(bff);
    expect(await runReconcile(optionsFor(bff.url), out.io)).toBe(1);
    expect(out.stderr()).toBe(
      `reconcile: the BFF at ${bff.url} refused the admin token (401 UNAUTHORIZED); set ADMIN_TOKEN to the BFF's ADMIN_TOKEN\n`,
    );
    expect(out.stdout()).toBe('');
    expect(out.stderr()).not.toContain(TOKEN);
    expect(bff.requests).toHaveLength(1);
    expect(await readdir(dir)).toEqual([]);

    const sandbox = capture();
    expect(await runReconcile(optionsFor(bff.url, [], {}), sandbox.io)).toBe(1);
    expect(bff.requests[1]?.headers.authorization).toBe(`Bearer ${SANDBOX_ADMIN_TOKEN}`);
    expect(sandbox.stderr()).toContain('refused the sandbox admin token (ADMIN_TOKEN is not set)');
    expect(sandbox.stderr()).not.toContain(SANDBOX_ADMIN_TOKEN);
  });

  it('when the admin API is disabled or the BFF rejects the period, then the reason is shown', async () => {
    let answer: [number, unknown] = [404, { error: { code: 'NOT_FOUND', message: 'Not found.' } }];
    const bff = await startStubServer((_req, res) => sendJson(res, ...answer));
    servers.push(bff);

    const disabled = capture();
    expect(await runReconcile(optionsFor(bff.url), disabled.io)).toBe(1);
    expect(disabled.stderr()).toBe(
      `reconcile: the admin API is disabled on the BFF at ${bff.url} (404 NOT_FOUND): start the BFF with ADMIN_TOKEN set\n`,
    );

    answer = [400, { error: { code: 'VALIDATION_FAILED', message: 'The period is longer than a year.', fields: { to: 'too far' } } }];
    const rejected = capture();
    expect(await runReconcile(optionsFor(bff.url), rejected.io)).toBe(1);
    expect(rejected.stderr()).toBe('reconcile: the BFF rejected the request: The period is longer than a year. (to: too far)\n');

    answer = [503, { error: { code: 'SERVICE_UNAVAILABLE', message: 'Try again\nlater.' } }];
    const other = capture();
    expect(await runReconcile(optionsFor(bff.url), other.io)).toBe(1);
    expect(other.stderr()).toBe('reconcile: the BFF answered 503 SERVICE_UNAVAILABLE to the reconciliation: Try again later.\n');
  });

  it('when the run fails at the provider, then its code and message are shown, no CSV is asked for and the exit code is 1', async () => {
    const out = capture(true);
    const bff = await startBff((res) => {
      res.write(line({ type: 'progress', phase: 'deposits', window: 1, windows: 3, records: 0 }));
      res.end(line({ type: 'error', error: { code: 'PROVIDER_UNAVAILABLE', message: 'Tupay did not answer.', requestId: 'req_9' } }));
    });
    expect(await runReconcile(optionsFor(bff.url), out.io)).toBe(1);
    expect(out.stderr().endsWith('\r\x1b[Kreconcile: the reconciliation failed: PROVIDER_UNAVAILABLE: Tupay did not answer. (request req_9 in the BFF log)\n')).toBe(true);
    expect(bff.requests).toHaveLength(1);
    expect(await readdir(dir)).toEqual([]);
  });

  it('when the answer ends before the report or carries a broken line, then it is a failure', async () => {
    const truncated = await startBff((res) => res.end(line({ type: 'progress', phase: 'report' })));
    const out = capture();
    expect(await runReconcile(optionsFor(truncated.url), out.io)).toBe(1);
    expect(out.stderr()).toBe('Generando el reporte\nreconcile: the BFF ended the answer before the report; see the BFF log\n');

    const garbled = await startBff((res) => res.end('{"type":"progress",\n'));
    const broken = capture();
    expect(await runReconcile(optionsFor(garbled.url), broken.io)).toBe(1);
    expect(broken.stderr()).toBe('reconcile: the BFF sent a line that is not JSON: {"type":"progress",\n');

    const misshapen = await startBff((res) => res.end(line({ type: 'report', report: { ...REPORT, counts: undefined } })));
    const odd = capture();
    expect(await runReconcile(optionsFor(misshapen.url), odd.io)).toBe(1);
    expect(odd.stderr()).toMatch(/^reconcile: the BFF sent a report this command does not understand \(report\.counts: /);
  });

  it('when the CSV download is cut off, then no file (and no temporary file) is left behind', async () => {
    const server = await startStubServer((req, res) => {
      if (req.method === 'POST') {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        res.end(line({ type: 'report', report: REPORT }));
      } else {
        res.writeHead(200, { 'content-type': 'text/csv', 'content-length': '1000' });
        res.write('kind,reference\r\n');
        setTimeout(() => res.destroy(), 20);
      }
    });
    servers.push(server);
    const out = capture();
    expect(await runReconcile(optionsFor(server.url), out.io)).toBe(1);
    expect(out.stderr()).toMatch(/^reconcile: the connection to the BFF at .* was cut \(\w+\); see the BFF log\n$/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('when the CSV cannot be written there, then the path is named', async () => {
    const bff = await startBff((res) => res.end(line({ type: 'report', report: REPORT })));
    const options = { ...optionsFor(bff.url), csv: path.join(dir, 'missing', 'out.csv') };
    const out = capture();
    expect(await runReconcile(options, out.io)).toBe(1);
    expect(out.stderr()).toBe(`reconcile: cannot write the CSV to ${options.csv}: ENOENT\n`);
  });

  it('when nothing listens at the URL, then the merchant is asked whether the BFF is running and the exit code is 1', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const url = `http://127.0.0.1:${port}`;

    const out = capture();
    expect(await runReconcile(optionsFor(url), out.io)).toBe(1);
    expect(out.stderr()).toBe(`reconcile: cannot reach the BFF at ${url}; is it running? (npm start)\n`);
    expect(out.stdout()).toBe('');
  });

  it('when the run is interrupted, then it stops with exit code 130 and leaves no file', async () => {
    const controller = new AbortController();
    const bff = await startBff((res) => {
      res.write(line({ type: 'progress', phase: 'deposits', window: 1, windows: 3, records: 0 }));
    });
    const out = capture();
    void out.seen('Leyendo depósitos').then(() => controller.abort());
    expect(await runReconcile(optionsFor(bff.url), { ...out.io, signal: controller.signal })).toBe(130);
    expect(out.stderr()).toBe('Leyendo depósitos de Tupay: ventana 1/3, 0 registros\nreconcile: interrupted\n');
    expect(await readdir(dir)).toEqual([]);
  });
});
