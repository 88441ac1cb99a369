/**
 * The baseline the BFF is compared with: a bare node:http relay that does the least a proxy in front of KASU
 * must do, with the same HTTP client settings as the BFF's KASU adapter (undici, providerAgent, same headers and
 * payloads as server/providers/kasu/kasu-client.ts):
 *
 * - `POST /v1/checkouts {curp}` → KASU `token_full` for that CURP (firma_KEY = HMAC of the CURP), every time: a
 *   relay keeps no state, so it asks RENAPO through KASU on each request. Answers 201 `{checkout: {id}, token}`.
 * - `POST /v1/checkouts/:id/quote {product}` → KASU `modify_record` with the token that CURP's last `token_full`
 *   gave (a relay has to present one). Answers 200 with KASU's JSON as it came.
 *
 * No database, no validation beyond JSON, no logging. Env: KASU_BASE_URL, PORT. Prints `{"url": …}` when listening.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { providerAgent } from '../server/providers/provider-http.js';
import { SANDBOX_PRIVATE_KEY, SANDBOX_USER } from '../server/sandbox/kasu/kasu-sandbox.js';
import { exitWithParent } from './lib.js';

exitWithParent();

const KASU = (process.env.KASU_BASE_URL ?? '').replace(/\/+$/, '');
if (!KASU) {
  process.stderr.write('KASU_BASE_URL is required\n');
  process.exit(1);
}
const agent = providerAgent({ connectMs: 5_000, headersMs: 10_000, bodyMs: 10_000 });
const tokens = new Map<string, { token: string; tokenData: unknown }>();

async function kasu(payload: Record<string, unknown>, bearer?: string): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = {
    'content-type': 'application/json', accept: 'application/json', 'user-agent': 'kasu-relay/bench',
  };
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  const response = await request(KASU, { method: 'POST', headers, body: JSON.stringify(payload), dispatcher: agent });
  return { status: response.statusCode, text: await response.body.text() };
}

function send(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  let text = '';
  for await (const chunk of req) {
    text += String(chunk);
    if (text.length > 16_384) throw new Error('too large');
  }
  const parsed: unknown = JSON.parse(text || '{}');
  return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = req.url ?? '/';
  if (req.method === 'GET' && url === '/healthz') return send(res, 200, '{"ok":true}');
  if (req.method !== 'POST') return send(res, 404, '{"error":"not found"}');
  const body = await readJson(req);

  if (url === '/v1/checkouts') {
    const curp = String(body.curp ?? '').trim().toUpperCase();
    const answer = await kasu({
      tipo_peticion: 'token_full',
      nombre_de_usuario: SANDBOX_USER,
      firma_KEY: createHmac('sha256', SANDBOX_PRIVATE_KEY).update(curp).digest('hex'),
      curp_en_uso: curp,
    });
    if (answer.status !== 200) return send(res, answer.status >= 500 ? 502 : answer.status, answer.text);
    const parsed = JSON.parse(answer.text) as { token: string; token_data: unknown };
    tokens.set(curp, { token: parsed.token, tokenData: parsed.token_data });
    return send(res, 201, JSON.stringify({ checkout: { id: curp }, token: parsed.token }));
  }

  const quote = /^\/v1\/checkouts\/([A-Z0-9]+)\/quote$/.exec(url);
  if (quote) {
    const curp = quote[1]!;
    const token = tokens.get(curp);
    if (!token) return send(res, 401, '{"error":"unknown checkout"}');
    const answer = await kasu({
      tipo_peticion: 'modify_record',
      nombre_de_usuario: SANDBOX_USER,
      curp_en_uso: curp,
      producto: body.product,
      token_data: token.tokenData,
    }, token.token);
    return send(res, answer.status >= 200 && answer.status < 300 ? 200 : answer.status >= 500 ? 502 : answer.status, answer.text);
  }
  return send(res, 404, '{"error":"not found"}');
}

const server = createServer((req, res) => {
  handle(req, res).catch((error: unknown) => {
    if (!res.headersSent) send(res, 502, JSON.stringify({ error: (error as Error).message }));
    else res.destroy();
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
});

const stop = () => {
  server.close(() => {
    void agent.close().finally(() => process.exit(0));
  });
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
