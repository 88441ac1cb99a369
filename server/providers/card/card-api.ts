/**
 * What the BFF needs from the card gateway (recurring charges on a tokenised card), in our own terms: camelCase,
 * integer centavos. Every method throws ProviderError('card', code) on failure:
 *
 * | code                   | when                                                                               |
 * |------------------------|------------------------------------------------------------------------------------|
 * | NOT_FOUND              | the gateway does not know the customer (404 ResourceNotFoundException)             |
 * | PROVIDER_CONFIG_ERROR  | credentials, URL or data refused (400/401/403/other 4xx). With                      |
 * |                        | `detail.duplicateMerchantOrderId: true`: the gateway refused a merchantOrderId it   |
 * |                        | has already seen — the earlier charge with that id exists; see isDuplicateMerchantOrder |
 * | RATE_LIMITED           | 429                                                                                |
 * | PROVIDER_UNAVAILABLE   | 5xx, timeout, connection failure, unreadable or self-contradicting answer.           |
 * |                        | `detail.outcomeUnknown: true` on a charge or create-user that may have happened:     |
 * |                        | retry with the SAME merchantOrderId, never a new one (no status endpoint is public) |
 */
import type { Centavos } from '../../../shared/money.js';
import { ProviderError } from '../../errors.js';

export type CardCustomerInput = {
  /** Ours, alphanumeric, at most 100 characters. */
  customerId: string;
  /** At most 20 characters. */
  contractNumber: string;
  email: string;
  phoneNumber: string;
  address: string;
  zipCode: string;
};

export type CardOnFile = {
  token: string;
  bin: string;
  last4: string;
  /** As the gateway names it (the sandbox says visa, mastercard, amex). */
  brand: string;
  isDefault: boolean;
};

export type ChargeTokenInput = {
  customerId: string;
  /** Unique per transaction at the gateway; reuse it (never a new one) to retry a charge whose outcome is unknown. */
  merchantOrderId: string;
  amount: Centavos;
  /** ISO 4217, e.g. MXN. */
  currency: string;
  token: string;
};

export type CardCharge = {
  /** approved = isSuccess true + status approved + responseCode '00'; rejected = all three saying no. */
  outcome: 'approved' | 'rejected';
  responseCode: string;
  responseDescription: string | null;
  authorizationNumber: string | null;
  referenceNumber: string | null;
  /** payload.order.id: the reference to keep for later claims; null only on a rejection that has none. */
  orderId: string | null;
};

export interface CardApi {
  /** Creates the customer at the gateway; `created: false` when it already existed (not an error). */
  ensureCustomer(input: CardCustomerInput): Promise<{ created: boolean }>;
  /** The customer's tokenised cards (NOT_FOUND when the customer does not exist). */
  listCards(customerId: string): Promise<CardOnFile[]>;
  /** One sale on a token. A decline is a value (`outcome: 'rejected'`), not an error. */
  chargeToken(input: ChargeTokenInput): Promise<CardCharge>;
  close(): Promise<void>;
}

/** Whether an error is the gateway refusing a merchantOrderId it has already processed. */
export function isDuplicateMerchantOrder(error: unknown): boolean {
  return (
    error instanceof ProviderError &&
    error.code === 'PROVIDER_CONFIG_ERROR' &&
    error.detail?.duplicateMerchantOrderId === true
  );
}
