/**
 * The KASU simulator in a process of its own for the load test (so that its CPU is not the BFF's), with its token
 * rate limit lifted (KASU's own limit is per IP and a load test comes from one IP), and two control endpoints:
 * `GET /__bench/stats` (token_full requests per CURP and calls per function and status) and `GET /__bench/healthz`.
 * Prints `{"url": …}` on stdout once listening.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { createKasuSandbox } from '../server/sandbox/kasu/kasu-sandbox.js';
import { exitWithParent } from './lib.js';

exitWithParent();

const sandbox = createKasuSandbox({ tokenRateLimitPerMinute: Number.MAX_SAFE_INTEGER });

const app = express();
app.disable('x-powered-by');
app.get('/__bench/healthz', (_req: Request, res: Response) => {
  res.json({ ok: true });
});
app.get('/__bench/stats', (_req: Request, res: Response) => {
  const calls: Record<string, number> = {};
  for (const call of sandbox.state.calls) {
    const key = `${call.function || '?'} ${call.status}`;
    calls[key] = (calls[key] ?? 0) + 1;
  }
  res.json({ tokenRequests: Object.fromEntries(sandbox.state.tokenRequests), calls, totalCalls: sandbox.state.calls.length });
});
// The simulator keeps, per client IP, every token_full time of the last minute and filters that list on each
// request. With the limit lifted that bookkeeping only costs time (O(requests in the last minute) per request, which
// would slow the simulator as a load test goes on), so each 100 ms gets a key of its own.
app.use((req: Request, _res: Response, next: NextFunction) => {
  Object.defineProperty(req, 'ip', { value: `${req.socket.remoteAddress ?? 'unknown'}#${Math.floor(Date.now() / 100)}` });
  next();
});
app.use(sandbox.router);
app.use((_req: Request, res: Response) => {
  res.status(404).json({ ok: false, mensaje: 'Petición desconocida' });
});

const server = createServer(app);
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
});

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
