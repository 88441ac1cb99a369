import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openDatabase } from '../../server/db/database.js';
import { MIGRATIONS } from '../../server/db/migrations.js';
import * as store from '../../server/checkouts/checkout-store.js';
import { ENGINES, POSTGRES_URL, openTestDatabase, type TestDatabase } from '../support/databases.js';

const newCheckout = (id: string) => ({
  id, tokenHash: 'a'.repeat(64), curp: 'CAMC880526HMCBNR04', birthDate: '1988-05-26', sex: 'H' as const,
  expiresAt: new Date(Date.now() + 3_600_000),
});

describe.each(ENGINES)('data layer on %s', (engine) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await openTestDatabase(engine);
  });
  afterAll(async () => {
    await t?.drop();
  });

  it('when opened, then every migration is applied once and migrating again applies nothing', async () => {
    const { rows } = await t.db.query<{ id: string }>('SELECT id FROM schema_migrations ORDER BY id');
    expect(rows.map((r) => r.id)).toEqual(MIGRATIONS.map((m) => m.id));
    expect(await migrate(t.db)).toEqual([]);
  });

  it('when a transaction throws, then none of its writes remain', async () => {
    await expect(t.db.transaction(async (tx) => {
      await store.insertCheckouts(tx, [newCheckout('chk_rollback')]);
      throw new Error('boom');
    })).rejects.toThrow('boom');
    expect(await store.findCheckout(t.db, 'chk_rollback')).toBeNull();
  });

  it('when a checkout is stored, then JSON, dates and centavos come back with their types', async () => {
    await store.insertCheckouts(t.db, [newCheckout('chk_types')]);
    const updated = await store.updateOpenCheckout(t.db, 'chk_types', {
      contact: { email: 'a@b.mx', phone: '5512345678' }, planCount: 12,
    });
    expect(updated).toMatchObject({ contact: { email: 'a@b.mx', phone: '5512345678' }, planCount: 12, status: 'open' });
    expect(updated!.expiresAt).toBeInstanceOf(Date);
    const order = await store.upsertOrderForAttempt(t.db, {
      id: 'ord_types', reference: 'KC-TYPES00001', checkoutId: 'chk_types', curp: 'CAMC880526HMCBNR04', product: 'Funerario',
      kasuProduct: '30a49', paymentMethod: 'email', price: 9_000_000_000_01, instalments: 1, instalmentAmount: 9_000_000_000_01,
    });
    expect(order.price).toBe(9_000_000_000_01);
    expect(typeof order.price).toBe('number');
  });

  it('when checkouts are created together, then one statement stores them all and each comes back in its place', async () => {
    const created = await store.insertCheckouts(t.db, ['chk_many_1', 'chk_many_2', 'chk_many_3'].map(newCheckout));
    expect(created.map((c) => c.id)).toEqual(['chk_many_1', 'chk_many_2', 'chk_many_3']);
    expect(created[1]).toMatchObject({ status: 'open', curp: 'CAMC880526HMCBNR04', birthDate: '1988-05-26', sex: 'H', planCount: null });
  });

  it('when quotes are saved together, then each checkout gets its own, a plan is kept only if still offered for the same product, and a closed checkout gets none', async () => {
    const quote = (product: 'Funerario' | 'Retiro', counts: number[], price: number) => ({
      product, kasuProduct: 'x', currency: 'MXN' as const, price, annualRatePercent: 0,
      plans: counts.map((count) => ({ count, instalment: Math.round(price / count), total: price })), quotedAt: new Date().toISOString(),
    });
    for (const id of ['chk_q_keep', 'chk_q_drop', 'chk_q_other', 'chk_q_twice', 'chk_q_closed']) {
      await store.insertCheckouts(t.db, [newCheckout(id)]);
      await store.updateOpenCheckout(t.db, id, { product: 'Funerario', quote: quote('Funerario', [1, 3], 100_00), planCount: 3 });
    }
    await store.setCheckoutStatus(t.db, 'chk_q_closed', 'registered');
    const saved = await store.saveQuotes(t.db, [
      { id: 'chk_q_keep', quote: quote('Funerario', [1, 3, 6], 200_00) },
      { id: 'chk_q_drop', quote: quote('Funerario', [1, 6], 200_00) },
      { id: 'chk_q_other', quote: quote('Retiro', [1, 3], 300_00) },
      { id: 'chk_q_twice', quote: quote('Funerario', [1, 3], 400_00) },
      { id: 'chk_q_closed', quote: quote('Funerario', [1, 3], 500_00) },
      { id: 'chk_q_twice', quote: quote('Funerario', [1], 600_00) },
    ]);
    expect(saved.map((c) => c && [c.id, c.product, c.quote!.price, c.planCount])).toEqual([
      ['chk_q_keep', 'Funerario', 200_00, 3],
      ['chk_q_drop', 'Funerario', 200_00, null],
      ['chk_q_other', 'Retiro', 300_00, null],
      ['chk_q_twice', 'Funerario', 400_00, 3],
      null,
      ['chk_q_twice', 'Funerario', 600_00, null],
    ]);
    expect((await store.findCheckout(t.db, 'chk_q_twice'))!.quote!.price, 'the last one given stays').toBe(600_00);
    expect((await store.findCheckout(t.db, 'chk_q_closed'))!.quote!.price).toBe(100_00);
  });

  it('when ten submits claim one checkout at once, then exactly one claim wins', async () => {
    await store.insertCheckouts(t.db, [newCheckout('chk_claim')]);
    const claims = await Promise.all(
      Array.from({ length: 10 }, () => store.claimCheckoutForSubmit(t.db, 'chk_claim', 'email', 120)),
    );
    expect(claims.filter(Boolean)).toHaveLength(1);
    expect((await store.findCheckout(t.db, 'chk_claim'))!.status).toBe('registering');
  });

  it('when a claim is older than the stale limit, then it can be taken over; a fresh one cannot', async () => {
    await store.insertCheckouts(t.db, [newCheckout('chk_stale')]);
    expect(await store.claimCheckoutForSubmit(t.db, 'chk_stale', 'email', 120)).not.toBeNull();
    expect(await store.claimCheckoutForSubmit(t.db, 'chk_stale', 'email', 120)).toBeNull();
    await t.db.query("UPDATE checkouts SET submit_claimed_at = now() - interval '10 minutes' WHERE id = 'chk_stale'");
    expect(await store.claimCheckoutForSubmit(t.db, 'chk_stale', 'email', 120)).not.toBeNull();
  });

  it('when an Idempotency-Key is reserved twice, then the second sees the first with its request hash', async () => {
    await store.insertCheckouts(t.db, [newCheckout('chk_idem')]);
    expect(await store.reserveIdempotencyKey(t.db, 'chk_idem', 'key-1', 'hash-a')).toBeNull();
    expect(await store.reserveIdempotencyKey(t.db, 'chk_idem', 'key-1', 'hash-b')).toEqual({
      requestHash: 'hash-a', responseStatus: null, responseBody: null,
    });
    await store.saveIdempotentResponse(t.db, 'chk_idem', 'key-1', 200, { checkout: { id: 'chk_idem' } });
    expect(await store.reserveIdempotencyKey(t.db, 'chk_idem', 'key-1', 'hash-a')).toEqual({
      requestHash: 'hash-a', responseStatus: 200, responseBody: { checkout: { id: 'chk_idem' } },
    });
  });
});

describe('data layer persistence', () => {
  it('when the embedded database is reopened from its directory, then the data is still there', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kasu-pglite-'));
    try {
      const first = await openDatabase({ kind: 'pglite', dataDir: dir });
      await store.insertCheckouts(first, [newCheckout('chk_persist')]);
      await first.close();
      const second = await openDatabase({ kind: 'pglite', dataDir: dir });
      expect((await store.findCheckout(second, 'chk_persist'))?.curp).toBe('CAMC880526HMCBNR04');
      await second.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('when three instances start on one PostgreSQL at once, then migrations are applied exactly once', async () => {
    const t = await openTestDatabase('postgres');
    try {
      // An empty schema again, then three instances migrate it at once.
      await t.db.query(`DROP SCHEMA ${t.schema} CASCADE`);
      await t.db.query(`CREATE SCHEMA ${t.schema}`);
      const instances = await Promise.all(
        [1, 2, 3].map(() => openDatabase({ kind: 'postgres', url: POSTGRES_URL, schema: t.schema!, maxConnections: 2 })),
      );
      const { rows } = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM schema_migrations');
      expect(rows[0]!.n).toBe(MIGRATIONS.length);
      await Promise.all(instances.map((db) => db.close()));
    } finally {
      await t.drop();
    }
  });

  it('when a migration adds a column under a prepared statement, then the next call prepares it again and sees the column', async () => {
    const t = await openTestDatabase('postgres');
    // One connection, so that the second call meets the statement the first one prepared.
    const db = await openDatabase({ kind: 'postgres', url: POSTGRES_URL, schema: t.schema!, maxConnections: 1 });
    try {
      await store.insertCheckouts(db, [newCheckout('chk_prepared')]);
      expect((await store.findCheckout(db, 'chk_prepared'))?.curp).toBe('CAMC880526HMCBNR04');
      await db.query('ALTER TABLE checkouts ADD COLUMN later_column text');
      const { rows } = await db.query<Record<string, unknown>>('SELECT * FROM checkouts WHERE id = $1', ['chk_prepared']);
      expect(rows[0]).toHaveProperty('later_column', null);
      // Inside a transaction the refused statement loses the transaction, and a new attempt works.
      await db.query('ALTER TABLE checkouts ADD COLUMN another_column text');
      await expect(db.transaction((tx) => tx.query('SELECT * FROM checkouts WHERE id = $1', ['chk_prepared'])))
        .rejects.toThrow(/cached plan/);
      const again = await db.transaction((tx) => tx.query('SELECT * FROM checkouts WHERE id = $1', ['chk_prepared']));
      expect(again.rows[0]).toHaveProperty('another_column', null);
    } finally {
      await db.close();
      await t.drop();
    }
  });
});
