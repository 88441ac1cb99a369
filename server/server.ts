/**
 * startServer(config): opens the database, listens, wires providers (the built-in sandboxes in sandbox mode)
 * and returns a handle that closes everything in order.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Router } from 'express';
import type { Config } from './config.js';
import { openDatabase, type Database } from './db/database.js';
import { createLogger, type Logger } from './log.js';
import { createApp } from './app.js';
import { CheckoutService } from './checkouts/checkout-service.js';
import { KasuClient } from './providers/kasu/kasu-client.js';
import { createKasuSandbox, type KasuSandboxState } from './sandbox/kasu/kasu-sandbox.js';

export type RunningServer = {
  url: string;
  server: Server;
  db: Database;
  kasu: KasuClient;
  /** The built-in KASU simulator's state, in sandbox mode. */
  kasuSandbox: KasuSandboxState | null;
  close(): Promise<void>;
};

export type StartOptions = {
  logger?: Logger;
  /** Clock for the checkout logic (tests); the real clock by default. */
  now?: () => Date;
  /** Use this database instead of opening the configured one (it is not closed on close()). */
  db?: Database;
  widgetDir?: string;
};

/** dist/widget from the source tree (tsx) or from the compiled server in dist/server/server/. */
const DEFAULT_WIDGET_DIR = [new URL('../dist/widget/', import.meta.url), new URL('../../widget/', import.meta.url)]
  .map((url) => fileURLToPath(url))
  .find((dir) => existsSync(dir)) ?? fileURLToPath(new URL('../dist/widget/', import.meta.url));

export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const db = options.db ?? (await openDatabase(config.database.kind === 'postgres'
    ? { kind: 'postgres', url: config.database.url }
    : { kind: 'pglite', dataDir: config.database.dataDir }));

  const server = createServer();
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const selfUrl = `http://127.0.0.1:${port}`;

  const sandboxes: Record<string, Router> = {};
  let kasuSandbox: KasuSandboxState | null = null;
  if (config.mode === 'sandbox') {
    const sandbox = createKasuSandbox();
    sandboxes['/sandbox/kasu'] = sandbox.router;
    kasuSandbox = sandbox.state;
  }

  const kasu = new KasuClient(
    { ...config.kasu, baseUrl: config.kasu.baseUrl ?? `${selfUrl}/sandbox/kasu` },
    { logger: logger.child({ provider: 'kasu' }) },
  );
  const checkouts = new CheckoutService(
    db,
    kasu,
    {
      ttlHours: config.checkoutTtlHours,
      instalmentOptions: config.instalmentOptions,
      legal: config.legal,
      paymentMethods: ['email'],
    },
    logger,
    options.now,
  );
  const publicUrl = config.port === 0 ? selfUrl : config.publicUrl;
  const app = createApp({
    config: { ...config, publicUrl },
    db,
    logger,
    checkouts,
    widgetDir: options.widgetDir ?? DEFAULT_WIDGET_DIR,
    sandboxes,
  });
  server.on('request', app);
  logger.info('listening', { url: publicUrl, mode: config.mode, database: db.kind });

  return {
    url: selfUrl,
    server,
    db,
    kasu,
    kasuSandbox,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await kasu.close();
      if (!options.db) await db.close();
    },
  };
}
