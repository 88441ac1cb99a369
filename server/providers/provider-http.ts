/** What every provider adapter shares: its own connection pool with explicit timeouts, and parsing answers. */
import { Agent } from 'undici';
import type { z } from 'zod';
import { ProviderError } from '../errors.js';

export type ProviderTimeouts = { connectMs: number; headersMs: number; bodyMs: number };

/** One provider's connection pool: explicit connect, headers and body timeouts, a bounded number of connections. */
export function providerAgent(timeouts: ProviderTimeouts): Agent {
  return new Agent({
    connect: { timeout: timeouts.connectMs },
    headersTimeout: timeouts.headersMs,
    bodyTimeout: timeouts.bodyMs,
    connections: 16,
  });
}

export type ProviderAnswer = { status: number; headers: Record<string, string | string[] | undefined>; text: string };

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
