/**
 * The BFF contract: every request and response body of API v1, as zod schemas.
 * The server parses requests with these; the widget parses responses with these; /openapi.json is generated from ENDPOINTS.
 */
import { z } from 'zod';
import { MX_STATE_CODES, normalizePhone } from './mexico.js';
import { ERROR_CODES } from './errors.js';
import { CONSENT_DOCUMENTS, PAYMENT_METHODS, PRODUCTS } from './products.js';

export * from './products.js';

export const CentavosSchema = z.number().int().nonnegative();
export const CurrencySchema = z.literal('MXN');
export const MoneySchema = z.object({ amount: CentavosSchema, currency: CurrencySchema });

export const ProductSchema = z.enum(PRODUCTS);
export const PaymentMethodSchema = z.enum(PAYMENT_METHODS);
export const ConsentDocumentSchema = z.enum(CONSENT_DOCUMENTS);

export const ErrorCodeSchema = z.enum(ERROR_CODES);
export const ErrorBodySchema = z.object({
  error: z.object({
    code: ErrorCodeSchema,
    message: z.string(),
    retryable: z.boolean(),
    requestId: z.string(),
    /** Field path (e.g. "contact.email") → error code or short reason. */
    fields: z.record(z.string(), z.string()).optional(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

export const CheckoutStatusSchema = z.enum([
  'open', // collecting data
  'registering', // submit claimed, KASU registration under way
  'registered', // KASU answered 201: policy number known
  'needs_review', // the outcome of a registration attempt is unknown; a person must look
]);
export type CheckoutStatus = z.infer<typeof CheckoutStatusSchema>;

// ---------- pieces ----------

export const CurpInputSchema = z.string().trim().min(1).max(40);

export const PhoneSchema = z
  .string()
  .max(30)
  .transform((value, ctx) => {
    const phone = normalizePhone(value);
    if (phone === null) {
      ctx.addIssue({ code: 'custom', message: 'PHONE_INVALID' });
      return z.NEVER;
    }
    return phone;
  });

export const ContactSchema = z.object({
  email: z.string().trim().toLowerCase().max(254).pipe(z.email({ message: 'EMAIL_INVALID' })),
  phone: PhoneSchema,
});
export type Contact = z.output<typeof ContactSchema>;

export const AddressSchema = z.object({
  street: z.string().trim().min(1).max(120),
  number: z.string().trim().min(1).max(20),
  neighborhood: z.string().trim().min(1).max(120),
  municipality: z.string().trim().min(1).max(120),
  postalCode: z.string().trim().regex(/^\d{5}$/, { message: 'POSTAL_CODE_INVALID' }),
  state: z.enum(MX_STATE_CODES),
});
export type Address = z.output<typeof AddressSchema>;

export const ConsentsSchema = z.object({ terms: z.boolean(), privacy: z.boolean(), trust: z.boolean() });
export type Consents = z.infer<typeof ConsentsSchema>;

export const PlanSchema = z.object({
  count: z.number().int().min(1),
  instalment: CentavosSchema,
  total: CentavosSchema,
});
export type Plan = z.infer<typeof PlanSchema>;

export const QuoteSchema = z.object({
  product: ProductSchema,
  /** KASU's resolved product code (for Funerario, the age band such as "30a49"). */
  kasuProduct: z.string(),
  currency: CurrencySchema,
  /** Cash price in centavos. */
  price: CentavosSchema,
  annualRatePercent: z.number().nonnegative(),
  plans: z.array(PlanSchema).min(1),
  quotedAt: z.iso.datetime(),
});
export type Quote = z.infer<typeof QuoteSchema>;

export const ProductEligibilitySchema = z.object({
  product: ProductSchema,
  eligible: z.boolean(),
  /** Why not, when not eligible. */
  reason: z.enum(['TOO_YOUNG', 'TOO_OLD']).optional(),
  minAge: z.number().int(),
  maxAge: z.number().int(),
});
export type ProductEligibility = z.infer<typeof ProductEligibilitySchema>;

export const LegalDocumentSchema = z.object({
  id: ConsentDocumentSchema,
  version: z.string(),
  url: z.url(),
});
export type LegalDocument = z.infer<typeof LegalDocumentSchema>;

export const OrderSchema = z.object({
  /** Our reference, unique per order; the one providers see. */
  reference: z.string(),
  policy: z.string().nullable(),
  kasuStatus: z.string().nullable(),
  paymentMethod: PaymentMethodSchema,
  currency: CurrencySchema,
  price: CentavosSchema,
  instalments: z.number().int().min(1),
  instalmentAmount: CentavosSchema,
  registeredAt: z.iso.datetime().nullable(),
});
export type Order = z.infer<typeof OrderSchema>;

export const PaymentStatusSchema = z.enum([
  'pending', // created, waiting for the customer (or for the KASU payment link, for pay later)
  'verifying', // the customer paid; the provider is confirming
  'paid',
  'expired',
  'cancelled',
  'failed',
]);
export type PaymentStatus = z.infer<typeof PaymentStatusSchema>;

/** The payment of the current instalment, as the customer sees it. */
export const PaymentViewSchema = z.object({
  id: z.string(),
  method: PaymentMethodSchema,
  status: PaymentStatusSchema,
  currency: CurrencySchema,
  amount: CentavosSchema,
  instalment: z.number().int().min(1),
  /** Where to send the customer to pay (Khipu's payment page); null when there is nothing to open. */
  redirectUrl: z.url().nullable(),
  paidAt: z.iso.datetime().nullable(),
});
export type PaymentView = z.infer<typeof PaymentViewSchema>;

export const InstalmentViewSchema = z.object({
  number: z.number().int().min(1),
  dueDate: z.iso.date(),
  amount: CentavosSchema,
  status: z.enum(['scheduled', 'paid', 'failed', 'review', 'cancelled']),
});
export type InstalmentView = z.infer<typeof InstalmentViewSchema>;

export const CheckoutViewSchema = z.object({
  id: z.string(),
  status: CheckoutStatusSchema,
  customer: z.object({
    curp: z.string(),
    birthDate: z.iso.date(),
    age: z.number().int(),
    sex: z.enum(['H', 'M', 'X']),
  }),
  products: z.array(ProductEligibilitySchema),
  product: ProductSchema.nullable(),
  quote: QuoteSchema.nullable(),
  planCount: z.number().int().nullable(),
  contact: ContactSchema.nullable(),
  address: AddressSchema.nullable(),
  consents: ConsentsSchema,
  documents: z.array(LegalDocumentSchema),
  paymentMethods: z.array(z.object({ method: PaymentMethodSchema, available: z.boolean() })),
  order: OrderSchema.nullable(),
  payment: PaymentViewSchema.nullable(),
  /** Card: the card on file and every instalment with its due date and status. */
  subscription: z
    .object({
      status: z.enum(['pending_card', 'active', 'past_due', 'cancelled', 'completed']),
      card: z.object({ brand: z.string(), last4: z.string() }),
      instalments: z.array(InstalmentViewSchema),
    })
    .nullable(),
  expiresAt: z.iso.datetime(),
});
export type CheckoutView = z.infer<typeof CheckoutViewSchema>;

// ---------- requests and responses ----------

export const CreateCheckoutRequestSchema = z.object({ curp: CurpInputSchema });
export type CreateCheckoutRequest = z.input<typeof CreateCheckoutRequestSchema>;
export const CreateCheckoutResponseSchema = z.object({
  checkout: CheckoutViewSchema,
  /** Send as `Authorization: Bearer <token>` on every later call for this checkout. */
  token: z.string(),
});
export type CreateCheckoutResponse = z.infer<typeof CreateCheckoutResponseSchema>;

export const QuoteRequestSchema = z.object({ product: ProductSchema });
export const QuoteResponseSchema = z.object({ quote: QuoteSchema, checkout: CheckoutViewSchema });
export type QuoteResponse = z.infer<typeof QuoteResponseSchema>;

export const UpdateCheckoutRequestSchema = z
  .object({
    product: ProductSchema,
    planCount: z.number().int().min(1).max(120),
    contact: ContactSchema,
    address: AddressSchema,
    consents: ConsentsSchema.partial(),
  })
  .partial()
  .strict();
export type UpdateCheckoutRequest = z.input<typeof UpdateCheckoutRequestSchema>;

export const CheckoutResponseSchema = z.object({ checkout: CheckoutViewSchema });
export type CheckoutResponse = z.infer<typeof CheckoutResponseSchema>;

/**
 * What we keep of the card the tokenizer frame posts back: its token, brand and last 4 digits. The frame's message
 * also carries the expiry (MM/YY); it is dropped here, so that no card number, CVV or expiry reaches our server.
 */
export const TokenizedCardSchema = z.object({
  token: z.string().min(1).max(200),
  last4: z.string().regex(/^\d{4}$/),
  brand: z.string().min(1).max(30),
});
export type TokenizedCard = z.infer<typeof TokenizedCardSchema>;

export const SubmitRequestSchema = z
  .object({
    paymentMethod: PaymentMethodSchema,
    /** Card: the tokenizer's answer. */
    card: TokenizedCardSchema.optional(),
    /** Card: the customer's explicit authorisation of recurring charges (its own checkbox). */
    recurringConsent: z.boolean().optional(),
    /** Khipu: the bank the customer chose (an id from GET /v1/khipu/banks); optional. */
    khipuBankId: z.string().min(1).max(64).optional(),
    /** Khipu: the partner page to come back to after paying or cancelling (its origin must be allowed). */
    returnUrl: z.url({ protocol: /^https?$/ }).max(2000).optional(),
  })
  .strict();
export type SubmitRequest = z.infer<typeof SubmitRequestSchema>;

/** The card tokenizer frame to embed for this checkout (the gateway's page: card data never reaches us). */
export const CardSessionRequestSchema = z.object({
  /** The partner page's origin (location.origin): the only origin the frame will post the token to. */
  origin: z.url({ protocol: /^https?$/ }).max(300),
}).strict();
export const CardSessionResponseSchema = z.object({
  tokenizerUrl: z.url(),
  /** The frame's origin: accept its message only from there. */
  tokenizerOrigin: z.string(),
  /** The text the customer accepts for recurring charges, and its version (kept as consent evidence). */
  recurringConsent: z.object({ version: z.string(), es: z.string(), en: z.string() }),
});
export type CardSessionResponse = z.infer<typeof CardSessionResponseSchema>;


export const KhipuBankSchema = z.object({
  id: z.string(),
  name: z.string(),
  /** Khipu's note about the bank, to show as is. */
  message: z.string(),
  minAmount: CentavosSchema.nullable(),
  type: z.string(),
  parent: z.string(),
});
export type KhipuBank = z.infer<typeof KhipuBankSchema>;
export const KhipuBanksResponseSchema = z.object({ banks: z.array(KhipuBankSchema) });
export type KhipuBanksResponse = z.infer<typeof KhipuBanksResponseSchema>;

export const IDEMPOTENCY_KEY_HEADER = 'Idempotency-Key';
export const IdempotencyKeySchema = z.string().min(8).max(255).regex(/^[\w.:-]+$/);

// ---------- the endpoint list behind /openapi.json ----------

export type Endpoint = {
  method: 'get' | 'post' | 'patch';
  path: string;
  summary: string;
  auth: 'none' | 'checkout';
  idempotent?: boolean;
  request?: z.ZodType;
  response: z.ZodType;
  status: number;
};

export const ENDPOINTS: Endpoint[] = [
  {
    method: 'post', path: '/v1/checkouts', summary: 'Start a checkout for a CURP: eligibility of every product.',
    auth: 'none', request: CreateCheckoutRequestSchema, response: CreateCheckoutResponseSchema, status: 201,
  },
  {
    method: 'get', path: '/v1/checkouts/{id}', summary: 'The checkout as stored (resume after a reload).',
    auth: 'checkout', response: CheckoutResponseSchema, status: 200,
  },
  {
    method: 'patch', path: '/v1/checkouts/{id}', summary: 'Save product, plan, contact, address and consents.',
    auth: 'checkout', request: UpdateCheckoutRequestSchema, response: CheckoutResponseSchema, status: 200,
  },
  {
    method: 'post', path: '/v1/checkouts/{id}/quote', summary: 'Price and instalment plans of a product.',
    auth: 'checkout', request: QuoteRequestSchema, response: QuoteResponseSchema, status: 200,
  },
  {
    method: 'post', path: '/v1/checkouts/{id}/card-session', summary: 'The card tokenizer frame for this checkout.',
    auth: 'checkout', request: CardSessionRequestSchema, response: CardSessionResponseSchema, status: 200,
  },
  {
    method: 'get', path: '/v1/khipu/banks', summary: 'Banks the customer can pay from with Khipu (optional choice).',
    auth: 'none', response: KhipuBanksResponseSchema, status: 200,
  },
  {
    method: 'post', path: '/v1/checkouts/{id}/submit',
    summary: 'Register with KASU exactly once (Idempotency-Key required) and start the chosen payment.',
    auth: 'checkout', idempotent: true, request: SubmitRequestSchema, response: CheckoutResponseSchema, status: 200,
  },
];
