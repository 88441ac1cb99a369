/**
 * `tsx server/sandbox/card/main.ts`: the card gateway simulator on its own port (env PORT, default 8083; HOST default
 * 127.0.0.1), for trying the adapter or the tokenizer without the BFF. Point the card adapter's base URL at the
 * printed URL (the API is below /api/v1). CARD_MERCHANT_ID and CARD_KEY replace the default sandbox merchant;
 * CARD_AUTH_ENCODING (hex | base64) must match the adapter's; ALLOWED_PARENT_ORIGINS (comma-separated) limits who
 * may frame the tokenizer; PUBLIC_URL is the base browsers use when they reach the simulator through another address.
 */
import { createLogger } from '../../log.js';
import { SANDBOX_CARD_MERCHANT_ID, startCardSandbox } from './card-sandbox.js';

const log = createLogger({ base: { service: 'card-sandbox' } });

const port = Number(process.env.PORT ?? 8083);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  log.error('PORT must be a port number', { port: process.env.PORT });
  process.exit(1);
}
if (Boolean(process.env.CARD_MERCHANT_ID) !== Boolean(process.env.CARD_KEY)) {
  log.error('CARD_MERCHANT_ID and CARD_KEY go together');
  process.exit(1);
}
const encoding = process.env.CARD_AUTH_ENCODING ?? 'hex';
if (encoding !== 'hex' && encoding !== 'base64') {
  log.error('CARD_AUTH_ENCODING must be hex or base64', { encoding });
  process.exit(1);
}

const merchantId = process.env.CARD_MERCHANT_ID;
const origins = (process.env.ALLOWED_PARENT_ORIGINS ?? '').split(',').map((origin) => origin.trim()).filter(Boolean);
const sandbox = await startCardSandbox({
  port,
  host: process.env.HOST ?? '127.0.0.1',
  auth: { encoding },
  ...(merchantId && process.env.CARD_KEY ? { merchants: [{ merchantId, key: process.env.CARD_KEY }] } : {}),
  ...(process.env.PUBLIC_URL ? { publicUrl: process.env.PUBLIC_URL } : {}),
  ...(origins.length > 0 ? { allowedParentOrigins: origins } : {}),
});
log.info('Card gateway sandbox listening', {
  url: sandbox.url,
  api: `${sandbox.url}/api/v1`,
  tokenizer: `${sandbox.url}/tokenizer`,
  merchantId: merchantId ?? SANDBOX_CARD_MERCHANT_ID,
});

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info('Card gateway sandbox stopping', { signal });
  await sandbox.close();
  process.exit(0);
}
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
