/**
 * Rate limits shared by every BFF instance: the counters live in the database (`rate_limit_hits`, migration 005), one
 * row per bucket, key and fixed window, incremented by atomic upserts (the requests that arrive together are counted by
 * one statement), so N instances behind a load balancer allow N times nothing more. Windows that have ended are deleted now and then by whichever instance passes by.
 *
 * Buckets:
 * - `curp-ip`: POST /v1/checkouts (a CURP lookup at KASU, i.e. RENAPO) per client IP. The IP is stored hashed.
 * - `checkout`: the calls that reach KASU for one checkout (quote, submit), per checkout id, counted only once the
 *   checkout token was accepted (so nobody can spend another customer's allowance).
 *
 * Windows follow the BFF's clock (the same `now` as the checkout logic): keep instances' clocks in sync (NTP).
 */
import { createHash } from 'node:crypto';
import type { Response } from 'express';
import type { Queryable } from '../db/database.js';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';

export type RateLimitBucket = 'curp-ip' | 'checkout';

export type RateLimitSettings = {
  /** Requests allowed per window for each bucket; 0 = no limit. */
  limits: Record<RateLimitBucket, number>;
  /** Window length in seconds (60: "per minute"). */
  windowSeconds: number;
};

export type RateLimitOutcome = { allowed: boolean; hits: number; limit: number; retryAfterSeconds: number };

type Waiter = { resolve: (hits: number) => void; reject: (error: unknown) => void };
type Counter = { bucket: RateLimitBucket; key: string; windowStart: number; waiters: Waiter[] };

export class RateLimiter {
  private lastPrunedWindow = 0;
  /** Hits waiting for the next upsert, by bucket, key and window. */
  private pending = new Map<string, Counter>();
  private flushing = false;

  constructor(
    private readonly db: Queryable,
    private readonly settings: RateLimitSettings,
    private readonly logger: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Counts one request of `key` in `bucket` and says whether it is within the limit (always, when the limit is 0). */
  async hit(bucket: RateLimitBucket, key: string): Promise<RateLimitOutcome> {
    const limit = this.settings.limits[bucket];
    if (!limit) return { allowed: true, hits: 0, limit: 0, retryAfterSeconds: 0 };
    const windowMs = this.settings.windowSeconds * 1000;
    const nowMs = this.now().getTime();
    const windowStart = Math.floor(nowMs / windowMs) * windowMs;
    const hits = await this.count(bucket, key, windowStart);
    return { allowed: hits <= limit, hits, limit, retryAfterSeconds: Math.max(1, Math.ceil((windowStart + windowMs - nowMs) / 1000)) };
  }

  /**
   * This request's number in its window. Requests that arrive while an upsert is on its way are counted together by
   * the next one (one statement for all, a key's hits added at once): under load the database sees one round trip
   * and one row lock per key per batch instead of one per request, and each request still gets its exact number.
   */
  private count(bucket: RateLimitBucket, key: string, windowStart: number): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const id = `${bucket}\n${key}\n${windowStart}`;
      let counter = this.pending.get(id);
      if (!counter) {
        counter = { bucket, key, windowStart, waiters: [] };
        this.pending.set(id, counter);
      }
      counter.waiters.push({ resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    while (this.pending.size) {
      // Keys in one order on every instance, so that two batches never wait for each other's row locks (deadlock).
      const batch = [...this.pending.values()].sort((a, b) => (a.bucket < b.bucket ? -1 : a.bucket > b.bucket ? 1
        : a.key < b.key ? -1 : a.key > b.key ? 1 : a.windowStart - b.windowStart));
      this.pending = new Map();
      try {
        await this.prune(Math.max(...batch.map((counter) => counter.windowStart)));
        const params: unknown[] = [];
        const values = batch.map((counter) => {
          params.push(counter.bucket, counter.key, new Date(counter.windowStart).toISOString(), counter.waiters.length);
          const n = params.length;
          return `($${n - 3}::text, $${n - 2}::text, $${n - 1}::timestamptz, $${n}::int)`;
        });
        const { rows } = await this.db.query<{ bucket: string; key: string; window_start: Date | string; hits: number }>(
          `INSERT INTO rate_limit_hits AS h (bucket, key, window_start, hits) VALUES ${values.join(', ')}
           ON CONFLICT (bucket, key, window_start) DO UPDATE SET hits = h.hits + EXCLUDED.hits
           RETURNING h.bucket, h.key, h.window_start, h.hits`,
          params,
        );
        const totals = new Map(rows.map((row) => [
          `${row.bucket}\n${row.key}\n${new Date(row.window_start).getTime()}`, Number(row.hits),
        ]));
        for (const counter of batch) {
          const total = totals.get(`${counter.bucket}\n${counter.key}\n${counter.windowStart}`);
          if (total === undefined) {
            for (const waiter of counter.waiters) waiter.reject(new Error('rate limit upsert returned no row'));
            continue;
          }
          const first = total - counter.waiters.length;
          counter.waiters.forEach((waiter, i) => waiter.resolve(first + i + 1));
        }
      } catch (error) {
        for (const counter of batch) for (const waiter of counter.waiters) waiter.reject(error);
      }
    }
    this.flushing = false;
  }

  /**
   * Counts the request and, over the limit, throws RATE_LIMITED (429) with `Retry-After` set on `res`: the seconds
   * until the window ends. If the database cannot count, the request goes on (it will meet the same database next).
   */
  async enforce(res: Response, bucket: RateLimitBucket, key: string): Promise<void> {
    let outcome: RateLimitOutcome;
    try {
      outcome = await this.hit(bucket, key);
    } catch (error) {
      this.logger.warn('rate limit not counted', { bucket, error });
      return;
    }
    if (outcome.allowed) return;
    res.setHeader('Retry-After', String(outcome.retryAfterSeconds));
    throw new AppError('RATE_LIMITED', { detail: { bucket, limit: outcome.limit, hits: outcome.hits } });
  }

  /** Deletes windows that ended before the previous one, at most once per window per instance. */
  private async prune(windowStart: number): Promise<void> {
    if (this.lastPrunedWindow === windowStart) return;
    this.lastPrunedWindow = windowStart;
    const before = new Date(windowStart - this.settings.windowSeconds * 1000).toISOString();
    try {
      await this.db.query('DELETE FROM rate_limit_hits WHERE window_start < $1', [before]);
    } catch (error) {
      this.logger.warn('rate limit windows not pruned', { error });
    }
  }
}

/** The key of a client IP: hashed, so the table holds no address in clear. */
export function ipKey(ip: string | undefined): string {
  return createHash('sha256').update(`kasu-rate-limit:${ip ?? 'unknown'}`).digest('base64url').slice(0, 22);
}
