/**
 * `tsx server/sandbox/khipu/main.ts`: the Khipu simulator on its own port (env PORT, default 8082; HOST default
 * 127.0.0.1), for trying the adapter or a Khipu integration without the BFF. Point KHIPU_BASE_URL at the printed
 * API URL. PUBLIC_URL sets the base of payment_url when browsers reach the simulator through another address;
 * KHIPU_RECEIVER_ID and KHIPU_SECRET replace the default sandbox receiver.
 */
import { createLogger } from '../../log.js';
import { SANDBOX_KHIPU_RECEIVER_ID, startKhipuSandbox } from './khipu-sandbox.js';

const log = createLogger({ base: { service: 'khipu-sandbox' } });

const port = Number(process.env.PORT ?? 8082);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  log.error('PORT must be a port number', { port: process.env.PORT });
  process.exit(1);
}
if (Boolean(process.env.KHIPU_RECEIVER_ID) !== Boolean(process.env.KHIPU_SECRET)) {
  log.error('KHIPU_RECEIVER_ID and KHIPU_SECRET go together');
  process.exit(1);
}

const receiverId = process.env.KHIPU_RECEIVER_ID;
const sandbox = await startKhipuSandbox({
  port,
  host: process.env.HOST ?? '127.0.0.1',
  ...(receiverId && process.env.KHIPU_SECRET ? { receivers: [{ receiverId, secret: process.env.KHIPU_SECRET }] } : {}),
  ...(process.env.PUBLIC_URL ? { publicUrl: process.env.PUBLIC_URL } : {}),
});
log.info('Khipu sandbox listening', {
  url: sandbox.url,
  api: `${sandbox.url}/api/2.0`,
  receiverId: receiverId ?? SANDBOX_KHIPU_RECEIVER_ID,
});

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info('Khipu sandbox stopping', { signal });
  await sandbox.close();
  process.exit(0);
}
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
