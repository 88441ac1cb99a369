/**
 * The embedded database has no autovacuum (PGlite is one backend, with no background workers): the BFF vacuums and
 * analyses it itself, as the `database` job (every DATA_DIR_VACUUM_HOURS, or `POST /admin/jobs/database/run`). On
 * PostgreSQL the job does nothing: autovacuum does it there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_CURPS } from '../../server/sandbox/kasu/kasu-sandbox.js';
import { ENGINES } from '../support/databases.js';
import { apiClient, startTestServer, type TestServer } from '../support/test-server.js';

const ADMIN_TOKEN = 'admin-token-for-maintenance-0123456789';

describe.each(ENGINES)('database maintenance on %s', (engine) => {
  let server: TestServer;
  let call: ReturnType<typeof apiClient>;
  beforeAll(async () => {
    server = await startTestServer({ engine, backgroundJobs: false, env: { ADMIN_TOKEN } });
    call = apiClient(server.url);
  });
  afterAll(async () => {
    await server?.close();
  });

  const checkoutsTable = async () => (await server.db.query<{ reltuples: number; relallvisible: number }>(
    `SELECT reltuples::float8 AS reltuples, relallvisible FROM pg_class WHERE oid = 'checkouts'::regclass`)).rows[0]!;

  it(`when the database job runs, then ${engine === 'pglite' ? 'the embedded database is vacuumed and its statistics gathered' : 'nothing is done (autovacuum does it)'}, and the checkouts are intact`, async () => {
    // Rows, and row versions made dead by updates (every quote rewrites its checkout).
    const curps = SANDBOX_CURPS.filter((person) => !person.deceased).slice(0, 4).map((person) => person.curp);
    const ids: string[] = [];
    for (const curp of curps) {
      const created = await call('POST', '/v1/checkouts', { body: { curp } });
      expect(created.status).toBe(201);
      const { checkout, token } = created.body;
      ids.push(checkout.id);
      const product = checkout.products.find((p: { eligible: boolean }) => p.eligible).product;
      for (let i = 0; i < 5; i++) expect((await call('POST', `/v1/checkouts/${checkout.id}/quote`, { token, body: { product } })).status).toBe(200);
    }
    if (engine === 'pglite') expect((await checkoutsTable()).reltuples, 'never analysed before').toBe(-1);

    const run = await call('POST', '/admin/jobs/database/run', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(run.status, JSON.stringify(run.body)).toBe(200);
    expect(run.body.result).toMatchObject({ vacuumed: engine === 'pglite' });
    if (engine === 'pglite') {
      const table = await checkoutsTable();
      expect(table.reltuples, 'ANALYZE counted the live rows').toBe(ids.length);
      expect(table.relallvisible, 'VACUUM marked its pages all-visible').toBeGreaterThan(0);
    }
    const { rows } = await server.db.query<{ id: string; product: string | null }>('SELECT id, product FROM checkouts ORDER BY id COLLATE "C"');
    expect(rows.map((row) => row.id)).toEqual([...ids].sort());
    expect(rows.every((row) => row.product !== null)).toBe(true);
  });

  it('when an unauthenticated caller asks for the job, then 401', async () => {
    expect((await call('POST', '/admin/jobs/database/run')).status).toBe(401);
  });
});
