/** Starts the real BFF (sandbox mode, built-in KASU simulator) on port 0, on the engine a test asks for. */
import { loadConfig } from '../../server/config.js';
import { createMemoryLogger } from '../../server/log.js';
import { startServer, type RunningServer } from '../../server/server.js';
import { openTestDatabase, type Engine } from './databases.js';

export type TestServer = RunningServer & { logs: string[]; engine: Engine };

export async function startTestServer(
  options: {
    engine?: Engine; env?: Record<string, string>; now?: () => Date; widgetDir?: string; backgroundJobs?: boolean; shutdownGraceMs?: number;
  } = {},
): Promise<TestServer> {
  const engine = options.engine ?? 'pglite';
  const database = await openTestDatabase(engine);
  const logger = createMemoryLogger();
  const config = loadConfig({ MODE: 'sandbox', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'debug', ...options.env });
  const running = await startServer(config, {
    logger, db: database.db, ...(options.now ? { now: options.now } : {}),
    ...(options.widgetDir ? { widgetDir: options.widgetDir } : {}),
    ...(options.backgroundJobs === false ? { backgroundJobs: false } : {}),
    ...(options.shutdownGraceMs !== undefined ? { shutdownGraceMs: options.shutdownGraceMs } : {}),
  });
  return {
    ...running,
    engine,
    logs: logger.lines,
    async close() {
      await running.close();
      await database.drop();
    },
  };
}

/** A small JSON client for tests: status, headers and parsed body of each call. */
export function apiClient(baseUrl: string) {
  return async function call(
    method: string,
    path: string,
    options: { body?: unknown; token?: string; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; headers: Headers; body: any }> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      ...(options.body !== undefined ? { body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body) } : {}),
    });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, headers: response.headers, body };
  };
}
