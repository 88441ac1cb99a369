/**
 * Structured JSON-lines logger. Personal data never reaches a log line in clear: keys that name a CURP, an email,
 * a phone, a name or a secret are masked wherever they appear in the fields, and any CURP-shaped or email-shaped
 * text inside a string is masked too.
 */

export type Level = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

const SECRET_KEYS = /^(authorization|cookie|set-cookie|token|checkouttoken|password|secret|.*_?key|firma_key|privatekey)$/i;
const CURP_KEYS = /^(curp|curp_en_uso)$/i;
const EMAIL_KEYS = /^(email|mail|payer_email)$/i;
const PHONE_KEYS = /^(phone|telefono|phonenumber)$/i;
const NAME_KEYS = /^(name|nombre|payer_name)$/i;

const CURP_IN_TEXT = /\b[A-Z][AEIOUX][A-Z]{2}\d{6}[HMX][A-Z]{5}[0-9A-Z]\d\b/g;
const EMAIL_IN_TEXT = /[\w.+-]+@[\w-]+(\.[\w-]+)+/g;

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

function maskText(text: string): string {
  return text.replace(CURP_IN_TEXT, (m) => maskCurp(m)).replace(EMAIL_IN_TEXT, (m) => maskEmail(m));
}

export function redact(value: unknown, key = '', depth = 0): unknown {
  if (depth > 8) return '[deep]';
  if (value === null || value === undefined) return value;
  if (key && SECRET_KEYS.test(key)) return '[redacted]';
  if (typeof value === 'string' || typeof value === 'number') {
    if (CURP_KEYS.test(key)) return maskCurp(String(value));
    if (EMAIL_KEYS.test(key)) return maskEmail(String(value));
    if (PHONE_KEYS.test(key)) return maskPhone(String(value));
    if (NAME_KEYS.test(key)) return '[name]';
    return typeof value === 'string' ? maskText(value) : value;
  }
  if (value instanceof Error) {
    return { name: value.name, message: maskText(value.message), code: (value as { code?: unknown }).code };
  }
  if (Array.isArray(value)) return value.map((item) => redact(item, key, depth + 1));
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redact(v, k, depth + 1);
    return out;
  }
  return value;
}

export type Logger = {
  [L in Level]: (msg: string, fields?: Record<string, unknown>) => void;
} & { child(fields: Record<string, unknown>): Logger };

export function createLogger(
  options: { level?: Level; write?: (line: string) => void; base?: Record<string, unknown> } = {},
): Logger {
  const min = LEVELS[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => process.stdout.write(line + '\n'));
  const base = options.base ?? {};
  const emit = (level: Level) => (msg: string, fields: Record<string, unknown> = {}) => {
    if (LEVELS[level] < min) return;
    const record = redact({ ...base, ...fields }) as Record<string, unknown>;
    write(JSON.stringify({ time: new Date().toISOString(), level, msg: maskText(msg), ...record }));
  };
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: (fields) => createLogger({ ...options, base: { ...base, ...fields } }),
  };
}

/** A logger that keeps its lines in memory, for tests that assert what was (not) logged. */
export function createMemoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return Object.assign(createLogger({ level: 'debug', write: (line) => lines.push(line) }), { lines });
}
