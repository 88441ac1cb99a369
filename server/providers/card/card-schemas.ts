/**
 * zod schemas of the card gateway's answers (card-recurring-payment-api.txt and the same provider's public docs as
 * NOTES.md sums them up). Lenient where the document is loose: optional texts may be absent, null or "", amounts
 * may come as strings or numbers. `status` stays a plain string so that a value outside approved | rejected reaches
 * the outcome rule (and becomes PROVIDER_UNAVAILABLE there) with the rest of the answer for the log.
 */
import { z } from 'zod';

const OptionalText = z
  .union([z.string(), z.number()])
  .nullish()
  .transform((value) => (value === undefined || value === null || value === '' ? null : String(value)));

/** `{key, value:[…]}`; a single string value is accepted too. */
export const GatewayErrorEntrySchema = z.object({
  key: z.string(),
  value: z.union([z.array(z.string()), z.string()]).nullish().transform((value) => (value == null ? [] : Array.isArray(value) ? value : [value])),
});

export const GatewayErrorSchema = z.object({
  isSuccess: z.literal(false),
  errors: z.array(GatewayErrorEntrySchema).default([]),
});
export type GatewayError = z.output<typeof GatewayErrorSchema>;

/** create-user → {isSuccess:true} (anything else in the body is ignored). */
export const CreateUserResponseSchema = z.object({ isSuccess: z.literal(true) });

export const CardInfoSchema = z.object({
  token: z.string().min(1),
  cardInfo: z.object({
    bin: OptionalText.transform((value) => value ?? ''),
    last4Numbers: z.union([z.string(), z.number()]).transform(String),
    cardBrand: OptionalText.transform((value) => value ?? ''),
  }),
  isDefault: z.boolean().nullish().transform((value) => value ?? false),
});

/**
 * get-cards: the public docs show the card items; the envelope is assumed to be the gateway's usual
 * `{payload:[…], isSuccess:true}`. A bare array is accepted too.
 */
export const GetCardsResponseSchema = z.union([
  z.object({ isSuccess: z.literal(true), payload: z.array(CardInfoSchema).nullish().transform((cards) => cards ?? []) }).transform((body) => body.payload),
  z.array(CardInfoSchema),
]);

/** make-payment-token: the document's success answer; a decline is assumed to carry the same payload. */
export const PaymentTokenResponseSchema = z.object({
  isSuccess: z.boolean(),
  payload: z.object({
    responseCode: z.union([z.string(), z.number()]).transform(String),
    responseDescription: OptionalText,
    authorizationNumber: OptionalText,
    referenceNumber: OptionalText,
    status: z.string(),
    order: z
      .object({
        id: OptionalText,
        amount: z.union([z.string(), z.number()]).nullish(),
        currency: z.string().nullish(),
      })
      .nullish(),
  }),
  errors: z.array(GatewayErrorEntrySchema).nullish(),
});
export type PaymentTokenResponse = z.output<typeof PaymentTokenResponseSchema>;
