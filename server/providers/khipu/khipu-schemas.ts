/**
 * zod schemas of Khipu API 2.0's answers, field by field from the document's models (sections 10–21).
 * Lenient where Khipu's JSON is known to vary: `receiver_id` is a Long (a number, or a string in some answers),
 * amounts are Doubles (numbers, or numeric strings from some proxies), optional fields may be absent, null or "".
 * Amounts come out as integer centavos: an amount with a fraction of a centavo is refused, never rounded, because
 * a notification is only accepted when the amount matches the order exactly.
 */
import { z } from 'zod';
import type { Centavos } from '../../../shared/money.js';

/**
 * A Khipu amount (JSON number or numeric string, up to 4 decimals) in centavos, or null when it is not a whole number
 * of centavos (or not an amount). Numbers are read through their shortest decimal form (1234.5 → "1234.5").
 */
export function khipuAmountToCentavos(value: number | string): Centavos | null {
  const text = typeof value === 'number' ? (Number.isFinite(value) ? String(value) : '') : value.trim();
  const match = /^(\d+)(?:\.(\d+))?$/.exec(text);
  if (!match) return null;
  const fraction = match[2] ?? '';
  if (/[1-9]/.test(fraction.slice(2))) return null;
  const centavos = Number(match[1]) * 100 + Number(fraction.slice(0, 2).padEnd(2, '0'));
  return Number.isSafeInteger(centavos) ? centavos : null;
}

const Amount = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const centavos = khipuAmountToCentavos(value);
  if (centavos === null) {
    ctx.addIssue({ code: 'custom', message: 'not an amount in whole centavos' });
    return z.NEVER;
  }
  return centavos;
});

/** A Long id: number or digit string (or any non-empty string), normalised to a string. */
const LongId = z.union([z.number().int().nonnegative().transform(String), z.string().trim().min(1)]);

/** An optional text field: absent, null and "" all become null. */
const OptionalText = z
  .string()
  .nullish()
  .transform((value) => (value === undefined || value === null || value === '' ? null : value));

const OptionalBoolean = z.boolean().nullish().transform((value) => value ?? null);

/** 11 PaymentsCreateResponse */
export const PaymentsCreateResponseSchema = z.object({
  payment_id: z.string().min(1),
  payment_url: z.string().min(1),
  simplified_transfer_url: OptionalText,
  transfer_url: OptionalText,
  webpay_url: OptionalText,
  app_url: OptionalText,
  ready_for_terminal: z.boolean().nullish().transform((value) => value ?? false),
});
export type PaymentsCreateResponse = z.output<typeof PaymentsCreateResponseSchema>;

/** 10 PaymentsResponse: every field of PaymentsCreateResponse, and the payment's data and state. */
export const PaymentsResponseSchema = PaymentsCreateResponseSchema.extend({
  notification_token: OptionalText,
  receiver_id: LongId,
  conciliation_date: OptionalText,
  subject: z.string(),
  amount: Amount,
  currency: z.string().min(1),
  status: z.enum(['pending', 'verifying', 'done']),
  status_detail: z.string().nullish().transform((value) => value ?? ''),
  body: OptionalText,
  picture_url: OptionalText,
  receipt_url: OptionalText,
  return_url: OptionalText,
  cancel_url: OptionalText,
  notify_url: OptionalText,
  notify_api_version: OptionalText,
  expires_date: OptionalText,
  attachment_urls: z.array(z.string()).nullish().transform((value) => value ?? []),
  bank: OptionalText,
  bank_id: OptionalText,
  payer_name: OptionalText,
  payer_email: OptionalText,
  personal_identifier: OptionalText,
  bank_account_number: OptionalText,
  out_of_date_conciliation: OptionalBoolean,
  transaction_id: OptionalText,
  custom: OptionalText,
  responsible_user_email: OptionalText,
  send_reminders: OptionalBoolean,
  send_email: OptionalBoolean,
  payment_method: OptionalText,
  funds_source: OptionalText,
});
export type PaymentsResponse = z.output<typeof PaymentsResponseSchema>;

/** 12 ReceiversCreateResponse (the document says String; a Long is accepted as for payments). */
export const ReceiversCreateResponseSchema = z.object({
  receiver_id: LongId,
  secret: z.string().min(1),
});
export type ReceiversCreateResponse = z.output<typeof ReceiversCreateResponseSchema>;

/** 14 BankItem */
export const BankItemSchema = z.object({
  bank_id: z.string().min(1),
  name: z.string().min(1),
  message: z.string().nullish().transform((value) => value ?? ''),
  min_amount: Amount.nullish().transform((value) => value ?? null),
  type: z.string().nullish().transform((value) => value ?? ''),
  parent: z.string().nullish().transform((value) => value ?? ''),
});
export type BankItem = z.output<typeof BankItemSchema>;

/** 13 BanksResponse */
export const BanksResponseSchema = z.object({ banks: z.array(BankItemSchema) });
export type BanksResponse = z.output<typeof BanksResponseSchema>;

/** 16 PaymentMethodItem */
export const PaymentMethodItemSchema = z.object({
  id: z.string().min(1),
  name: z.string(),
  logo_url: OptionalText,
});

/** 15 PaymentMethodsResponse (the list key is camelCase in Khipu's own answers). */
export const PaymentMethodsResponseSchema = z.object({ paymentMethods: z.array(PaymentMethodItemSchema) });
export type PaymentMethodsResponse = z.output<typeof PaymentMethodsResponseSchema>;

/** 17 SuccessResponse */
export const SuccessResponseSchema = z.object({ message: z.string() });
export type SuccessResponse = z.output<typeof SuccessResponseSchema>;

/** 21 ErrorItem */
export const ErrorItemSchema = z.object({ field: z.string(), message: z.string() });

/** 20 ValidationError (400). `errors` is tolerated absent: then nothing names a field. */
export const ValidationErrorSchema = z.object({
  status: z.number().int(),
  message: z.string(),
  errors: z.array(ErrorItemSchema).nullish().transform((value) => value ?? []),
});
export type ValidationError = z.output<typeof ValidationErrorSchema>;

/** 18 AuthorizationError (403) */
export const AuthorizationErrorSchema = z.object({ status: z.number().int(), message: z.string() });
export type AuthorizationError = z.output<typeof AuthorizationErrorSchema>;

/** 19 ServiceError (503) */
export const ServiceErrorSchema = z.object({ status: z.number().int(), message: z.string() });
export type ServiceError = z.output<typeof ServiceErrorSchema>;
