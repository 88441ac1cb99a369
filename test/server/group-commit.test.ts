/**
 * Group commit, as the charge engine writes its claims and approvals: the items handed over together, or while a
 * write runs, are written by one flush; each caller gets its own result; one bad item does not fail the others.
 */
import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../../server/db/group-commit.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('group commit', () => {
  it('when callers hand over items at the same time, then one flush writes them all and each gets its own result', async () => {
    const flushes: number[][] = [];
    const group = new GroupCommit<number, string>(async (items) => {
      flushes.push(items);
      return items.map((n) => `done ${n}`);
    }, { maxGroup: 100, delayMs: 0 });
    const results = await Promise.all([1, 2, 3, 4, 5].map((n) => group.run(n)));
    expect(results).toEqual(['done 1', 'done 2', 'done 3', 'done 4', 'done 5']);
    expect(flushes).toEqual([[1, 2, 3, 4, 5]]);
  });

  it('when items arrive while a flush runs, then they wait and are written together by the next one (one flush at a time)', async () => {
    const flushes: number[][] = [];
    let running = 0;
    let overlapped = false;
    const group = new GroupCommit<number, number>(async (items) => {
      running += 1;
      overlapped ||= running > 1;
      flushes.push(items);
      await sleep(30);
      running -= 1;
      return items;
    }, { maxGroup: 100, delayMs: 0 });
    const first = group.run(1);
    await sleep(5); // the first flush is running
    const later = [2, 3, 4].map((n) => group.run(n));
    expect(await Promise.all([first, ...later])).toEqual([1, 2, 3, 4]);
    expect(flushes).toEqual([[1], [2, 3, 4]]);
    expect(overlapped).toBe(false);
  });

  it('when a delay is set, then items handed over within it join the group; a full group does not wait', async () => {
    const flushes: number[][] = [];
    const group = new GroupCommit<number, number>(async (items) => {
      flushes.push(items);
      return items;
    }, { maxGroup: 3, delayMs: 300 });
    const first = group.run(1);
    await sleep(10);
    const second = group.run(2);
    await Promise.all([first, second]);
    expect(flushes).toEqual([[1, 2]]);
    const started = performance.now();
    await Promise.all([3, 4, 5].map((n) => group.run(n)));
    expect(flushes.at(-1)).toEqual([3, 4, 5]);
    expect(performance.now() - started).toBeLessThan(250);
    await Promise.all([6, 7, 8, 9].map((n) => group.run(n)));
    expect(flushes.slice(2)).toEqual([[6, 7, 8], [9]]);
  });

  it('when a group fails, then each item is written again on its own: only the one the database refuses fails', async () => {
    const flushes: number[][] = [];
    const group = new GroupCommit<number, number>(async (items) => {
      flushes.push(items);
      if (items.includes(3)) throw new Error('refused');
      return items.map((n) => n * 10);
    }, { maxGroup: 100, delayMs: 0 });
    const results = await Promise.allSettled([1, 2, 3, 4].map((n) => group.run(n)));
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual([10, 20, 'refused', 40]);
    expect(flushes).toEqual([[1, 2, 3, 4], [1], [2], [3], [4]]);
    // It goes on working afterwards.
    expect(await group.run(5)).toBe(50);
  });
});
