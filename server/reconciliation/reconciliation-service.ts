/**
 * A reconciliation run: re-read Tupay for the period into the ledger (unless asked not to), build the report in one
 * transaction with its merchant webhooks (`reconciliation.completed`, and `reconciliation.discrepancy` when there is
 * one). The daily job runs once per Mexico City day across every instance: the day is claimed by a unique row.
 */
import type { Database } from '../db/database.js';
import { errorMessage, isErrorCode } from '../../shared/errors.js';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import { mexicoCityDate, mexicoCityHour } from '../cards/schedule.js';
import { enqueueMerchantEvent } from '../webhooks/merchant-webhooks.js';
import { TupayLedger, type SyncProgress, type TupayReader } from './tupay-ledger.js';
import { buildReport, newReportId, type ReportSummary, type StatusSets } from './reconciliation.js';

export type ReconciliationSettings = {
  statuses: StatusSets;
  /** How Tupay's zone-less dates are read, e.g. "+00:00". */
  tupayUtcOffset: string;
  /** The daily report covers this many days back (the look-back window re-read from Tupay each day). */
  lookbackDays: number;
  /** The daily run starts at or after this hour, Mexico City time. */
  dailyHour: number;
  merchantWebhookUrl: string | null;
};

export type RunProgress = SyncProgress | { phase: 'report' };
export type Trigger = ReportSummary['trigger'];

const HOUR_MS = 3_600_000;
/** A daily run still 'running' this long after its last sign of life died with its instance: it is taken over. */
const STALE_RUN_MS = 2 * HOUR_MS;
/** A failed daily run is tried again after this long. */
const RETRY_FAILED_MS = HOUR_MS;
export const MAX_PERIOD_DAYS = 366;

type ReportRow = {
  id: string; trigger: Trigger; period_from: Date; period_to: Date; status: ReportSummary['status'];
  previous_report_id: string | null; tupay: ReportSummary['tupay'] | null; summary: Partial<ReportSummary> | null;
  error: string | null; created_at: Date; completed_at: Date | null;
};

/** A calendar day in Mexico City (UTC−6 all year) as the instants it spans. */
export function mexicoCityDay(day: string): { start: Date; end: Date } {
  return { start: new Date(`${day}T00:00:00.000-06:00`), end: new Date(`${day}T23:59:59.999-06:00`) };
}

/** Throws VALIDATION_FAILED unless from ≤ to and the period is at most MAX_PERIOD_DAYS long. */
export function checkPeriod(from: Date, to: Date): void {
  if (!(from.getTime() <= to.getTime())) throw new AppError('VALIDATION_FAILED', { fields: { from: 'AFTER_TO' } });
  if (to.getTime() - from.getTime() > MAX_PERIOD_DAYS * 86_400_000) {
    throw new AppError('VALIDATION_FAILED', { fields: { to: 'PERIOD_TOO_LONG' } });
  }
}

export class ReconciliationService {
  readonly #ledger: TupayLedger;

  constructor(
    private readonly db: Database,
    /** A fresh Tupay reader per run (its session ends with the run), or null when Tupay is not configured. */
    private readonly tupay: (() => TupayReader) | null,
    private readonly settings: ReconciliationSettings,
    private readonly logger: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.#ledger = new TupayLedger(db, { utcOffset: settings.tupayUtcOffset, logger });
  }

  /** Runs a reconciliation of [from, to] and returns its summary. Throws (after recording the failure) on error. */
  async run(
    request: { from: Date; to: Date; trigger: Exclude<Trigger, 'daily'>; sync?: boolean },
    onProgress?: (progress: RunProgress) => void,
  ): Promise<ReportSummary> {
    checkPeriod(request.from, request.to);
    const id = newReportId();
    await this.db.query(
      `INSERT INTO reconciliation_reports (id, trigger, period_from, period_to, status) VALUES ($1, $2, $3, $4, 'running')`,
      [id, request.trigger, request.from, request.to],
    );
    return this.#execute(id, request.from, request.to, request.sync ?? true, onProgress);
  }

  /**
   * The daily job: once the day's hour has come, claims today's run (one instance wins) and reconciles the look-back
   * window up to now. Returns null when there is nothing to do.
   */
  async runDaily(at: Date = this.now()): Promise<ReportSummary | null> {
    if (mexicoCityHour(at) < this.settings.dailyHour) return null;
    const day = mexicoCityDate(at);
    const from = mexicoCityDay(mexicoCityDate(new Date(at.getTime() - this.settings.lookbackDays * 86_400_000))).start;
    const { rows } = await this.db.query<{ id: string }>(
      `INSERT INTO reconciliation_reports (id, trigger, daily_for, period_from, period_to, status)
       VALUES ($1, 'daily', $2, $3, $4, 'running')
       ON CONFLICT (daily_for) DO UPDATE SET status = 'running', period_from = EXCLUDED.period_from,
         period_to = EXCLUDED.period_to, error = NULL, updated_at = now()
       WHERE (reconciliation_reports.status = 'failed' AND reconciliation_reports.updated_at < now() - make_interval(secs => $5))
          OR (reconciliation_reports.status = 'running' AND reconciliation_reports.updated_at < now() - make_interval(secs => $6))
       RETURNING id`,
      [newReportId(), day, from, at, RETRY_FAILED_MS / 1000, STALE_RUN_MS / 1000],
    );
    if (!rows[0]) return null;
    return this.#execute(rows[0].id, from, at, true);
  }

  async #execute(
    id: string, from: Date, to: Date, sync: boolean, onProgress?: (progress: RunProgress) => void,
  ): Promise<ReportSummary> {
    const log = this.logger.child({ reconciliation: id });
    const started = performance.now();
    try {
      let tupay: ReportSummary['tupay'];
      if (!this.tupay) tupay = { synced: false, reason: 'not_configured' };
      else if (!sync) tupay = { synced: false, reason: 'not_requested' };
      else {
        let last = 0;
        const counts = await this.#ledger.sync(this.tupay(), { from, to }, (progress) => {
          onProgress?.(progress);
          // A sign of life, so that a long run is not taken for a dead one (at most once a minute).
          if (Date.now() - last > 60_000) {
            last = Date.now();
            void this.db.query('UPDATE reconciliation_reports SET updated_at = now() WHERE id = $1', [id]).catch(() => {});
          }
        });
        tupay = { synced: true, ...counts };
      }
      onProgress?.({ phase: 'report' });
      const summary = await this.db.transaction(async (tx) => {
        const created = await tx.query<{ created_at: Date }>('SELECT created_at FROM reconciliation_reports WHERE id = $1', [id]);
        const previous = await tx.query<{ id: string; created_at: Date }>(
          `SELECT id, created_at FROM reconciliation_reports WHERE status = 'completed' AND id <> $1 AND created_at <= $2
           ORDER BY created_at DESC, completed_at DESC LIMIT 1`,
          [id, created.rows[0]!.created_at],
        );
        const prev = previous.rows[0] ? { id: previous.rows[0].id, createdAt: previous.rows[0].created_at } : null;
        const figures = await buildReport(tx, { id, from, to, previous: prev }, this.settings.statuses);
        const { rows } = await tx.query<ReportRow>(
          `UPDATE reconciliation_reports SET status = 'completed', previous_report_id = $2, tupay = $3::jsonb, summary = $4::jsonb,
             completed_at = now(), updated_at = now() WHERE id = $1 RETURNING *`,
          [id, prev?.id ?? null, JSON.stringify(tupay), JSON.stringify(figures)],
        );
        const summary = toSummary(rows[0]!);
        const data = {
          reportId: id, period: summary.period, orders: summary.orders, counts: summary.counts,
          discrepancies: summary.discrepancies, totals: summary.totals,
        };
        const at = this.now();
        await enqueueMerchantEvent(tx, this.settings.merchantWebhookUrl, 'reconciliation.completed', data, at);
        if (summary.discrepancies > 0) {
          await enqueueMerchantEvent(tx, this.settings.merchantWebhookUrl, 'reconciliation.discrepancy', data, at);
        }
        return summary;
      });
      log.info('reconciliation completed', {
        ms: Math.round(performance.now() - started), discrepancies: summary.discrepancies, counts: summary.counts,
      });
      return summary;
    } catch (error) {
      const code = error instanceof AppError ? error.code : 'INTERNAL';
      log.error('reconciliation failed', { error, code });
      await this.db.query(
        `UPDATE reconciliation_reports SET status = 'failed', error = $2, updated_at = now() WHERE id = $1`,
        [id, code],
      ).catch(() => {});
      throw error;
    }
  }

  async find(id: string): Promise<ReportSummary | null> {
    const { rows } = await this.db.query<ReportRow>('SELECT * FROM reconciliation_reports WHERE id = $1', [id]);
    return rows[0] ? toSummary(rows[0]) : null;
  }

  async list(limit: number): Promise<ReportSummary[]> {
    const { rows } = await this.db.query<ReportRow>('SELECT * FROM reconciliation_reports ORDER BY created_at DESC LIMIT $1', [limit]);
    return rows.map(toSummary);
  }
}

function toSummary(row: ReportRow): ReportSummary {
  const figures = row.summary ?? {};
  return {
    id: row.id,
    status: row.status,
    trigger: row.trigger,
    period: { from: new Date(row.period_from).toISOString(), to: new Date(row.period_to).toISOString() },
    createdAt: new Date(row.created_at).toISOString(),
    completedAt: row.completed_at ? new Date(row.completed_at).toISOString() : null,
    previousReportId: row.previous_report_id,
    tupay: row.tupay ?? { synced: false, reason: 'not_requested' },
    orders: figures.orders ?? { total: 0, paid: 0, unpaid: 0 },
    counts: figures.counts ?? ({} as ReportSummary['counts']),
    discrepancies: figures.discrepancies ?? 0,
    totals: figures.totals ?? [],
    ...(row.error ? { error: { code: row.error, message: isErrorCode(row.error) ? errorMessage(row.error, 'en') : row.error } } : {}),
  };
}
