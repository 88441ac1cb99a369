/**
 * The checkout id and token kept in sessionStorage so that a reload resumes the purchase, and the return from a
 * payment provider too. Storage can throw (sandboxed iframes, privacy modes): then the widget simply does not resume.
 */
import type { PaymentMethod, PaymentStatus, TokenizedCard } from '../shared/contract.js';

const PREFIX = 'kasu-checkout:';

export type StoredSession = {
  id: string;
  token: string;
  /** A submit attempt whose outcome is unknown: a retry after a reload must repeat it as it was, with its key. */
  attempt?: SubmitAttempt;
  /**
   * Registered, with a payment still open at the provider: the page has had `kasu-complete`, this is the payment
   * status it last heard of (`kasu-payment-change` fires when a newer answer differs), and whether to offer the
   * provider's page (see PayOffer).
   */
  payment?: { status: PaymentStatus; offer?: PayOffer };
};

/** Offer the provider's page: `again` after the customer cancelled there, `due` when they never got there. */
export type PayOffer = 'again' | 'due';

export type SubmitAttempt = {
  key: string;
  method: PaymentMethod;
  /** Khipu: the bank chosen, and the page to come back to, as first sent. */
  khipuBankId?: string;
  returnUrl?: string;
  /**
   * Card: the tokenizer's card and the recurring-charge consent. Kept in memory only, never stored: after a reload
   * the frame asks for the card again, which makes a new token and so a new attempt.
   */
  card?: TokenizedCard;
  recurringConsent?: boolean;
};

/** One entry per BFF, so two widgets that talk to different BFFs do not overwrite each other. */
/** One stored checkout per BFF and per widget: several widgets on one page tell themselves apart by their `id`. */
export function sessionKey(apiBase: string, widgetId = ''): string {
  return `${PREFIX}${apiBase || 'same-origin'}${widgetId ? `#${widgetId}` : ''}`;
}

export function readSession(key: string): StoredSession | null {
  try {
    const raw = sessionStorage.getItem(key);
    if (raw === null) return null;
    const value: unknown = JSON.parse(raw);
    if (!isRecord(value) || typeof value.id !== 'string' || typeof value.token !== 'string') return null;
    const session: StoredSession = { id: value.id, token: value.token };
    const { attempt, payment } = value;
    if (isRecord(attempt) && typeof attempt.key === 'string' && isPaymentMethod(attempt.method)) {
      session.attempt = { key: attempt.key, method: attempt.method };
      if (typeof attempt.khipuBankId === 'string') session.attempt.khipuBankId = attempt.khipuBankId;
      if (typeof attempt.returnUrl === 'string') session.attempt.returnUrl = attempt.returnUrl;
    }
    // Only ever compared with the BFF's answer (a difference is reported to the page): no need to know every value.
    if (isRecord(payment) && typeof payment.status === 'string') {
      session.payment = { status: payment.status as PaymentStatus };
      if (payment.offer === 'again' || payment.offer === 'due') session.payment.offer = payment.offer;
    }
    return session;
  } catch {
    return null;
  }
}

export function writeSession(key: string, session: StoredSession): void {
  try {
    sessionStorage.setItem(key, JSON.stringify(session, (name, value: unknown) => (name === 'card' ? undefined : value)));
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
