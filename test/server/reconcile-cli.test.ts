/**
 * `npm run reconcile` as a merchant runs it: a separate process against a freshly started BFF in sandbox mode (its
 * Tupay simulator holding the sandbox's activity), with the default sandbox admin token.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mexicoCityDate } from '../../server/cards/schedule.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const run = promisify(execFile);

describe('npm run reconcile against the BFF', () => {
  let server: TestServer;
  let dir: string;
  beforeAll(async () => {
    server = await startTestServer({ backgroundJobs: false });
    dir = await mkdtemp(path.join(tmpdir(), 'reconcile-'));
  });
  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('when run for the last 90 days, then it prints the summary and writes the CSV of every line', async () => {
    const from = mexicoCityDate(new Date(Date.now() - 89 * 86_400_000));
    const to = mexicoCityDate(new Date());
    const csv = path.join(dir, 'report.csv');
    const env = { ...process.env, ADMIN_TOKEN: '', KASU_BFF_URL: server.url };
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'server/cli/reconcile.ts', '--from', from, '--to', to, '--csv', csv], { env });

    const deposits = server.tupaySandbox!.deposits.length;
    expect(deposits).toBeGreaterThan(10);
    expect(stdout).toMatch(new RegExp(`^Conciliación rec_[\\w-]+ · ${from} → ${to}$`, 'm'));
    expect(stdout).toContain(`Tupay: ${deposits} depósitos leídos (${deposits} nuevos, 0 actualizados)`);
    expect(stdout).toMatch(/^Pedidos: 0 \(0 pagados, 0 sin pago\)$/m);
    expect(stdout).toMatch(/sin pedido \d+/);
    expect(stdout).toContain(`CSV: ${csv}`);
    // Not a terminal: plain progress lines, two Tupay windows for 90 days.
    expect(stderr).toMatch(/ventana 2\/2/);

    const rows = (await readFile(csv, 'utf8')).trimEnd().split('\r\n');
    expect(rows[0]).toMatch(/^seq,category,rail,kind,id,order_reference,/);
    const report = (await (await fetch(`${server.url}/admin/reconciliations?limit=1`, {
      headers: { authorization: 'Bearer sandbox-admin-token-not-for-production' },
    })).json()) as { reports: Array<{ id: string; counts: Record<string, number> }> };
    const total = Object.entries(report.reports[0]!.counts)
      .filter(([key]) => !['statusChanges', 'reversals', 'paidOrphans'].includes(key))
      .reduce((sum, [, n]) => sum + n, 0);
    expect(rows).toHaveLength(1 + total);
    expect(rows.filter((row) => row.split(',')[3] === 'deposit')).toHaveLength(deposits);
  });

  it('when the token is wrong, then it says so, exits 1 and prints no token', async () => {
    const env = { ...process.env, ADMIN_TOKEN: 'a-wrong-admin-token-0123456789', KASU_BFF_URL: server.url };
    const failure = await run(process.execPath, ['--import', 'tsx', 'server/cli/reconcile.ts', '--from', '2026-11-01', '--to', '2026-11-02', '--csv', path.join(dir, 'x.csv')], { env })
      .then(() => null, (error: { code: number; stdout: string; stderr: string }) => error);
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toMatch(/refused the admin token/);
    expect(`${failure?.stdout}${failure?.stderr}`).not.toContain('a-wrong-admin-token');
  });
});
