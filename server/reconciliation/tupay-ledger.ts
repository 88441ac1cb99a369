/**
 * Our copy of Tupay's deposits and cash-outs. Records are upserted by id and lastChangeDate, so reading a period
 * again changes nothing, and every version seen (first sight, then each change: EXPIRED → COMPLETED,
 * COMPLETED → REJECTED, …) is kept in tupay_record_versions. Records are written in batches while they are read,
 * so memory does not grow with the number of records.
 */
import type { Database, Queryable } from '../db/database.js';
import type { Logger } from '../log.js';
import type { TupayCashout, TupayDeposit, TupayReadProgress } from '../providers/tupay/tupay-client.js';

export type TupayReader = {
  deposits(filter: { from: Date; to: Date }, options?: { onPage?: (progress: TupayReadProgress) => void }): AsyncIterable<TupayDeposit>;
  cashouts(filter: { from: Date; to: Date }, options?: { onPage?: (progress: TupayReadProgress) => void }): AsyncIterable<TupayCashout>;
  logout(): Promise<void>;
};

export type SyncCounts = { read: number; inserted: number; updated: number; unchanged: number; rejected: number };
export type SyncProgress = { phase: 'deposits' | 'cashouts' } & TupayReadProgress;

/** A record as the ledger stores it. */
type LedgerRecord = {
  kind: 'deposit' | 'cashout';
  id: string;
  externalId: string | null;
  createdAt: Date;
  lastChangeAt: Date | null;
  lastChangeDate: string;
  status: string;
  currency: string | null;
  amount: number;
  localCurrency: string | null;
  localAmount: number | null;
  fee: number | null;
  country: string | null;
  paymentMethod: string | null;
  reason: string | null;
};

const BATCH = 500;

/**
 * Tupay's dates: "YYYY-MM-DD HH:mm:ss" without a zone, read in `utcOffset` (e.g. "+00:00", "-05:00"); a date that
 * carries its own zone (ISO 8601) is read as it is. NaN when it is not a date.
 */
export function parseTupayDate(value: string, utcOffset: string): number {
  const bare = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?)$/.exec(value.trim());
  return bare ? Date.parse(`${bare[1]}T${bare[2]}${utcOffset}`) : Date.parse(value);
}

export class TupayLedger {
  constructor(
    private readonly db: Database,
    private readonly options: { utcOffset: string; logger?: Logger },
  ) {}

  /**
   * Reads every deposit and cash-out created in [from, to] and upserts them. Logs out of Tupay at the end, whatever
   * happened. Returns what changed.
   */
  async sync(
    reader: TupayReader,
    period: { from: Date; to: Date },
    onProgress?: (progress: SyncProgress) => void,
  ): Promise<{ deposits: SyncCounts; cashouts: SyncCounts }> {
    try {
      const deposits = await this.#store('deposit', reader.deposits(period, {
        onPage: (progress) => onProgress?.({ phase: 'deposits', ...progress }),
      }));
      const cashouts = await this.#store('cashout', reader.cashouts(period, {
        onPage: (progress) => onProgress?.({ phase: 'cashouts', ...progress }),
      }));
      return { deposits, cashouts };
    } finally {
      await reader.logout().catch((error: unknown) => this.options.logger?.warn('tupay logout failed', { error }));
    }
  }

  async #store(kind: 'deposit' | 'cashout', records: AsyncIterable<TupayDeposit | TupayCashout>): Promise<SyncCounts> {
    const counts: SyncCounts = { read: 0, inserted: 0, updated: 0, unchanged: 0, rejected: 0 };
    let batch: LedgerRecord[] = [];
    try {
      for await (const record of records) {
        counts.read += 1;
        const row = this.#toRecord(kind, record);
        if (!row) {
          counts.rejected += 1;
          continue;
        }
        batch.push(row);
        if (batch.length >= BATCH) {
          const full = batch;
          batch = [];
          await this.#upsert(kind, full, counts);
        }
      }
    } catch (error) {
      // Tupay failed midway: keep what was read (upserts are harmless to repeat), then fail.
      if (batch.length) {
        await this.#upsert(kind, batch, counts).catch((storing: unknown) =>
          this.options.logger?.error('tupay records read before a failure could not be stored', { error: storing }));
      }
      throw error;
    }
    if (batch.length) await this.#upsert(kind, batch, counts);
    return counts;
  }

  #toRecord(kind: 'deposit' | 'cashout', record: TupayDeposit | TupayCashout): LedgerRecord | null {
    const id = 'idDeposit' in record ? record.idDeposit : record.idCashout;
    const created = parseTupayDate(record.creationDate, this.options.utcOffset);
    const changed = record.lastChangeDate ? parseTupayDate(record.lastChangeDate, this.options.utcOffset) : null;
    if (Number.isNaN(created) || (changed !== null && Number.isNaN(changed))) {
      this.options.logger?.warn('tupay record with an unreadable date left out', { kind, id });
      return null;
    }
    const deposit = 'idDeposit' in record ? record : null;
    return {
      kind,
      id,
      externalId: record.externalId,
      createdAt: new Date(created),
      lastChangeAt: changed === null ? null : new Date(changed),
      lastChangeDate: record.lastChangeDate ?? '',
      status: record.status,
      currency: record.currency,
      amount: record.amount,
      localCurrency: deposit?.localCurrency ?? null,
      localAmount: deposit?.localAmount ?? null,
      fee: record.fee,
      country: record.country,
      paymentMethod: deposit?.paymentMethodCode ?? null,
      reason: 'reason' in record ? record.reason : null,
    };
  }

  async #upsert(kind: 'deposit' | 'cashout', batch: LedgerRecord[], counts: SyncCounts): Promise<void> {
    // The same id twice in one read (a record that moved between pages while they were read): keep the last.
    const unique = [...new Map(batch.map((record) => [record.id, record])).values()];
    await this.db.transaction(async (tx) => {
      const { rows } = await tx.query<{ id: string; status: string; version: string; last_change_at: Date | null }>(
        `SELECT id, status, last_change_at, ${VERSION_SQL} AS version FROM tupay_records WHERE kind = $1 AND id = ANY($2::text[])`,
        [kind, unique.map((record) => record.id)],
      );
      const stored = new Map(rows.map((row) => [row.id, row]));
      const changed: Array<{ record: LedgerRecord; previousStatus: string | null }> = [];
      for (const record of unique) {
        const before = stored.get(record.id);
        if (!before) {
          counts.inserted += 1;
          changed.push({ record, previousStatus: null });
        } else if (before.version === versionKey(record) || isOlder(record, before.last_change_at)) {
          // Unchanged, or a read older than what we already hold (it must not undo a later change).
          counts.unchanged += 1;
        } else {
          counts.updated += 1;
          changed.push({ record, previousStatus: before.status });
        }
      }
      counts.unchanged += batch.length - unique.length;
      if (changed.length) await writeVersions(tx, changed);
    });
  }
}

/** What makes two reads of a record the same version (in SQL over tupay_records, and in JS over a record). */
const VERSION_SQL = `concat_ws('|', status, amount_centavos::text, coalesce(currency, ''), coalesce(fee_centavos::text, ''), coalesce(external_id, ''), last_change_date)`;
function versionKey(record: LedgerRecord): string {
  return [record.status, String(record.amount), record.currency ?? '', record.fee === null ? '' : String(record.fee), record.externalId ?? '', record.lastChangeDate].join('|');
}

function isOlder(record: LedgerRecord, storedChange: Date | null): boolean {
  return storedChange !== null && record.lastChangeAt !== null && record.lastChangeAt.getTime() < new Date(storedChange).getTime();
}

const RECORD_COLUMNS = [
  'kind', 'id', 'external_id', 'created_at', 'last_change_at', 'last_change_date', 'status', 'currency', 'amount_centavos',
  'local_currency', 'local_amount_centavos', 'fee_centavos', 'country', 'payment_method', 'reason',
] as const;

async function writeVersions(tx: Queryable, changed: Array<{ record: LedgerRecord; previousStatus: string | null }>): Promise<void> {
  const values: unknown[] = [];
  const tuples = changed.map(({ record }) => {
    const row = [
      record.kind, record.id, record.externalId, record.createdAt, record.lastChangeAt, record.lastChangeDate, record.status,
      record.currency, record.amount, record.localCurrency, record.localAmount, record.fee, record.country, record.paymentMethod,
      record.reason,
    ];
    const placeholders = row.map((value) => `$${values.push(value)}`);
    return `(${placeholders.join(', ')})`;
  });
  const updates = RECORD_COLUMNS.filter((column) => column !== 'kind' && column !== 'id')
    .map((column) => `${column} = EXCLUDED.${column}`)
    .join(', ');
  await tx.query(
    `INSERT INTO tupay_records (${RECORD_COLUMNS.join(', ')}) VALUES ${tuples.join(', ')}
     ON CONFLICT (kind, id) DO UPDATE SET ${updates}, updated_at = now()`,
    values,
  );

  const versionValues: unknown[] = [];
  const versionTuples = changed.map(({ record, previousStatus }) => {
    const row = [record.kind, record.id, versionKey(record), record.status, previousStatus, record.amount, record.currency, record.lastChangeAt];
    return `(${row.map((value) => `$${versionValues.push(value)}`).join(', ')})`;
  });
  await tx.query(
    `INSERT INTO tupay_record_versions (kind, record_id, version_key, status, previous_status, amount_centavos, currency, last_change_at)
     VALUES ${versionTuples.join(', ')} ON CONFLICT (kind, record_id, version_key) DO NOTHING`,
    versionValues,
  );
}
