/**
 * The two database engines every data test runs against. PostgreSQL is required, never skipped:
 * when it cannot be reached the tests that use it fail with a message saying so.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDatabase, type Database } from '../../server/db/database.js';

export const POSTGRES_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const ENGINES = ['pglite', 'postgres'] as const;
export type Engine = (typeof ENGINES)[number];

export type TestDatabase = { db: Database; schema: string | null; drop(): Promise<void> };

/** A fresh, empty, migrated database: PGlite in memory, or a schema of its own on the local PostgreSQL. */
export async function openTestDatabase(engine: Engine): Promise<TestDatabase> {
  if (engine === 'pglite') {
    const db = await openDatabase({ kind: 'pglite', dataDir: null });
    return { db, schema: null, drop: () => db.close() };
  }
  const schema = `t_${randomBytes(6).toString('hex')}`;
  let db: Database;
  try {
    db = await openDatabase({ kind: 'postgres', url: POSTGRES_URL, schema, maxConnections: 5 });
  } catch (error) {
    throw new Error(
      `PostgreSQL tests cannot run: ${POSTGRES_URL} is unreachable (${(error as Error).message}). ` +
        'Start PostgreSQL or set TEST_DATABASE_URL; these tests fail rather than skip.',
    );
  }
  return {
    db,
    schema,
    async drop() {
      await db.close();
      const admin = new pg.Client({ connectionString: POSTGRES_URL });
      await admin.connect();
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    },
  };
}
