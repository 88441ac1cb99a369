/** Serves one provider simulator's router on its own HTTP server (tests, and the sandbox:* scripts). */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Request, type Response, type Router } from 'express';

export async function serveStandalone<State>(
  sandbox: { router: Router; state: State; close?: () => Promise<void> },
  /** The provider's own answer for an unknown path. */
  notFound: unknown,
  options: { port?: number; host?: string } = {},
): Promise<{ url: string; state: State; close(): Promise<void> }> {
  const app = express();
  app.disable('x-powered-by');
  app.use(sandbox.router);
  app.use((_req: Request, res: Response) => {
    res.status(404).json(notFound);
  });
  const host = options.host ?? '127.0.0.1';
  const server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    state: sandbox.state,
    async close() {
      await sandbox.close?.();
      await new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}
