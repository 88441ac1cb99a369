/**
 * `npm run sandbox:kasu`: the KASU simulator on its own port (env PORT, default 8081; HOST default 127.0.0.1),
 * for trying the adapter or a KASU integration without the BFF. Point KASU_BASE_URL at the printed URL.
 */
import { createLogger } from '../../log.js';
import { SANDBOX_USER, startKasuSandbox } from './kasu-sandbox.js';

const log = createLogger({ base: { service: 'kasu-sandbox' } });

const port = Number(process.env.PORT ?? 8081);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  log.error('PORT must be a port number', { port: process.env.PORT });
  process.exit(1);
}

const sandbox = await startKasuSandbox({ port, host: process.env.HOST ?? '127.0.0.1' });
log.info('KASU sandbox listening', { url: sandbox.url, user: SANDBOX_USER });

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info('KASU sandbox stopping', { signal });
  await sandbox.close();
  process.exit(0);
}
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
