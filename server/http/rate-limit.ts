/**
 * Rate limits shared by every BFF instance: the counters live in the database (`rate_limit_hits`, migration 005), one
 * row per bucket, key and fixed window, incremented by a single atomic upsert, so N instances behind a load balancer
 * allow N times nothing more. Windows that have ended are deleted now and then by whichever instance passes by.
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

export class RateLimiter {
  private lastPrunedWindow = 0;

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
    await this.prune(windowStart);
    const { rows } = await this.db.query<{ hits: number }>(
      `INSERT INTO rate_limit_hits AS h (bucket, key, window_start, hits) VALUES ($1, $2, $3, 1)
       ON CONFLICT (bucket, key, window_start) DO UPDATE SET hits = h.hits + 1
       RETURNING h.hits`,
      [bucket, key, new Date(windowStart).toISOString()],
    );
    const hits = Number(rows[0]?.hits ?? 1);
    return { allowed: hits <= limit, hits, limit, retryAfterSeconds: Math.max(1, Math.ceil((windowStart + windowMs - nowMs) / 1000)) };
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
