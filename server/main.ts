/** The process: parse the environment, start, and shut down cleanly on SIGTERM / SIGINT. */
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './log.js';
import { startServer } from './server.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\nSee .env.example for every variable.\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger({ level: config.logLevel });
  const running = await startServer(config, { logger });
  if (config.mode === 'sandbox') {
    process.stderr.write(`\nkasu-checkout (sandbox) ready: ${config.publicUrl}/  ·  API docs: ${config.publicUrl}/openapi.json\n\n`);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal });
    // close() cuts requests still in flight after SHUTDOWN_GRACE_MS (8 s); this ends a close that hangs anyway.
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    running.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((error: unknown) => {
  process.stderr.write(`kasu-checkout failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
