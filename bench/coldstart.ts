/**
 * Part 6: cold start with an existing data directory. The compiled server (run as `npm start` runs it)
 * starts once to create and migrate the embedded database, stops, then starts `restarts` more times; each is timed
 * from spawn until `GET /healthz` answers 200 (polled every 10 ms), then stopped with SIGTERM.
 */
import { buildBff, childEnv, freePort, median, progress, spawnBff, tempDir, waitFor200 } from './lib.js';

export type ColdStart = { firstStartMs: number; restartsMs: number[]; medianMs: number; maxMs: number };

async function startOnce(dir: string, label: string): Promise<number> {
  const port = await freePort();
  const started = performance.now();
  const child = await spawnBff(label, childEnv({ MODE: 'sandbox', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', DATA_DIR: dir }));
  try {
    await waitFor200(`http://127.0.0.1:${port}/healthz`, 60_000, child, 10);
    return performance.now() - started;
  } finally {
    await child.stop(15_000);
  }
}

export async function coldStart(restarts: number): Promise<ColdStart> {
  await buildBff();
  const { dir, remove } = await tempDir('coldstart');
  try {
    const firstStartMs = await startOnce(dir, 'bff-first-start');
    progress(`  first start (creates the data directory): ${Math.round(firstStartMs)} ms`);
    const restartsMs: number[] = [];
    for (let i = 0; i < restarts; i++) {
      restartsMs.push(await startOnce(dir, `bff-restart-${i + 1}`));
      progress(`  restart ${i + 1}: ${Math.round(restartsMs[i]!)} ms`);
    }
    return {
      firstStartMs: Math.round(firstStartMs),
      restartsMs: restartsMs.map((ms) => Math.round(ms)),
      medianMs: Math.round(median(restartsMs)),
      maxMs: Math.round(Math.max(...restartsMs)),
    };
  } finally {
    await remove();
  }
}

