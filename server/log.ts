/**
 * Structured JSON-lines logger on pino: one object per line with `level` (a name), `time` (ISO 8601) and `msg`, then
 * the fields. Personal data never reaches a log line in clear, in two layers:
 * - our masking (`redact`) runs on every field and message first: keys that name a CURP, an email, a phone, a name or
 *   a secret are masked wherever they appear, and CURP-, email-, phone- and token-shaped text inside any string
 *   (messages, error messages, URLs) is masked too;
 * - pino's own `redact` then censors the known secret paths (authorization headers, tokens, keys) once more.
 * `Logger` stays our small interface (child, debug/info/warn/error with fields), so nothing else depends on pino.
 */
import pino, { type DestinationStream, type Logger as PinoLogger } from 'pino';

export type Level = 'debug' | 'info' | 'warn' | 'error';

const SECRET_KEYS =
  /^(authorization|proxy-authorization|cookie|set-cookie|.*token|password|.*secret|.*_?key|firma_key|privatekey|signature|x-scrty-.*|cvv|cvc|pan|card_?number)$/i;
const CURP_KEYS = /^(.*curp.*)$/i;
const EMAIL_KEYS = /^(.*email|mail|correo)$/i;
const PHONE_KEYS = /^(.*phone|telefono|celular|phonenumber)$/i;
const NAME_KEYS = /^(name|nombre.*|apellido.*|paterno|materno|payer_?name|customer_?name|full_?name|holder_?name|cardholder.*)$/i;

const CURP_IN_TEXT = /\b[A-Z][AEIOUX][A-Z]{2}\d{6}[HMX][A-Z]{5}[0-9A-Z]\d\b/g;
const EMAIL_IN_TEXT = /[\w.+-]+@[\w-]+(\.[\w-]+)+/g;
/** Ten digits (a Mexican phone), optionally after 52 or +52, not part of a longer number or word. */
const PHONE_IN_TEXT = /(?<![\w+-])(?:\+?52)?\d{10}(?!\w)/g;
/** An HTTP credential: `Bearer …`, `Basic …`, the card gateway's `scrty …`. */
const CREDENTIAL_IN_TEXT = /\b(Bearer|Basic|scrty)\s+[^\s,;"']+/gi;
/** An opaque run of 32+ base64url/hex characters: a checkout token, a key, a signature, a provider token. */
const OPAQUE_IN_TEXT = /(?<![\w-])[\w-]{32,}(?![\w-])/g;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function maskCurp(curp: string): string {
  return curp.length <= 4 ? '****' : `${curp.slice(0, 4)}${'*'.repeat(curp.length - 4)}`;
}
export function maskEmail(email: string): string {
  const at = email.indexOf('@');
  if (at < 1) return '***';
  return `${email.charAt(0)}***@${email.slice(at + 1)}`;
}
export function maskPhone(phone: string): string {
  const digits = String(phone);
  return digits.length <= 2 ? '**' : `${'*'.repeat(digits.length - 2)}${digits.slice(-2)}`;
}

/** Whether a long word looks like a secret: at least two of lower case, upper case and digits (not a UUID, an id). */
function looksOpaque(word: string): boolean {
  if (UUID.test(word)) return false;
  const classes = Number(/[a-z]/.test(word)) + Number(/[A-Z]/.test(word)) + Number(/\d/.test(word));
  return classes >= 2;
}

/** Masks CURPs, emails, phones, credentials and token-shaped words found anywhere in a text. */
export function maskText(text: string): string {
  return text
    .replace(CURP_IN_TEXT, (m) => maskCurp(m))
    .replace(EMAIL_IN_TEXT, (m) => maskEmail(m))
    .replace(CREDENTIAL_IN_TEXT, (_m, scheme: string) => `${scheme} [redacted]`)
    .replace(OPAQUE_IN_TEXT, (m) => (looksOpaque(m) ? '[token]' : m))
    .replace(PHONE_IN_TEXT, (m) => maskPhone(m));
}

export function redact(value: unknown, key = '', depth = 0): unknown {
  if (depth > 8) return '[deep]';
  if (value === null || value === undefined) return value;
  if (key && SECRET_KEYS.test(key)) return '[redacted]';
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint') {
    if (CURP_KEYS.test(key)) return maskCurp(String(value));
    if (EMAIL_KEYS.test(key)) return maskEmail(String(value));
    if (PHONE_KEYS.test(key)) return maskPhone(String(value));
    if (NAME_KEYS.test(key)) return '[name]';
    if (typeof value === 'bigint') return String(value);
    return typeof value === 'string' ? maskText(value) : value;
  }
  if (value instanceof Error) {
    return { name: value.name, message: maskText(value.message), code: (value as { code?: unknown }).code };
  }
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (Array.isArray(value)) return value.map((item) => redact(item, key, depth + 1));
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redact(v, k, depth + 1);
    return out;
  }
  return value;
}

/**
 * pino's second layer: paths censored whatever our masking did. (pino's paths are exact, `*` is one level; our
 * masking above covers any depth.)
 */
const SECRET_PATH_KEYS = ['authorization', 'cookie', 'token', 'password', 'secret', 'privateKey', 'firma_KEY', 'cvv', 'checkoutToken', 'cardToken'];
export const REDACT_PATHS = [
  ...SECRET_PATH_KEYS,
  ...SECRET_PATH_KEYS.map((key) => `*.${key}`),
  'headers.authorization', 'headers.cookie', 'headers["set-cookie"]', 'headers["proxy-authorization"]',
  '*.headers.authorization', '*.headers.cookie', '*.headers["set-cookie"]',
  'req.headers.authorization', 'req.headers.cookie', 'card.number', 'card.cvv', 'card.token',
];

/** Keys pino writes itself: a field with one of these names is written as `<name>_` instead of a duplicate key. */
const RESERVED = ['level', 'time', 'msg'] as const;

export type Logger = {
  [L in Level]: (msg: string, fields?: Record<string, unknown>) => void;
} & { child(fields: Record<string, unknown>): Logger };

/** The pino instance behind a Logger (exported for tests of pino's own redaction). */
export function pinoLogger(level: Level, write: ((line: string) => void) | undefined): PinoLogger {
  const destination: DestinationStream = write
    ? { write: (chunk: string) => write(chunk.endsWith('\n') ? chunk.slice(0, -1) : chunk) }
    : pino.destination({ dest: 1, sync: true });
  return pino(
    {
      level,
      base: null, // no pid or hostname: the platform adds its own
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    destination,
  );
}

function wrap(root: PinoLogger, base: Record<string, unknown>): Logger {
  const emit = (level: Level) => (msg: string, fields: Record<string, unknown> = {}) => {
    if (!root.isLevelEnabled(level)) return;
    const record = redact({ ...base, ...fields }) as Record<string, unknown>;
    for (const key of RESERVED) {
      if (key in record) {
        record[`${key}_`] = record[key];
        delete record[key];
      }
    }
    root[level](record, maskText(String(msg)));
  };
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: (fields) => wrap(root, { ...base, ...fields }),
  };
}

/**
 * A logger writing JSON lines to stdout, or to `write` (one line per call, without its newline) when given.
 * `base` fields are on every line.
 */
export function createLogger(
  options: { level?: Level; write?: (line: string) => void; base?: Record<string, unknown> } = {},
): Logger {
  return wrap(pinoLogger(options.level ?? 'info', options.write), options.base ?? {});
}

/** A logger that keeps its lines in memory (pino writing to an in-memory stream), for tests that assert what was (not) logged. */
export function createMemoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return Object.assign(createLogger({ level: 'debug', write: (line) => lines.push(line) }), { lines });
}
