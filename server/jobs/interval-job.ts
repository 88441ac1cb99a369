/**
 * A tiny in-process job runner for periodic work (merchant webhook delivery, payment status checks). The next run
 * is scheduled `intervalMs` after the previous one ends, so a run never overlaps itself however long it takes.
 * Work shared by several instances must make itself safe (leases, SKIP LOCKED); this only orders runs in one process.
 */
import type { Logger } from '../log.js';

export type IntervalJob<T> = {
  /** Runs now (or joins the run in progress) and resolves or rejects with that run's outcome. */
  runNow(): Promise<T>;
  /** No more runs; resolves once a run in progress has ended. */
  stop(): Promise<void>;
};

/**
 * Runs `task` every `intervalMs` (first run after `initialDelayMs`, default intervalMs), never overlapping itself,
 * logging failures without stopping; `stop()` waits for a run in progress. `runNow()` triggers an immediate run
 * (or waits for the one in progress) and resolves with its result.
 */
export function startIntervalJob<T>(
  name: string,
  intervalMs: number,
  task: () => Promise<T>,
  options: { logger?: Logger; initialDelayMs?: number } = {},
): IntervalJob<T> {
  if (!(Number.isFinite(intervalMs) && intervalMs > 0)) throw new Error(`job ${name}: intervalMs must be positive`);
  const log = options.logger?.child({ job: name });
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<T> | undefined;
  let stopped = false;

  const schedule = (delayMs: number) => {
    clearTimeout(timer);
    if (stopped) return;
    // Unref'd: a pending job never keeps the process (or a test run) alive.
    timer = setTimeout(() => void run(), delayMs).unref();
  };

  const run = (): Promise<T> => {
    if (current) return current;
    clearTimeout(timer);
    const started = performance.now();
    const ms = () => Math.round(performance.now() - started);
    const promise = Promise.resolve().then(task);
    current = promise;
    // Registered before anyone else can await `promise`, so `current` is cleared before a waiter calls runNow again.
    promise.then(
      () => {
        current = undefined;
        log?.debug('job run done', { ms: ms() });
        schedule(intervalMs);
      },
      (error: unknown) => {
        current = undefined;
        log?.error('job run failed', { error, ms: ms() });
        schedule(intervalMs);
      },
    );
    return promise;
  };

  schedule(options.initialDelayMs ?? intervalMs);

  return {
    runNow() {
      if (stopped) return Promise.reject(new Error(`job ${name} is stopped`));
      return run();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await current?.catch(() => {});
    },
  };
}
