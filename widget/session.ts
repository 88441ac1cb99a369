/**
 * The checkout id and token kept in sessionStorage so that a reload resumes the purchase.
 * Storage can throw (sandboxed iframes, privacy modes): then the widget simply does not resume.
 */
import type { PaymentMethod } from '../shared/contract.js';

const PREFIX = 'kasu-checkout:';

export type StoredSession = {
  id: string;
  token: string;
  /** A submit attempt whose outcome is unknown: a retry after a reload must reuse its Idempotency-Key. */
  attempt?: SubmitAttempt;
};

export type SubmitAttempt = { key: string; method: PaymentMethod };

/** One entry per BFF, so two widgets that talk to different BFFs do not overwrite each other. */
export function sessionKey(apiBase: string): string {
  return `${PREFIX}${apiBase || 'same-origin'}`;
}

export function readSession(key: string): StoredSession | null {
  try {
    const raw = sessionStorage.getItem(key);
    if (raw === null) return null;
    const value: unknown = JSON.parse(raw);
    if (!isRecord(value) || typeof value.id !== 'string' || typeof value.token !== 'string') return null;
    const session: StoredSession = { id: value.id, token: value.token };
    const attempt = value.attempt;
    if (isRecord(attempt) && typeof attempt.key === 'string' && isPaymentMethod(attempt.method)) {
      session.attempt = { key: attempt.key, method: attempt.method };
    }
    return session;
  } catch {
    return null;
  }
}

export function writeSession(key: string, session: StoredSession): void {
  try {
    sessionStorage.setItem(key, JSON.stringify(session));
  } catch {
    // Not resumable after a reload; the purchase itself still works.
  }
}

export function clearSession(key: string): void {
  try {
    sessionStorage.removeItem(key);
  } catch {
    // Nothing was stored.
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function isPaymentMethod(value: unknown): value is PaymentMethod {
  return value === 'email' || value === 'khipu' || value === 'card';
}
