import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { startIntervalJob } from '../../server/jobs/interval-job.js';
import { createMemoryLogger } from '../../server/log.js';

type Job = ReturnType<typeof startIntervalJob>;

/** A promise the test resolves by hand, to hold a run open. */
function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

async function until(condition: () => boolean, timeoutMs = 2000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

describe('startIntervalJob', () => {
  const jobs: Job[] = [];
  const start: typeof startIntervalJob = (...args) => {
    const job = startIntervalJob(...args);
    jobs.push(job as Job);
    return job;
  };
  afterEach(async () => {
    await Promise.all(jobs.splice(0).map((job) => job.stop()));
  });

  it('when a run takes longer than the interval, then runs never overlap and the schedule goes on', async () => {
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    start('slow', 5, async () => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      await sleep(30);
      active -= 1;
      runs += 1;
    }, { initialDelayMs: 0 });
    await until(() => runs >= 4);
    expect(maxActive).toBe(1);
  });

  it('when runNow is called, then the task runs at once and runNow resolves with its result', async () => {
    let calls = 0;
    const job = start('answer', 3_600_000, async () => {
      calls += 1;
      return calls * 10;
    });
    expect(await job.runNow()).toBe(10);
    expect(await job.runNow()).toBe(20);
    expect(calls).toBe(2);
  });

  it('when runNow is called during a run, then it waits for that run and shares its result instead of starting another', async () => {
    const gate = deferred<string>();
    let calls = 0;
    const job = start('shared', 3_600_000, () => {
      calls += 1;
      return gate.promise;
    });
    const first = job.runNow();
    const second = job.runNow();
    await sleep(10);
    gate.resolve('done');
    expect(await Promise.all([first, second])).toEqual(['done', 'done']);
    expect(calls).toBe(1);
  });

  it('when a run fails, then runNow rejects, the failure is logged and later runs still happen', async () => {
    const logger = createMemoryLogger();
    let calls = 0;
    const job = start('flaky', 10, async () => {
      calls += 1;
      if (calls === 1) throw new Error('database unavailable');
      return calls;
    }, { logger, initialDelayMs: 3_600_000 });
    await expect(job.runNow()).rejects.toThrow('database unavailable');
    await until(() => calls >= 3);
    const failures = logger.lines.map((line) => JSON.parse(line)).filter((line) => line.level === 'error');
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ job: 'flaky', msg: 'job run failed', error: { message: 'database unavailable' } });
  });

  it('when a scheduled run throws synchronously, then it is logged and the schedule continues', async () => {
    const logger = createMemoryLogger();
    let calls = 0;
    start('sync-throw', 5, () => {
      calls += 1;
      if (calls === 1) throw new Error('sync boom');
      return Promise.resolve();
    }, { logger, initialDelayMs: 0 });
    await until(() => calls >= 3);
    expect(logger.lines.some((line) => line.includes('sync boom'))).toBe(true);
  });

  it('when stopped during a run, then stop waits for the run to end and no run follows', async () => {
    const gate = deferred();
    let calls = 0;
    const job = start('stoppable', 5, async () => {
      calls += 1;
      await gate.promise;
    }, { initialDelayMs: 0 });
    await until(() => calls === 1);
    let stopped = false;
    const stopping = job.stop().then(() => (stopped = true));
    await sleep(20);
    expect(stopped).toBe(false);
    gate.resolve();
    await stopping;
    expect(stopped).toBe(true);
    await sleep(40);
    expect(calls).toBe(1);
    await expect(job.runNow()).rejects.toThrow(/stopped/);
  });

  it('when no initial delay is given, then the first run waits one interval', async () => {
    let calls = 0;
    start('patient', 60, async () => {
      calls += 1;
    });
    await sleep(20);
    expect(calls).toBe(0);
    await until(() => calls === 1);
  });

  it('when a job is scheduled and nothing else is pending, then the process still exits', async () => {
    const script =
      "import { startIntervalJob } from './server/jobs/interval-job.ts';" +
      "startIntervalJob('idle', 3600000, async () => {}, { initialDelayMs: 3600000 });";
    const started = Date.now();
    await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 10_000 });
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('when the interval is not a positive number, then it refuses to start', () => {
    expect(() => startIntervalJob('bad', 0, async () => {})).toThrow(/intervalMs/);
    expect(() => startIntervalJob('bad', Number.NaN, async () => {})).toThrow(/intervalMs/);
  });
});
