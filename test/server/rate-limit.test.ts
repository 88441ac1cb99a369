/**
 * The rate limiter's counting under concurrency, on both databases: hits that arrive together are counted by one
 * upsert (group commit), and each request still gets its own exact number in its window.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimiter } from '../../server/http/rate-limit.js';
import { createMemoryLogger } from '../../server/log.js';
import { ENGINES, openTestDatabase, type TestDatabase } from '../support/databases.js';

describe.each(ENGINES)('rate limiter on %s', (engine) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await openTestDatabase(engine);
  });
  afterAll(async () => {
    await t?.drop();
  });

  it('when many requests of two keys arrive at once, then each gets its own number, exactly the limit pass, and fewer statements than requests count them', async () => {
    let statements = 0;
    const counting = { query: ((sql: string, params?: unknown[]) => {
      if (/rate_limit_hits AS h/.test(sql)) statements += 1;
      return t.db.query(sql, params);
    }) as typeof t.db.query };
    const limiter = new RateLimiter(counting, { limits: { 'curp-ip': 5, checkout: 0 }, windowSeconds: 60 }, createMemoryLogger(),
      () => new Date('2026-11-23T12:00:10Z'));
    const outcomes = await Promise.all([
      ...Array.from({ length: 12 }, () => limiter.hit('curp-ip', 'ip-a')),
      ...Array.from({ length: 3 }, () => limiter.hit('curp-ip', 'ip-b')),
    ]);
    expect(outcomes.slice(0, 12).map((o) => o.hits).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(outcomes.slice(12).map((o) => o.hits).sort((a, b) => a - b)).toEqual([1, 2, 3]);
    expect(outcomes.filter((o) => o.allowed)).toHaveLength(5 + 3);
    expect(outcomes.find((o) => !o.allowed)).toMatchObject({ limit: 5, retryAfterSeconds: 50 });
    expect(statements).toBeLessThan(15);
    // The next one continues the count.
    expect((await limiter.hit('curp-ip', 'ip-a')).hits).toBe(13);
    const { rows } = await t.db.query<{ key: string; hits: number }>('SELECT key, hits FROM rate_limit_hits ORDER BY key');
    expect(rows).toEqual([{ key: 'ip-a', hits: 13 }, { key: 'ip-b', hits: 3 }]);
  });
});
