/**
 * What every provider adapter shares: its own connection pool with explicit timeouts, one call bounded end to end by
 * an overall deadline, and parsing answers.
 */
import { Agent, request, type Dispatcher } from 'undici';
import type { z } from 'zod';
import { ProviderError } from '../errors.js';

export type ProviderTimeouts = {
  /** Opening the connection (TCP, TLS). */
  connectMs: number;
  /** From the request written to the whole status line and headers (undici's headersTimeout). */
  headersMs: number;
  /** The longest silence between two pieces of the body (undici's bodyTimeout): inactivity, not a total. */
  bodyMs: number;
  /**
   * The overall deadline of one call, end to end: waiting for a pooled connection, connecting, sending, the headers
   * and the whole body. The inactivity timeouts above cannot stop a provider that keeps trickling bytes; this does.
   * Default (when left out): connectMs + headersMs + bodyMs + 1 s, a backstop that leaves undici's own timeouts
   * (checked only about every half second) to fire first. Parsing the text read (JSON, zod) comes after, synchronously.
   */
  totalMs?: number;
};

/** One provider's connection pool: explicit connect, headers and body timeouts, a bounded number of connections. */
export function providerAgent(timeouts: ProviderTimeouts): Agent {
  return new Agent({
    connect: { timeout: timeouts.connectMs },
    headersTimeout: timeouts.headersMs,
    bodyTimeout: timeouts.bodyMs,
    connections: 16,
  });
}

/** How late undici's headers and body timeouts may fire (its timers tick about every 500 ms). */
const UNDICI_TIMER_SLACK_MS = 1_000;

/** The overall deadline of one call with these timeouts, in milliseconds. */
export function callDeadlineMs(timeouts: ProviderTimeouts): number {
  return timeouts.totalMs ?? timeouts.connectMs + timeouts.headersMs + timeouts.bodyMs + UNDICI_TIMER_SLACK_MS;
}

/** `detail.reason` of a ProviderError when a call ran out of its overall deadline. */
export const DEADLINE_EXCEEDED = 'DEADLINE_EXCEEDED';

/** A call that ran out of its overall deadline (the transport error the adapters map, like undici's timeouts). */
export class ProviderDeadlineError extends Error {
  readonly code = DEADLINE_EXCEEDED;

  constructor(readonly deadlineMs: number) {
    super(`the provider call did not finish within its ${deadlineMs} ms deadline`);
    this.name = 'ProviderDeadlineError';
  }
}

export type ProviderAnswer = { status: number; headers: Record<string, string | string[] | undefined>; text: string };

export type ProviderCall = {
  method: 'GET' | 'POST' | 'DELETE';
  headers: Record<string, string>;
  body?: string;
  dispatcher: Dispatcher;
  timeouts: ProviderTimeouts;
  /** The caller's own reason to stop (e.g. its client went away), on top of the deadline. */
  signal?: AbortSignal;
};

/**
 * One provider call, end to end: the request, its status and headers, and its whole body (always read, whatever the
 * status, so the connection goes back to the pool), within the call's overall deadline (callDeadlineMs) as well as
 * undici's connect, headers and body timeouts. When the deadline passes the call is aborted (undici destroys its
 * connection) and rejects at once with ProviderDeadlineError, even while undici is still waiting for a connection.
 * Transport errors are thrown as they are, for the adapter to map (see transportDetail).
 */
export async function providerCall(url: string, call: ProviderCall): Promise<ProviderAnswer> {
  const deadlineMs = callDeadlineMs(call.timeouts);
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new ProviderDeadlineError(deadlineMs)), deadlineMs);
  const signal = call.signal ? AbortSignal.any([deadline.signal, call.signal]) : deadline.signal;
  let stop: () => void = () => {};
  // Rejects when the signal fires: undici only notices an abort once the request has a connection.
  const stopped = new Promise<never>((_resolve, reject) => {
    stop = () => reject(stopReason(signal));
  });
  try {
    if (signal.aborted) throw stopReason(signal);
    signal.addEventListener('abort', stop, { once: true });
    return await Promise.race([exchange(url, call, signal), stopped]);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', stop);
  }
}

async function exchange(url: string, call: ProviderCall, signal: AbortSignal): Promise<ProviderAnswer> {
  const response = await request(url, {
    method: call.method,
    headers: call.headers,
    ...(call.body === undefined ? {} : { body: call.body }),
    dispatcher: call.dispatcher,
    headersTimeout: call.timeouts.headersMs,
    bodyTimeout: call.timeouts.bodyMs,
    signal,
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, text };
}

function stopReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/**
 * A transport failure for `detail` and the log: `reason` is the error's string code (ECONNREFUSED, UND_ERR_…,
 * DEADLINE_EXCEEDED) or else its name (AbortError, TimeoutError: a DOMException's code is a number), and
 * `deadlineMs` when the deadline ran out. Nothing of the request (URL, headers, body) is in it.
 */
export function transportDetail(error: unknown): { reason: string; deadlineMs?: number } {
  if (error instanceof ProviderDeadlineError) return { reason: DEADLINE_EXCEEDED, deadlineMs: error.deadlineMs };
  const { code, name } = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; name?: unknown };
  return { reason: typeof code === 'string' ? code : typeof name === 'string' ? name : 'Error' };
}

/**
 * The answer's JSON, checked against `schema`. A body that is not JSON or not of the expected shape is the
 * provider failing: PROVIDER_UNAVAILABLE (retryable), with the first issues in `detail` for the log.
 * `outcomeUnknown`: the call changed something at the provider (a success status with a broken body may mean it
 * did happen), so the caller must not assume it did not.
 */
export function parseProviderAnswer<S extends z.ZodType>(
  provider: string,
  detail: Record<string, unknown>,
  answer: ProviderAnswer,
  schema: S,
  outcomeUnknown: boolean,
): z.output<S> {
  let json: unknown;
  try {
    json = JSON.parse(answer.text);
  } catch {
    json = undefined;
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return parsed.data;
  throw new ProviderError(provider, 'PROVIDER_UNAVAILABLE', {
    upstreamStatus: answer.status,
    detail: {
      ...detail,
      why: json === undefined ? 'answer is not JSON' : 'answer does not have the expected shape',
      issues: parsed.error.issues.slice(0, 5).map((issue) => `${issue.path.join('.')}: ${issue.message}`),
      ...(outcomeUnknown ? { outcomeUnknown: true } : {}),
    },
  });
}
