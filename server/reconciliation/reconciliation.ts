/**
 * Reconciliation: for a period, every payment line of every rail we know (Tupay deposits, Khipu payments, card
 * charges; Tupay cash-outs alongside) set against our orders, stored as a report of categorised lines.
 *
 * - A Tupay deposit belongs to the order whose reference is its `externalId`; Khipu payments and card charges are
 *   ours by construction.
 * - A paid line is a `mismatch` when its currency is not the order's or its amount is neither one instalment nor
 *   the whole price; a `duplicate` when the same instalment is paid twice (lines that carry its number: Khipu, card)
 *   or the order has more paid lines than instalments (counted across rails, oldest first); otherwise `matched`.
 *   A Khipu payment held for review (payment_reviews: paid when ours could no longer take it) is a `duplicate` line
 *   of its own, with its review status as provider status and its amount as refunded once refunded.
 * - A line of no order is an `orphan`; lines not (yet) paid are `pending`, `failed`, or `unknown` (a status we do not
 *   recognise: a person must look). Orders registered in the period with no paid line are `unpaid`.
 * - A status change is a line whose status differs from the one in the previous report, or, for Tupay, from the
 *   status before the first change our ledger saw since that report. A `reversal` is a change away from paid.
 * - Discrepancies: mismatches, duplicates, paid orphans, unknown statuses and reversals.
 *
 * Everything is computed in SQL over the stored ledger, so memory does not depend on the number of records; the
 * lines are read back page by page (JSON) or streamed (CSV).
 */
import { randomBytes } from 'node:crypto';
import type { Queryable } from '../db/database.js';
import { centavosToDecimal } from '../../shared/money.js';
import type { SyncCounts } from './tupay-ledger.js';

export type StatusSets = {
  depositPaid: string[];
  depositPending: string[];
  depositFailed: string[];
  cashoutDone: string[];
  cashoutPending: string[];
  cashoutFailed: string[];
};

/** From Tupay's document and NOTES.md; TUPAY_PAID_STATUSES and TUPAY_CASHOUT_DONE_STATUSES replace the first lists. */
export const DEFAULT_STATUS_SETS: StatusSets = {
  depositPaid: ['COMPLETED', 'APPROVED', 'EARLY_RELEASED'],
  depositPending: ['PENDING', 'FOR_REVIEW', 'ON_HOLD'],
  depositFailed: ['EXPIRED', 'CANCELLED', 'DECLINED', 'REJECTED'],
  cashoutDone: ['COMPLETED', 'DELIVERED'],
  cashoutPending: ['PENDING', 'ON_HOLD'],
  cashoutFailed: ['REJECTED', 'CANCELLED', 'DECLINED'],
};

export const LINE_CATEGORIES = [
  'mismatch', 'duplicate', 'orphan', 'unknown', 'unpaid', 'matched', 'pending', 'failed', 'cashout',
] as const;
export type LineCategory = (typeof LINE_CATEGORIES)[number];

export type RailTotal = {
  rail: 'tupay' | 'khipu' | 'card' | 'tupay-cashout';
  currency: string;
  paid: { count: number; centavos: number };
  pending: { count: number; centavos: number };
  failed: { count: number; centavos: number };
  fees: number;
};

export type ReportSummary = {
  id: string;
  status: 'running' | 'completed' | 'failed';
  trigger: 'cli' | 'admin' | 'daily';
  period: { from: string; to: string };
  createdAt: string;
  completedAt: string | null;
  previousReportId: string | null;
  tupay:
    | { synced: true; deposits: SyncCounts; cashouts: SyncCounts }
    | { synced: false; reason: 'not_configured' | 'not_requested' };
  orders: { total: number; paid: number; unpaid: number };
  counts: Record<LineCategory, number> & { statusChanges: number; reversals: number; paidOrphans: number };
  discrepancies: number;
  totals: RailTotal[];
  error?: { code: string; message: string };
};

export type ReportLine = {
  seq: number;
  category: LineCategory;
  rail: string;
  kind: 'deposit' | 'cashout' | 'payment' | 'charge' | 'order';
  id: string;
  orderReference: string | null;
  providerStatus: string | null;
  state: 'paid' | 'pending' | 'failed' | 'unknown' | 'unpaid';
  previousStatus: string | null;
  reversal: boolean;
  currency: string | null;
  amount: number | null;
  expected: number | null;
  fee: number | null;
  refunded: number | null;
  instalmentNumber: number | null;
  occurredAt: string | null;
  changedAt: string | null;
};

export function newReportId(): string {
  return `rec_${randomBytes(12).toString('base64url')}`;
}

/** The SQL CASE giving a line's state from its status column, for one rail. */
const STATE = {
  deposit: (column: string) =>
    `CASE WHEN ${column} = ANY($6::text[]) THEN 'paid' WHEN ${column} = ANY($7::text[]) THEN 'pending' WHEN ${column} = ANY($8::text[]) THEN 'failed' ELSE 'unknown' END`,
  cashout: (column: string) =>
    `CASE WHEN ${column} = ANY($9::text[]) THEN 'paid' WHEN ${column} = ANY($10::text[]) THEN 'pending' WHEN ${column} = ANY($11::text[]) THEN 'failed' ELSE 'unknown' END`,
  khipu: (column: string) =>
    `CASE WHEN ${column} = 'paid' THEN 'paid' WHEN ${column} IN ('new', 'creating', 'pending', 'verifying') THEN 'pending' WHEN ${column} IN ('expired', 'cancelled', 'failed') THEN 'failed' ELSE 'unknown' END`,
  card: (column: string) =>
    `CASE WHEN ${column} = 'approved' THEN 'paid' WHEN ${column} = 'sending' THEN 'pending' WHEN ${column} = 'rejected' THEN 'failed' ELSE 'unknown' END`,
};

const CATEGORY_ORDER = `array_position(ARRAY[${LINE_CATEGORIES.map((category) => `'${category}'`).join(', ')}]::text[], category)`;

const BUILD_LINES = `
INSERT INTO reconciliation_lines (report_id, seq, category, rail, kind, line_id, order_reference, provider_status, state,
  previous_status, reversal, currency, amount_centavos, expected_centavos, fee_centavos, refunded_centavos, instalment_number,
  occurred_at, changed_at)
WITH raw AS (
  SELECT 'tupay'::text AS rail, 'deposit'::text AS kind, t.id AS line_id, t.external_id AS ref, t.status AS provider_status,
         ${STATE.deposit('t.status')} AS state, t.currency, t.amount_centavos, t.fee_centavos,
         NULL::bigint AS refunded_centavos, NULL::integer AS instalment_number, t.created_at AS occurred_at,
         t.last_change_at AS changed_at, false AS review
  FROM tupay_records t WHERE t.kind = 'deposit' AND t.created_at <= $3
  UNION ALL
  SELECT 'tupay', 'cashout', t.id, t.external_id, t.status, ${STATE.cashout('t.status')}, t.currency, t.amount_centavos,
         t.fee_centavos, NULL, NULL, t.created_at, t.last_change_at, false
  FROM tupay_records t WHERE t.kind = 'cashout' AND t.created_at BETWEEN $2 AND $3
  UNION ALL
  SELECT 'khipu', 'payment', p.id, o.reference, p.status, ${STATE.khipu('p.status')}, p.currency, p.amount_centavos, NULL,
         p.refunded_centavos, p.instalment_number, p.created_at, p.updated_at, false
  FROM payments p JOIN orders o ON o.id = p.order_id WHERE p.provider = 'khipu' AND p.created_at <= $3
  UNION ALL
  -- A Khipu payment of ours paid when its payment could no longer take it (paid already, or cancelled): money received
  -- that is no instalment, so always a duplicate, refunded or not; it never counts towards the order.
  SELECT v.provider, 'payment', v.provider_reference, o.reference, v.status, 'paid', v.currency, v.amount_centavos, NULL,
         CASE WHEN v.status = 'refunded' THEN v.amount_centavos ELSE 0 END, p.instalment_number, COALESCE(v.paid_at, v.created_at),
         v.updated_at, true
  FROM payment_reviews v JOIN payments p ON p.id = v.payment_id JOIN orders o ON o.id = p.order_id
  WHERE COALESCE(v.paid_at, v.created_at) <= $3
  UNION ALL
  SELECT 'card', 'charge', a.merchant_order_id, o.reference, a.status, ${STATE.card('a.status')}, i.currency, i.amount_centavos,
         NULL, NULL, i.number, a.created_at, a.updated_at, false
  FROM charge_attempts a JOIN instalments i ON i.id = a.instalment_id JOIN subscriptions s ON s.id = i.subscription_id
       JOIN orders o ON o.id = s.order_id
  WHERE a.created_at <= $3
),
linked AS (
  SELECT r.*, o.id AS order_id, o.currency AS order_currency, o.instalment_centavos, o.price_centavos, o.instalments
  FROM raw r LEFT JOIN orders o ON o.reference = r.ref AND r.kind <> 'cashout'
),
paid_ranks AS (
  SELECT rail, kind, line_id,
         ROW_NUMBER() OVER (PARTITION BY order_id ORDER BY occurred_at, rail, line_id) AS paid_rank,
         CASE WHEN instalment_number IS NOT NULL
              THEN ROW_NUMBER() OVER (PARTITION BY order_id, instalment_number ORDER BY occurred_at, rail, line_id) END AS same_rank
  FROM linked WHERE state = 'paid' AND order_id IS NOT NULL AND NOT review
),
hist AS (
  SELECT DISTINCT ON (kind, record_id) kind, record_id, previous_status
  FROM tupay_record_versions
  WHERE previous_status IS NOT NULL AND observed_at > COALESCE($5::timestamptz, '-infinity'::timestamptz)
  ORDER BY kind, record_id, observed_at, id
),
lines AS (
  SELECT l.*, COALESCE(p.provider_status, h.previous_status) AS before,
    CASE
      WHEN l.kind = 'cashout' THEN 'cashout'
      WHEN l.order_id IS NULL THEN 'orphan'
      WHEN l.state = 'paid' AND (l.currency IS DISTINCT FROM l.order_currency
                                 OR l.amount_centavos NOT IN (l.instalment_centavos, l.price_centavos)) THEN 'mismatch'
      WHEN l.state = 'paid' AND (l.review OR r.same_rank > 1 OR r.paid_rank > l.instalments) THEN 'duplicate'
      WHEN l.state = 'paid' THEN 'matched'
      ELSE l.state
    END AS category
  FROM linked l
  LEFT JOIN paid_ranks r ON r.rail = l.rail AND r.kind = l.kind AND r.line_id = l.line_id
  LEFT JOIN reconciliation_lines p ON p.report_id = $4 AND p.rail = l.rail AND p.kind = l.kind AND p.line_id = l.line_id
  LEFT JOIN hist h ON l.rail = 'tupay' AND h.kind = l.kind AND h.record_id = l.line_id
  WHERE l.occurred_at BETWEEN $2 AND $3
),
unpaid AS (
  SELECT o.payment_method AS rail, 'order'::text AS kind, o.reference AS line_id, o.reference AS ref, o.status AS provider_status,
         'unpaid'::text AS state, o.currency, NULL::bigint AS amount_centavos, o.instalment_centavos AS expected_centavos,
         o.created_at AS occurred_at
  FROM orders o
  WHERE o.status = 'registered' AND o.created_at BETWEEN $2 AND $3
    AND NOT EXISTS (SELECT 1 FROM linked l WHERE l.order_id = o.id AND l.state = 'paid' AND NOT l.review)
),
everything AS (
  SELECT category, rail, kind, line_id, ref, provider_status, state,
         CASE WHEN before IS DISTINCT FROM provider_status THEN before END AS previous_status,
         (before IS DISTINCT FROM provider_status AND state <> 'paid' AND CASE
            WHEN kind = 'deposit' THEN before = ANY($6::text[])
            WHEN kind = 'cashout' THEN before = ANY($9::text[])
            WHEN rail = 'khipu' THEN before = 'paid'
            ELSE before = 'approved' END) IS TRUE AS reversal,
         currency, amount_centavos, instalment_centavos AS expected_centavos, fee_centavos, refunded_centavos,
         instalment_number, occurred_at, changed_at
  FROM lines
  UNION ALL
  SELECT 'unpaid', rail, kind, line_id, ref, provider_status, state, NULL, false, currency, amount_centavos,
         expected_centavos, NULL, NULL, NULL, occurred_at, NULL
  FROM unpaid
)
SELECT $1, ROW_NUMBER() OVER (ORDER BY ${CATEGORY_ORDER}, occurred_at, rail, line_id), category, rail, kind, line_id, ref,
       provider_status, state, previous_status, reversal, currency, amount_centavos, expected_centavos, fee_centavos,
       refunded_centavos, instalment_number, occurred_at, changed_at
FROM everything`;

/**
 * Writes the report's lines (inside the caller's transaction) and returns the summary's figures.
 * `previous` is the last completed report before this one, if any.
 */
export async function buildReport(
  tx: Queryable,
  report: { id: string; from: Date; to: Date; previous: { id: string; createdAt: Date } | null },
  statuses: StatusSets,
): Promise<Pick<ReportSummary, 'orders' | 'counts' | 'discrepancies' | 'totals'>> {
  await tx.query(BUILD_LINES, [
    report.id, report.from, report.to, report.previous?.id ?? null, report.previous?.createdAt ?? null,
    statuses.depositPaid, statuses.depositPending, statuses.depositFailed,
    statuses.cashoutDone, statuses.cashoutPending, statuses.cashoutFailed,
  ]);

  const categories = await tx.query<{ category: LineCategory; n: number; changes: number; reversals: number; paid_orphans: number }>(
    `SELECT category, count(*)::int AS n, count(previous_status)::int AS changes, count(*) FILTER (WHERE reversal)::int AS reversals,
            count(*) FILTER (WHERE category = 'orphan' AND state = 'paid')::int AS paid_orphans
     FROM reconciliation_lines WHERE report_id = $1 GROUP BY category`,
    [report.id],
  );
  const counts = Object.fromEntries(LINE_CATEGORIES.map((category) => [category, 0])) as ReportSummary['counts'];
  counts.statusChanges = 0;
  counts.reversals = 0;
  counts.paidOrphans = 0;
  for (const row of categories.rows) {
    counts[row.category] = row.n;
    counts.statusChanges += row.changes;
    counts.reversals += row.reversals;
    counts.paidOrphans += row.paid_orphans;
  }

  const totals = await tx.query<{ rail: RailTotal['rail']; currency: string | null; state: string; n: number; centavos: number; fees: number }>(
    `SELECT CASE WHEN kind = 'cashout' THEN 'tupay-cashout' ELSE rail END AS rail, COALESCE(currency, '') AS currency, state,
            count(*)::int AS n, COALESCE(sum(amount_centavos), 0)::bigint AS centavos, COALESCE(sum(fee_centavos), 0)::bigint AS fees
     FROM reconciliation_lines WHERE report_id = $1 AND kind <> 'order'
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
    [report.id],
  );
  const byKey = new Map<string, RailTotal>();
  for (const row of totals.rows) {
    const key = `${row.rail}|${row.currency}`;
    let total = byKey.get(key);
    if (!total) {
      total = {
        rail: row.rail, currency: row.currency ?? '', fees: 0,
        paid: { count: 0, centavos: 0 }, pending: { count: 0, centavos: 0 }, failed: { count: 0, centavos: 0 },
      };
      byKey.set(key, total);
    }
    // Unknown statuses are counted with pending: money not (yet) ours.
    const bucket = row.state === 'paid' ? total.paid : row.state === 'failed' ? total.failed : total.pending;
    bucket.count += row.n;
    bucket.centavos += Number(row.centavos);
    if (row.state === 'paid') total.fees += Number(row.fees);
  }

  const orders = await tx.query<{ total: number }>(
    `SELECT count(*)::int AS total FROM orders WHERE status = 'registered' AND created_at BETWEEN $1 AND $2`,
    [report.from, report.to],
  );
  const total = orders.rows[0]?.total ?? 0;
  return {
    orders: { total, paid: total - counts.unpaid, unpaid: counts.unpaid },
    counts,
    discrepancies: counts.mismatch + counts.duplicate + counts.paidOrphans + counts.unknown + counts.reversals,
    totals: [...byKey.values()],
  };
}

type LineRow = {
  seq: number; category: LineCategory; rail: string; kind: ReportLine['kind']; line_id: string; order_reference: string | null;
  provider_status: string | null; state: ReportLine['state']; previous_status: string | null; reversal: boolean;
  currency: string | null; amount_centavos: number | null; expected_centavos: number | null; fee_centavos: number | null;
  refunded_centavos: number | null; instalment_number: number | null; occurred_at: Date | null; changed_at: Date | null;
};

function toLine(row: LineRow): ReportLine {
  const number = (value: number | null) => (value === null ? null : Number(value));
  const iso = (value: Date | null) => (value === null ? null : new Date(value).toISOString());
  return {
    seq: row.seq, category: row.category, rail: row.rail, kind: row.kind, id: row.line_id, orderReference: row.order_reference,
    providerStatus: row.provider_status, state: row.state, previousStatus: row.previous_status, reversal: row.reversal,
    currency: row.currency, amount: number(row.amount_centavos), expected: number(row.expected_centavos),
    fee: number(row.fee_centavos), refunded: number(row.refunded_centavos), instalmentNumber: row.instalment_number,
    occurredAt: iso(row.occurred_at), changedAt: iso(row.changed_at),
  };
}

/** One page of a report's lines, in report order, after `after` (a seq). `status_change` selects changed lines. */
export async function readLines(
  db: Queryable,
  reportId: string,
  options: { category?: LineCategory | 'status_change' | 'discrepancy'; after?: number; limit: number },
): Promise<ReportLine[]> {
  const filter =
    options.category === 'status_change'
      ? 'AND previous_status IS NOT NULL'
      : options.category === 'discrepancy'
        ? `AND (category IN ('mismatch', 'duplicate', 'unknown') OR (category = 'orphan' AND state = 'paid') OR reversal)`
        : options.category
          ? 'AND category = $4'
          : '';
  const params: unknown[] = [reportId, options.after ?? 0, options.limit];
  if (options.category && options.category !== 'status_change' && options.category !== 'discrepancy') params.push(options.category);
  const { rows } = await db.query<LineRow>(
    `SELECT * FROM reconciliation_lines WHERE report_id = $1 AND seq > $2 ${filter} ORDER BY seq LIMIT $3`,
    params,
  );
  return rows.map(toLine);
}

const CSV_COLUMNS = [
  'seq', 'category', 'rail', 'kind', 'id', 'order_reference', 'provider_status', 'previous_status', 'reversal', 'state',
  'currency', 'amount', 'expected', 'fee', 'refunded', 'instalment', 'occurred_at', 'changed_at',
] as const;

function csvField(value: string | number | boolean | null): string {
  if (value === null) return '';
  const text = String(value);
  // RFC 4180 quoting; a leading =, +, - or @ is prefixed so a spreadsheet does not run it as a formula.
  const safe = /^[=+\-@\t\r]/.test(text) && typeof value === 'string' ? `'${text}` : text;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

function csvLine(line: ReportLine): string {
  const money = (value: number | null) => (value === null ? null : centavosToDecimal(value));
  return `${[
    line.seq, line.category, line.rail, line.kind, line.id, line.orderReference, line.providerStatus, line.previousStatus,
    line.reversal, line.state, line.currency, money(line.amount), money(line.expected), money(line.fee), money(line.refunded),
    line.instalmentNumber, line.occurredAt, line.changedAt,
  ].map(csvField).join(',')}\r\n`;
}

/** The report as CSV (amounts in pesos with two decimals), produced page by page. */
export async function* reportCsv(db: Queryable, reportId: string, pageSize = 2_000): AsyncGenerator<string> {
  yield `${CSV_COLUMNS.join(',')}\r\n`;
  let after = 0;
  for (;;) {
    const lines = await readLines(db, reportId, { after, limit: pageSize });
    if (lines.length === 0) return;
    yield lines.map(csvLine).join('');
    after = lines[lines.length - 1]!.seq;
  }
}

