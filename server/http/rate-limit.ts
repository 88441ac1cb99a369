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
import { GroupCommit } from '../db/group-commit.js';

export type RateLimitBucket = 'curp-ip' | 'checkout';

export type RateLimitSettings = {
  /** Requests allowed per window for each bucket; 0 = no limit. */
  limits: Record<RateLimitBucket, number>;
  /** Window length in seconds (60: "per minute"). */
  windowSeconds: number;
};

export type RateLimitOutcome = { allowed: boolean; hits: number; limit: number; retryAfterSeconds: number };

type Hit = { bucket: RateLimitBucket; key: string; windowStart: number };

/** The most hits counted by one statement (each distinct key is one row of it). */
const MAX_HITS_PER_STATEMENT = 1_000;

export class RateLimiter {
  private lastPrunedWindow = 0;
  /**
   * Hits that arrive while an upsert is on its way are counted together by the next one (group commit): under load
   * the database sees one round trip, and one row lock per key, per group instead of per request, and each request
   * still gets its exact number.
   */
  private readonly hits = new GroupCommit<Hit, number>((hits) => this.countAll(hits), { maxGroup: MAX_HITS_PER_STATEMENT, delayMs: 0 });

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
    const hits = await this.hits.run({ bucket, key, windowStart });
    return { allowed: hits <= limit, hits, limit, retryAfterSeconds: Math.max(1, Math.ceil((windowStart + windowMs - nowMs) / 1000)) };
  }

  /** Each hit's number in its window: one upsert adds every key's hits at once, then they are numbered in order. */
  private async countAll(hits: Hit[]): Promise<number[]> {
    const idOf = (hit: { bucket: string; key: string; windowStart: number }) => `${hit.bucket}\n${hit.key}\n${hit.windowStart}`;
    const keys = new Map<string, { hit: Hit; n: number }>();
    for (const hit of hits) {
      const entry = keys.get(idOf(hit));
      if (entry) entry.n += 1;
      else keys.set(idOf(hit), { hit, n: 1 });
    }
    await this.prune(Math.max(...hits.map((hit) => hit.windowStart)));
    // Keys in one order on every instance, so that two statements never wait for each other's row locks (deadlock).
    const rows = [...keys.values()].sort((a, b) => (a.hit.bucket < b.hit.bucket ? -1 : a.hit.bucket > b.hit.bucket ? 1
      : a.hit.key < b.hit.key ? -1 : a.hit.key > b.hit.key ? 1 : a.hit.windowStart - b.hit.windowStart));
    const params: unknown[] = [];
    const values = rows.map(({ hit, n }) => {
      params.push(hit.bucket, hit.key, new Date(hit.windowStart).toISOString(), n);
      const i = params.length;
      return `($${i - 3}::text, $${i - 2}::text, $${i - 1}::timestamptz, $${i}::int)`;
    });
    const result = await this.db.query<{ bucket: string; key: string; window_start: Date | string; hits: number }>(
      `INSERT INTO rate_limit_hits AS h (bucket, key, window_start, hits) VALUES ${values.join(', ')}
       ON CONFLICT (bucket, key, window_start) DO UPDATE SET hits = h.hits + EXCLUDED.hits
       RETURNING h.bucket, h.key, h.window_start, h.hits`,
      params,
    );
    // The number before this statement, per key; each hit of the key then takes the next one, in arrival order.
    const next = new Map(result.rows.map((row) => {
      const id = idOf({ bucket: row.bucket, key: row.key, windowStart: new Date(row.window_start).getTime() });
      return [id, Number(row.hits) - keys.get(id)!.n];
    }));
    return hits.map((hit) => {
      const before = next.get(idOf(hit));
      if (before === undefined) throw new Error('rate limit upsert returned no row');
      next.set(idOf(hit), before + 1);
      return before + 1;
    });
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
