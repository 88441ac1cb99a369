/**
 * The database: PostgreSQL's dialect everywhere. PGlite (PostgreSQL compiled to WebAssembly, a directory on disk)
 * by default, so the product starts with no server; a real PostgreSQL when DATABASE_URL is set.
 * Both are reached through the same small interface, and the same SQL runs on both.
 */
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { MIGRATIONS } from './migrations.js';

export type Row = Record<string, unknown>;
export type QueryResult<T extends Row = Row> = { rows: T[]; rowCount: number };

export interface Queryable {
  query<T extends Row = Row>(sql: string, params?: unknown[]): Promise<QueryResult<T>>;
}

export interface Database extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /** Runs `fn` in one transaction; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export type DatabaseOptions =
  | { kind: 'pglite'; dataDir: string | null /* null = in memory */ }
  | { kind: 'postgres'; url: string; schema?: string; maxConnections?: number };

/** An arbitrary constant that identifies our migration lock among advisory locks. */
const MIGRATION_LOCK = 4_827_301;

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  // While the database opens, nothing may keep Node's event loop alive yet (the server listens afterwards). When the
  // loop runs empty, Node waits for every pending V8 background task before going on (DrainTasks), and those include
  // the optimising compilation of PGlite's WebAssembly: about 0.4 s of start-up spent waiting. A timer keeps the loop
  // alive meanwhile, so that compilation finishes in the background while we start.
  const keepAlive = setInterval(() => {}, 60_000);
  try {
    const db = options.kind === 'pglite' ? await openPglite(options.dataDir) : await openPostgres(options);
    try {
      await migrate(db);
    } catch (error) {
      await db.close();
      throw error;
    }
    return db;
  } finally {
    clearInterval(keepAlive);
  }
}

/**
 * The upkeep PostgreSQL's autovacuum does on a server and PGlite cannot (one backend, no background workers): dead
 * row versions and their index entries cleared, and the planner's statistics gathered. Nothing on PostgreSQL.
 */
export async function maintainDatabase(db: Database): Promise<{ vacuumed: boolean; ms: number }> {
  if (db.kind !== 'pglite') return { vacuumed: false, ms: 0 };
  const started = performance.now();
  await db.query('VACUUM (ANALYZE)');
  return { vacuumed: true, ms: Math.round(performance.now() - started) };
}

async function openPglite(dataDir: string | null): Promise<Database> {
  if (dataDir) await mkdir(dataDir, { recursive: true });
  const pglite = dataDir ? await PGlite.create(dataDir) : await PGlite.create();
  const wrap = (q: { query: PGlite['query'] }): Queryable => ({
    async query<T extends Row>(sql: string, params: unknown[] = []) {
      const result = await q.query<T>(sql, params);
      return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
    },
  });
  const root = wrap(pglite);
  return {
    kind: 'pglite',
    query: root.query,
    transaction: (fn) => pglite.transaction((tx) => fn(wrap(tx))),
    close: () => pglite.close(),
  };
}

async function openPostgres(options: { url: string; schema?: string; maxConnections?: number }): Promise<Database> {
  const schema = options.schema;
  if (schema !== undefined && !/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`bad schema name: ${schema}`);
  if (schema) {
    const admin = new pg.Client({ connectionString: options.url });
    await admin.connect();
    try {
      await admin.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    } finally {
      await admin.end();
    }
  }
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.maxConnections ?? 10,
    types: { getTypeParser },
    // A startup parameter, so every connection is in the schema before its first query.
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  });
  // An idle client that errors (server restart) must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  const statements = new PreparedStatements();
  const wrap = (q: pg.Pool | pg.PoolClient, inTransaction: boolean): Queryable => ({
    async query<T extends Row>(sql: string, params: unknown[] = []) {
      let result;
      try {
        result = await q.query({ text: sql, values: params, name: statements.name(sql) });
      } catch (error) {
        if (!statements.isStale(error)) throw error;
        // A migration changed a table under a prepared statement: prepare it again under a new name. The statement
        // was refused before it ran; inside a transaction the transaction is lost, and its caller retries.
        statements.renew();
        if (inTransaction) throw error;
        result = await q.query({ text: sql, values: params, name: statements.name(sql) });
      }
      return { rows: result.rows as T[], rowCount: result.rowCount ?? result.rows.length };
    },
  });
  const root = wrap(pool, false);
  return {
    kind: 'postgres',
    query: root.query,
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn(wrap(client, true));
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}

/**
 * Named prepared statements for the queries the product repeats (SELECT, INSERT, UPDATE, DELETE, WITH): each pooled
 * connection parses and plans one of them once, then only binds and runs it, which saves the server and this process
 * work on every call. Other statements (DDL, BEGIN, locks), long ones (bulk inserts of the Tupay ledger, the
 * reconciliation report: rare, and costly to keep on every connection) and any beyond the first MAX_PREPARED go unnamed.
 */
const MAX_PREPARED_SQL = 4_000;
const MAX_PREPARED = 500;

class PreparedStatements {
  private names = new Map<string, string | undefined>();
  private generation = 0;

  name(sql: string): string | undefined {
    let name = this.names.get(sql);
    if (name === undefined && !this.names.has(sql)) {
      name = sql.length <= MAX_PREPARED_SQL && this.names.size < MAX_PREPARED && /^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b/i.test(sql)
        ? `k${this.generation}_${createHash('sha1').update(sql).digest('base64url').slice(0, 20)}`
        : undefined;
      this.names.set(sql, name);
    }
    return name;
  }

  /** PostgreSQL's refusal of a prepared statement whose result columns changed (ALTER TABLE since it was prepared). */
  isStale(error: unknown): boolean {
    const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
    return code === '0A000' && typeof message === 'string' && /cached plan must not change result type/.test(message);
  }

  /** New names for every statement: each connection prepares them again on first use. */
  renew(): void {
    this.generation += 1;
    this.names.clear();
  }
}

/** bigint columns hold centavos and counters, all safe integers: read them as numbers, as PGlite does. */
function getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
  if (oid === pg.types.builtins.INT8) return (value: string) => Number(value);
  return pg.types.getTypeParser(oid, format as 'text');
}

/**
 * Applies every migration not yet applied, in order, each in its own transaction, under an advisory lock so that
 * several instances starting together apply each migration once.
 */
export async function migrate(db: Database): Promise<string[]> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await tx.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (id text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const { rows } = await tx.query<{ id: string }>('SELECT id FROM schema_migrations');
    const applied = new Set(rows.map((row) => row.id));
    const done: string[] = [];
    for (const migration of MIGRATIONS) {
      if (applied.has(migration.id)) continue;
      for (const statement of splitStatements(migration.sql)) await tx.query(statement);
      await tx.query('INSERT INTO schema_migrations (id) VALUES ($1)', [migration.id]);
      done.push(migration.id);
    }
    return done;
  });
}

/** Migrations are plain statements separated by semicolons at line ends (no functions with bodies). */
function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*$/m)
    .map((statement) => statement.replace(/^\s*--.*$/gm, '').trim())
    .filter(Boolean);
}
