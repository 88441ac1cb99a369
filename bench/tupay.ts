/**
 * Part 5: Tupay deposits fetched, stored and reconciled. The simulator (bench/tupay-sandbox.ts) and the BFF's side
 * (bench/reconcile.ts: TupayLedger.sync and the report, on a fresh embedded database) each run in a process of their
 * own; the second reports its own time and memory.
 */
import { tupayWindows, unixSeconds } from '../server/providers/tupay/tupay-client.js';
import { childEnv, firstJsonLine, progress, spawnNode, tempDir } from './lib.js';

export type TupayResult = {
  deposits: number;
  seed: number;
  stepSeconds: number;
  period: { from: string; to: string };
  windows: number;
  totalMs: number;
  syncMs: number;
  reportMs: number;
  stored: number;
  read: number;
  discrepancies: number;
  maxRssBytes: number;
  heapPeakBytes: number;
  /** The simulator's own time for one page without the bench's index (not part of the figure). */
  unindexedPageMs: number;
};

const START_MS = Date.UTC(2026, 0, 1);

export async function tupayReconciliation(count: number, seed: number, stepMs: number): Promise<TupayResult> {
  const sandbox = spawnNode('tupay-sandbox', 'bench/tupay-sandbox.ts', {
    env: childEnv({ COUNT: String(count), SEED: String(seed), START_MS: String(START_MS), STEP_MS: String(stepMs) }),
  });
  const { dir, remove } = await tempDir('tupay');
  try {
    const info = await firstJsonLine<{ url: string; deposits: number; from: string; to: string; unindexedPageMs: number }>(sandbox, 60_000);
    const from = new Date(`${info.from.replace(' ', 'T')}Z`);
    const to = new Date(`${info.to.replace(' ', 'T')}Z`);
    const windows = tupayWindows(unixSeconds(from), unixSeconds(to)).length;
    progress(`  ${info.deposits} deposits from ${info.from} to ${info.to} (${windows} windows of 60 days); reconciling`);
    const child = spawnNode('reconcile', 'bench/reconcile.ts', {
      env: childEnv({ TUPAY_URL: info.url, DATA_DIR: dir, FROM: from.toISOString(), TO: to.toISOString() }),
      echo: true,
    });
    const result = await firstJsonLine<{
      totalMs: number; syncMs: number; reportMs: number; stored: number; discrepancies: number; maxRssBytes: number; heapPeakBytes: number;
      tupay: { deposits?: { read: number } };
    }>(child, 300_000);
    await child.exited;
    return {
      deposits: info.deposits, seed, stepSeconds: stepMs / 1000, period: { from: from.toISOString(), to: to.toISOString() }, windows,
      totalMs: result.totalMs, syncMs: result.syncMs, reportMs: result.reportMs, stored: result.stored,
      read: result.tupay.deposits?.read ?? 0, discrepancies: result.discrepancies,
      maxRssBytes: result.maxRssBytes, heapPeakBytes: result.heapPeakBytes, unindexedPageMs: info.unindexedPageMs,
    };
  } finally {
    await sandbox.stop();
    await remove();
  }
}
