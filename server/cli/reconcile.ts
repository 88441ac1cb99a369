/**
 * `npm run reconcile -- --from 2026-01-01 --to 2026-03-31`: the merchant's reconciliation command. It asks the
 * running BFF's admin API to reconcile the period (re-reading Tupay first unless --no-sync), shows the progress the
 * BFF streams back as NDJSON, saves the report's CSV and prints a summary. It never opens the database itself:
 * the product may run on an embedded single-process database that only the BFF can hold open.
 *
 * The admin token comes from ADMIN_TOKEN (the sandbox default when unset); it is sent only in the Authorization
 * header and never printed.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Agent, request, type Dispatcher } from 'undici';
import { z } from 'zod';
import { formatMoney } from '../../shared/money.js';
import { createProgressWriter, type ProgressState, type WritableLike } from './progress-bar.js';
import { SANDBOX_ADMIN_TOKEN } from '../config.js';

/** What the CLI sends when ADMIN_TOKEN is unset; the BFF accepts it in sandbox mode only. */
export { SANDBOX_ADMIN_TOKEN };

export const USAGE = `Usage: npm run reconcile -- --from YYYY-MM-DD --to YYYY-MM-DD [options]

Reconciles the orders and payments of a period (Mexico City calendar days, both included) through the
running BFF's admin API, saves the report as CSV and prints a summary.

Options:
  --from YYYY-MM-DD  first day (required)
  --to YYYY-MM-DD    last day (required)
  --csv PATH         where to save the CSV (default: reconciliation-<from>-<to>.csv here)
  --no-sync          do not re-read Tupay first
  --json             print the report as JSON instead of the summary
  --url URL          the BFF (default: $KASU_BFF_URL, else http://localhost:$PORT, port 8080 by default)
  -h, --help         show this help

Environment:
  ADMIN_TOKEN        the BFF's admin token (when unset, the sandbox default, accepted only in sandbox mode)
`;

export type Env = Record<string, string | undefined>;

export type ReconcileOptions = {
  /** First day, YYYY-MM-DD. */
  from: string;
  /** Last day, YYYY-MM-DD (included). */
  to: string;
  /** Where the CSV goes, as given (relative paths are from the working directory). */
  csv: string;
  /** Re-read Tupay before reconciling. */
  sync: boolean;
  /** Print the report as JSON on stdout instead of the summary. */
  json: boolean;
  /** The BFF's base URL, without a trailing slash. */
  url: string;
  token: string;
  /** Whether the token came from ADMIN_TOKEN or is the sandbox default (worded differently on a 401). */
  tokenSource: 'env' | 'sandbox';
};

export type ParsedArguments =
  | { kind: 'help' }
  | { kind: 'run'; options: ReconcileOptions }
  | { kind: 'invalid'; message: string };

export type ReconcileIo = {
  stdout: WritableLike;
  stderr: WritableLike;
  /** Whether stderr is a terminal (bar redrawn in place) or not (plain progress lines). */
  isTTY: boolean;
  /** The terminal's width, so the bar never wraps. */
  columns?: number | undefined;
  /** Aborting stops the command (Ctrl-C); it then exits 130. */
  signal?: AbortSignal | undefined;
};

// ---------------------------------------------------------------------------------------------------------------
// Arguments

const ARGUMENT_OPTIONS = {
  from: { type: 'string' },
  to: { type: 'string' },
  csv: { type: 'string' },
  'no-sync': { type: 'boolean' },
  json: { type: 'boolean' },
  url: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const Day = z.string({ error: 'is required (YYYY-MM-DD)' }).pipe(z.iso.date({ error: 'must be a real day as YYYY-MM-DD' }));

const ArgumentsSchema = z
  .object({
    from: Day,
    to: Day,
    csv: z.string().min(1, 'must not be empty').optional(),
    url: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }),
  })
  .refine((args) => args.from <= args.to, { path: ['period'], error: 'is after' });

function readArguments(argv: readonly string[]) {
  return parseArgs({ args: [...argv], options: ARGUMENT_OPTIONS, strict: true, allowPositionals: false }).values;
}

/** The command line (without node and the script) and the environment, checked; never throws. */
export function parseArguments(argv: readonly string[], env: Env): ParsedArguments {
  let values: ReturnType<typeof readArguments>;
  try {
    values = readArguments(argv);
  } catch (error) {
    if (argv.includes('--help') || argv.includes('-h')) return { kind: 'help' };
    // Node's messages go on with advice about '--'; the first sentence is the problem.
    const message = error instanceof Error ? error.message : String(error);
    const first = oneLine(message.split(/\.\s/)[0] ?? message);
    return { kind: 'invalid', message: first.charAt(0).toLowerCase() + first.slice(1) };
  }
  if (values.help) return { kind: 'help' };

  const urlSource = values.url !== undefined ? '--url' : env.KASU_BFF_URL ? 'KASU_BFF_URL' : 'PORT';
  if (urlSource === 'PORT' && env.PORT && !/^\d{1,5}$/.test(env.PORT)) {
    return { kind: 'invalid', message: `PORT must be a port number (got ${JSON.stringify(env.PORT)})` };
  }
  const url = values.url ?? (env.KASU_BFF_URL || `http://localhost:${env.PORT || 8080}`);
  const parsed = ArgumentsSchema.safeParse({ from: values.from, to: values.to, csv: values.csv, url });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue?.path[0] === 'period') {
      return { kind: 'invalid', message: `--from ${values.from} is after --to ${values.to}` };
    }
    const key = String(issue?.path[0] ?? '');
    const given = key === 'url' ? url : (values as Record<string, unknown>)[key];
    const name = key === 'url' ? urlSource : `--${key}`;
    const got = typeof given === 'string' ? ` (got ${JSON.stringify(given)})` : '';
    return { kind: 'invalid', message: oneLine(`${name} ${issue?.message ?? 'is not valid'}${got}`) };
  }
  const { from, to } = parsed.data;
  const token = env.ADMIN_TOKEN?.trim();
  return {
    kind: 'run',
    options: {
      from,
      to,
      csv: parsed.data.csv ?? `reconciliation-${from}-${to}.csv`,
      sync: !values['no-sync'],
      json: Boolean(values.json),
      url: parsed.data.url.replace(/\/+$/, ''),
      token: token || SANDBOX_ADMIN_TOKEN,
      tokenSource: token ? 'env' : 'sandbox',
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The BFF's answers

const Count = z.number().int().nonnegative();
const Centavos = z.number().int();
const Sum = z.looseObject({ count: Count, centavos: Centavos });
const TupayRead = z.looseObject({ read: Count, inserted: Count, updated: Count, unchanged: Count });

export const ReconciliationReportSchema = z.looseObject({
  id: z.string().min(1),
  status: z.string(),
  trigger: z.string(),
  period: z.looseObject({ from: z.string(), to: z.string() }),
  createdAt: z.string(),
  completedAt: z.string().nullable(),
  previousReportId: z.string().nullable(),
  tupay: z.looseObject({
    synced: z.boolean(),
    reason: z.string().optional(),
    deposits: TupayRead.optional(),
    cashouts: TupayRead.optional(),
  }),
  orders: z.looseObject({ total: Count, paid: Count, unpaid: Count }),
  counts: z.looseObject({
    matched: Count, unpaid: Count, orphan: Count, mismatch: Count, duplicate: Count,
    pending: Count, failed: Count, cashout: Count, statusChanges: Count,
  }),
  discrepancies: Count,
  totals: z.array(
    z.looseObject({ rail: z.string(), currency: z.string(), paid: Sum, pending: Sum, failed: Sum, fees: Centavos }),
  ),
});
export type ReconciliationReport = z.infer<typeof ReconciliationReportSchema>;

const ProgressLineSchema = z.discriminatedUnion('phase', [
  z.looseObject({
    phase: z.enum(['deposits', 'cashouts']),
    window: z.number().int().nonnegative(),
    windows: z.number().int().positive(),
    records: Count,
  }),
  z.looseObject({ phase: z.literal('report') }),
]);
const StreamLineSchema = z.looseObject({ type: z.string() });
const ReportLineSchema = z.looseObject({ report: ReconciliationReportSchema });
const ErrorLineSchema = z.looseObject({
  error: z.looseObject({ code: z.string(), message: z.string().optional(), requestId: z.string().optional() }),
});
const ErrorBodySchema = z.looseObject({
  error: z.looseObject({
    code: z.string(),
    message: z.string().optional(),
    fields: z.record(z.string(), z.string()).optional(),
  }),
});

/** A failure already worded for the merchant. */
class CliFailure extends Error {
  override name = 'CliFailure';
}

const MAX_LINE_CHARS = 16 * 1024 * 1024;

/** NDJSON lines as they arrive (blank lines skipped; a last line without a newline still counts). */
async function* ndjsonLines(body: AsyncIterable<unknown>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let pending = '';
  for await (const chunk of body) {
    pending += typeof chunk === 'string' ? chunk : decoder.decode(chunk as Uint8Array, { stream: true });
    let newline: number;
    while ((newline = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (line) yield line;
    }
    if (pending.length > MAX_LINE_CHARS) throw new CliFailure('the BFF sent a line too long to be a progress line or a report');
  }
  pending += decoder.decode();
  if (pending.trim()) yield pending.trim();
}

/** Starts the run and follows its stream to the report. */
async function reconcile(
  options: ReconcileOptions, dispatcher: Dispatcher, onProgress: (state: ProgressState) => void, signal?: AbortSignal,
): Promise<ReconciliationReport> {
  const response = await request(`${options.url}/admin/reconciliations`, {
    method: 'POST',
    dispatcher,
    signal,
    headers: {
      authorization: `Bearer ${options.token}`,
      'content-type': 'application/json',
      accept: 'application/x-ndjson',
    },
    body: JSON.stringify({ from: options.from, to: options.to, sync: options.sync }),
  });
  if (response.statusCode !== 200) throw await httpFailure(response, options, 'start');
  try {
    for await (const line of ndjsonLines(response.body)) {
      let json: unknown;
      try {
        json = JSON.parse(line);
      } catch {
        throw new CliFailure(`the BFF sent a line that is not JSON: ${clip(line)}`);
      }
      const message = StreamLineSchema.safeParse(json);
      if (!message.success) throw new CliFailure(`the BFF sent a line this command does not understand: ${clip(line)}`);
      if (message.data.type === 'progress') {
        // A phase this version does not know is no reason to stop: the report is what matters.
        const progress = ProgressLineSchema.safeParse(json);
        if (progress.success) onProgress(progress.data as ProgressState);
      } else if (message.data.type === 'report') {
        const report = ReportLineSchema.safeParse(json);
        if (!report.success) {
          const issue = report.error.issues[0];
          throw new CliFailure(
            `the BFF sent a report this command does not understand (${issue ? `${issue.path.join('.')}: ${issue.message}` : 'bad shape'})`,
          );
        }
        return report.data.report;
      } else if (message.data.type === 'error') {
        const failure = ErrorLineSchema.safeParse(json);
        const error = failure.success ? failure.data.error : { code: 'UNKNOWN', message: undefined, requestId: undefined };
        throw new CliFailure(
          `the reconciliation failed: ${error.code}${error.message ? `: ${oneLine(error.message)}` : ''}`
            + (error.requestId ? ` (request ${error.requestId} in the BFF log)` : ''),
        );
      }
    }
  } finally {
    response.body.destroy();
  }
  throw new CliFailure('the BFF ended the answer before the report; see the BFF log');
}

/** Streams the report's CSV to a temporary file beside `target`, renamed to it once complete. */
async function downloadCsv(
  options: ReconcileOptions, reportId: string, target: string, dispatcher: Dispatcher, signal?: AbortSignal,
): Promise<void> {
  const response = await request(`${options.url}/admin/reconciliations/${encodeURIComponent(reportId)}/report.csv`, {
    method: 'GET',
    dispatcher,
    signal,
    headers: { authorization: `Bearer ${options.token}`, accept: 'text/csv' },
  });
  if (response.statusCode !== 200) throw await httpFailure(response, options, 'csv', reportId);
  const temporary = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    // Aborting the request (Ctrl-C) also ends its body, which fails the pipeline.
    await pipeline(response.body, createWriteStream(temporary, { flags: 'wx' }));
    await rename(temporary, target);
  } catch (error) {
    response.body.destroy();
    await rm(temporary, { force: true });
    if (isFileSystemError(error)) throw new CliFailure(`cannot write the CSV to ${target}: ${error.code ?? error.message}`);
    throw error;
  }
}

async function httpFailure(
  response: Dispatcher.ResponseData, options: ReconcileOptions, step: 'start' | 'csv', reportId?: string,
): Promise<CliFailure> {
  const text = await response.body.text().catch(() => '');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const parsed = ErrorBodySchema.safeParse(body);
  const status = response.statusCode;
  const code = parsed.success ? parsed.data.error.code : undefined;
  const message = parsed.success && parsed.data.error.message ? oneLine(parsed.data.error.message) : undefined;
  const answered = `${status}${code ? ` ${code}` : ''}`;

  if (status === 401) {
    const sent = options.tokenSource === 'sandbox' ? 'the sandbox admin token (ADMIN_TOKEN is not set)' : 'the admin token';
    return new CliFailure(`the BFF at ${options.url} refused ${sent} (${answered}); set ADMIN_TOKEN to the BFF's ADMIN_TOKEN`);
  }
  if (status === 404 && step === 'start') {
    return new CliFailure(
      `the admin API is disabled on the BFF at ${options.url} (${answered}): start the BFF with ADMIN_TOKEN set`,
    );
  }
  if (status === 404) return new CliFailure(`the BFF has no CSV for report ${reportId ?? ''} (${answered})`);
  if (status === 400 && code === 'VALIDATION_FAILED') {
    const fields = parsed.success ? parsed.data.error.fields : undefined;
    const detail = fields ? ` (${Object.entries(fields).map(([field, text]) => `${field}: ${oneLine(text)}`).join('; ')})` : '';
    return new CliFailure(`the BFF rejected the request: ${message ?? 'validation failed'}${detail}`);
  }
  const doing = step === 'start' ? 'the reconciliation' : 'the CSV download';
  return new CliFailure(`the BFF answered ${answered} to ${doing}${message ? `: ${message}` : ''}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Output

const integers = new Intl.NumberFormat('es-MX', { maximumFractionDigits: 0 });
const count = (value: number) => integers.format(value);

function money(centavos: number, currency: string): string {
  if (currency === 'MXN') return formatMoney({ amount: centavos, currency }, 'es-MX');
  try {
    return new Intl.NumberFormat('es-MX', { style: 'currency', currency }).format(centavos / 100);
  } catch {
    return `${(centavos / 100).toFixed(2)} ${currency}`;
  }
}

const NOT_SYNCED_REASON: Record<string, string> = {
  not_requested: 'se pidió --no-sync',
  not_configured: 'Tupay no está configurado en el BFF',
};

function tupayLine(report: ReconciliationReport): string {
  const { tupay } = report;
  if (!tupay.synced) {
    const reason = tupay.reason ? (NOT_SYNCED_REASON[tupay.reason] ?? oneLine(tupay.reason)) : null;
    return `Tupay: no se releyó${reason ? ` (${reason})` : ''}`;
  }
  const read = (sync: z.infer<typeof TupayRead> | undefined, noun: string) =>
    sync ? `${count(sync.read)} ${noun} leídos (${count(sync.inserted)} nuevos, ${count(sync.updated)} actualizados)` : null;
  const parts = [read(tupay.deposits, 'depósitos'), read(tupay.cashouts, 'retiros')].filter(Boolean);
  return `Tupay: ${parts.length ? parts.join(', ') : 'releído'}`;
}

/** The readable summary printed on stdout (Spanish, the merchant's language); ends with a newline. */
export function formatSummary(
  report: ReconciliationReport, context: { from: string; to: string; csv: string; csvPath: string },
): string {
  const { orders, counts } = report;
  const lines = [
    `Conciliación ${report.id} · ${context.from} → ${context.to}`,
    tupayLine(report),
    `Pedidos: ${count(orders.total)} (${count(orders.paid)} pagados, ${count(orders.unpaid)} sin pago)`,
    `Pagos: conciliados ${count(counts.matched)} · sin pedido ${count(counts.orphan)} · diferencias de monto ${count(counts.mismatch)}`
      + ` · duplicados ${count(counts.duplicate)} · pendientes ${count(counts.pending)} · fallidos ${count(counts.failed)}`
      + ` · retiros ${count(counts.cashout)} · cambios de estado ${count(counts.statusChanges)}`,
  ];
  if (report.totals.length === 0) {
    lines.push('Totales por vía: ninguno');
  } else {
    lines.push('Totales por vía:');
    const railWidth = Math.max(...report.totals.map((total) => total.rail.length));
    for (const total of report.totals) {
      const sum = (label: string, value: { count: number; centavos: number }) =>
        `${label} ${money(value.centavos, total.currency)} (${count(value.count)})`;
      lines.push(
        `  ${total.rail.padEnd(railWidth)}  ${total.currency}  ${sum('pagado', total.paid)} · ${sum('pendiente', total.pending)}`
          + ` · ${sum('fallido', total.failed)} · comisiones ${money(total.fees, total.currency)}`,
      );
    }
  }
  lines.push(
    report.discrepancies > 0
      ? `Discrepancias: ${count(report.discrepancies)} → revise ${context.csv}`
      : 'Discrepancias: 0',
    `CSV: ${context.csvPath}`,
  );
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------------------------
// Running

const UNREACHABLE = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT',
]);
const TIMED_OUT = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const CUT_OFF = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

/** Every `code` on the error, its causes and (for connections tried on several addresses) its inner errors. */
function errorCodes(error: unknown, seen = new Set<unknown>()): string[] {
  if (typeof error !== 'object' || error === null || seen.has(error)) return [];
  seen.add(error);
  const codes: string[] = [];
  const { code, cause, errors } = error as { code?: unknown; cause?: unknown; errors?: unknown };
  if (typeof code === 'string') codes.push(code);
  codes.push(...errorCodes(cause, seen));
  if (Array.isArray(errors)) for (const inner of errors) codes.push(...errorCodes(inner, seen));
  return codes;
}

function isFileSystemError(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).path === 'string';
}

function failureMessage(error: unknown, options: ReconcileOptions): string {
  if (error instanceof CliFailure) return error.message;
  const codes = errorCodes(error);
  if (codes.some((code) => UNREACHABLE.has(code))) return `cannot reach the BFF at ${options.url}; is it running? (npm start)`;
  if (codes.some((code) => TIMED_OUT.has(code))) return `the BFF at ${options.url} stopped answering (${codes.find((code) => TIMED_OUT.has(code))})`;
  if (codes.some((code) => CUT_OFF.has(code))) {
    return `the connection to the BFF at ${options.url} was cut (${codes.find((code) => CUT_OFF.has(code))}); see the BFF log`;
  }
  return `unexpected error: ${oneLine(error instanceof Error ? error.message : String(error))}`;
}

/** Runs the reconciliation through the BFF and prints the outcome; resolves to the exit code (0, 1, or 130). */
export async function runReconcile(options: ReconcileOptions, io: ReconcileIo): Promise<number> {
  const progress = createProgressWriter(io.stderr, { isTTY: io.isTTY, columns: io.columns });
  const dispatcher = new Agent({ connect: { timeout: 10_000 }, headersTimeout: 120_000, bodyTimeout: 600_000 });
  const csvPath = path.resolve(options.csv);
  try {
    const report = await reconcile(options, dispatcher, (state) => progress.update(state), io.signal);
    progress.finish();
    await downloadCsv(options, report.id, csvPath, dispatcher, io.signal);
    if (options.json) {
      io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      io.stderr.write(`CSV: ${csvPath}\n`);
    } else {
      io.stdout.write(formatSummary(report, { from: options.from, to: options.to, csv: options.csv, csvPath }));
    }
    return 0;
  } catch (error) {
    progress.finish();
    if (io.signal?.aborted) {
      io.stderr.write('reconcile: interrupted\n');
      return 130;
    }
    io.stderr.write(`reconcile: ${failureMessage(error, options)}\n`);
    return 1;
  } finally {
    await dispatcher.destroy().catch(() => undefined);
  }
}

/** The whole command: arguments, then the run; resolves to the exit code (2 for a bad argument). */
export async function runCli(argv: readonly string[], env: Env, io: ReconcileIo): Promise<number> {
  const parsed = parseArguments(argv, env);
  if (parsed.kind === 'help') {
    io.stdout.write(USAGE);
    return 0;
  }
  if (parsed.kind === 'invalid') {
    io.stderr.write(`reconcile: ${parsed.message}\n\n${USAGE}`);
    return 2;
  }
  return runReconcile(parsed.options, io);
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

function clip(text: string): string {
  return text.length > 120 ? `${text.slice(0, 120)}…` : text;
}

export async function main(): Promise<void> {
  const controller = new AbortController();
  process.on('SIGINT', () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  });
  process.exitCode = await runCli(process.argv.slice(2), process.env, {
    stdout: process.stdout,
    stderr: process.stderr,
    isTTY: Boolean(process.stderr.isTTY),
    columns: process.stderr.columns,
    signal: controller.signal,
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`reconcile: unexpected error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
