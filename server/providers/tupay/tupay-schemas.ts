/**
 * Tupay (D24) reconciliation answers, parsed tolerantly: unknown fields are ignored, statuses are any string (the
 * document and NOTES.md disagree on the list and Tupay may add more), amounts become integer centavos.
 */
import { z } from 'zod';
import { pesosToCentavos } from '../../../shared/money.js';

/** A JSON number or a decimal string in pesos ("1234.5"), to integer centavos (rounded to the nearest). */
export const AmountSchema = z
  .union([z.number().finite().nonnegative(), z.string().trim().regex(/^\d+(?:\.\d+)?$/)])
  .transform((value) => pesosToCentavos(typeof value === 'number' ? value : Number(value)));

const IdSchema = z.union([z.number().int(), z.string().min(1)]).transform(String);
const OptionalText = z.string().nullish().transform((value) => value ?? null);
const OptionalAmount = AmountSchema.nullish().transform((value) => value ?? null);

export const TupayDepositSchema = z
  .looseObject({
    idDeposit: IdSchema,
    externalId: z.union([z.string(), z.number()]).nullish(),
    creationDate: z.string().min(1),
    country: z.string().nullish(),
    paymentMethodCode: z.string().nullish(),
    requestedPaymentMethod: z.string().nullish(),
    clientDocument: z.union([z.string(), z.number()]).nullish(),
    amount: AmountSchema,
    currency: z.string().nullish(),
    localAmount: OptionalAmount,
    localCurrency: OptionalText,
    fee: OptionalAmount,
    lastChangeDate: z.string().nullish(),
    status: z.string().min(1),
  })
  .transform((raw) => ({
    idDeposit: raw.idDeposit,
    externalId: raw.externalId == null ? null : String(raw.externalId),
    creationDate: raw.creationDate,
    country: raw.country ?? null,
    paymentMethodCode: raw.paymentMethodCode ?? null,
    requestedPaymentMethod: raw.requestedPaymentMethod ?? null,
    clientDocument: raw.clientDocument == null ? null : String(raw.clientDocument),
    /** Centavos of `currency`. */
    amount: raw.amount,
    currency: raw.currency ?? null,
    /** Centavos of `localCurrency`. */
    localAmount: raw.localAmount,
    localCurrency: raw.localCurrency,
    /** Centavos. */
    fee: raw.fee,
    lastChangeDate: raw.lastChangeDate ?? null,
    status: raw.status,
  }));

export const TupayCashoutSchema = z
  .looseObject({
    idCashout: IdSchema,
    externalId: z.union([z.string(), z.number()]).nullish(),
    creationDate: z.string().min(1),
    country: z.string().nullish(),
    currency: z.string().nullish(),
    amount: AmountSchema,
    fee: OptionalAmount,
    lastChangeDate: z.string().nullish(),
    status: z.string().min(1),
    clientDocument: z.union([z.string(), z.number()]).nullish(),
    reason: z.string().nullish(),
  })
  .transform((raw) => ({
    idCashout: raw.idCashout,
    externalId: raw.externalId == null ? null : String(raw.externalId),
    creationDate: raw.creationDate,
    country: raw.country ?? null,
    currency: raw.currency ?? null,
    /** Centavos of `currency`. */
    amount: raw.amount,
    /** Centavos. */
    fee: raw.fee,
    lastChangeDate: raw.lastChangeDate ?? null,
    status: raw.status,
    clientDocument: raw.clientDocument == null ? null : String(raw.clientDocument),
    reason: raw.reason ?? null,
  }));

export type TupayDeposit = z.output<typeof TupayDepositSchema>;
export type TupayCashout = z.output<typeof TupayCashoutSchema>;

/** One page: `{page, rows, maxRows, data}`. `rows` is this page's count, never a total. */
export function pageSchema<S extends z.ZodType>(record: S) {
  return z.looseObject({
    page: z.number().int().nonnegative().optional(),
    rows: z.number().int().nonnegative().optional(),
    maxRows: z.number().int().positive().optional(),
    data: z.array(record),
  });
}

/** Tupay's error body. */
export const TupayErrorSchema = z.looseObject({
  code: z.union([z.number(), z.string()]).optional(),
  description: z.string().optional(),
});
