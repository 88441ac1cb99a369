/**
 * What the BFF needs from Khipu, in our own terms (camelCase, integer centavos, nulls for absent values), independent
 * of the transport: KhipuClient speaks API 2.0 (form bodies, HMAC-signed); an API 3.0 transport (x-api-key, JSON)
 * can implement the same interface. Every method throws ProviderError('khipu', code) on failure.
 */
import type { Centavos } from '../../../shared/money.js';

export type KhipuPaymentStatus = 'pending' | 'verifying' | 'done';

/** Khipu's full view of a payment (PaymentsResponse). Empty strings from Khipu arrive as null. */
export type KhipuPayment = {
  paymentId: string;
  paymentUrl: string;
  simplifiedTransferUrl: string | null;
  transferUrl: string | null;
  appUrl: string | null;
  readyForTerminal: boolean;
  notificationToken: string | null;
  /** Khipu's Long, as a string. */
  receiverId: string;
  /** ISO-8601, as Khipu sends it. */
  conciliationDate: string | null;
  subject: string;
  amount: Centavos;
  currency: string;
  status: KhipuPaymentStatus;
  /** pending | normal | marked-paid-by-receiver | rejected-by-payer | marked-as-abuse | reversed ('' when absent). */
  statusDetail: string;
  body: string | null;
  receiptUrl: string | null;
  returnUrl: string | null;
  cancelUrl: string | null;
  notifyUrl: string | null;
  notifyApiVersion: string | null;
  expiresDate: string | null;
  bank: string | null;
  bankId: string | null;
  payerName: string | null;
  payerEmail: string | null;
  transactionId: string | null;
  custom: string | null;
  paymentMethod: string | null;
  fundsSource: string | null;
  outOfDateConciliation: boolean | null;
};

export type CreatePaymentInput = {
  subject: string;
  /** ISO-4217, e.g. MXN. */
  currency: string;
  amount: Centavos;
  /** Our order reference: Khipu echoes it, and a notification is only accepted when it matches. */
  transactionId: string;
  body?: string;
  bankId?: string;
  returnUrl?: string;
  cancelUrl?: string;
  notifyUrl?: string;
  notifyApiVersion?: string;
  expiresDate?: Date;
  payerName?: string;
  payerEmail?: string;
  sendEmail?: boolean;
  /** Up to 4096 characters, echoed by Khipu. */
  custom?: string;
};

/** PaymentsCreateResponse. */
export type CreatedPayment = {
  paymentId: string;
  paymentUrl: string;
  simplifiedTransferUrl: string | null;
  transferUrl: string | null;
  appUrl: string | null;
  readyForTerminal: boolean;
};

export type KhipuBankItem = {
  bankId: string;
  name: string;
  /** Khipu's note about the bank, to show as is. */
  message: string;
  minAmount: Centavos | null;
  type: string;
  /** The parent bank's id ('' when none). */
  parent: string;
};

export type KhipuPaymentMethod = { id: string; name: string; logoUrl: string | null };

export interface KhipuApi {
  banks(): Promise<KhipuBankItem[]>;
  createPayment(input: CreatePaymentInput): Promise<CreatedPayment>;
  /** Unknown token: ProviderError NOT_FOUND (a forged or mistaken notification). */
  getPaymentByNotificationToken(notificationToken: string): Promise<KhipuPayment>;
  /** Unknown id: ProviderError NOT_FOUND. */
  getPayment(paymentId: string): Promise<KhipuPayment>;
  /** Only pending payments can be deleted. */
  deletePayment(paymentId: string): Promise<void>;
  confirmPayment(paymentId: string): Promise<void>;
  /** Without an amount, the whole payment. */
  refund(paymentId: string, amount?: Centavos): Promise<{ message: string }>;
  paymentMethods(merchantId: string): Promise<KhipuPaymentMethod[]>;
  /** Integrators only: creates a receiver account; the secret is returned once and never logged. */
  createReceiver(input: Record<string, string>): Promise<{ receiverId: string; secret: string }>;
  close(): Promise<void>;
}
