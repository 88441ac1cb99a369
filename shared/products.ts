/**
 * What is sold and how: products with their age limits, payment methods and the documents a customer accepts.
 * Plain constants (no zod) so the widget's first paint can use them; contract.ts builds the schemas.
 */

export const PRODUCTS = ['Funerario', 'Universidad', 'Retiro'] as const;
export type Product = (typeof PRODUCTS)[number];

/** Age limits per product (inclusive), checked on our side before KASU is asked (KASU's 406 is the backstop). */
export const PRODUCT_AGE_LIMITS: Record<Product, { minAge: number; maxAge: number }> = {
  Funerario: { minAge: 2, maxAge: 69 },
  Universidad: { minAge: 0, maxAge: 7 },
  Retiro: { minAge: 18, maxAge: 64 },
};

export const PAYMENT_METHODS = ['email', 'khipu', 'card'] as const;
export type PaymentMethod = (typeof PAYMENT_METHODS)[number];

export const CONSENT_DOCUMENTS = ['terms', 'privacy', 'trust'] as const;
export type ConsentDocument = (typeof CONSENT_DOCUMENTS)[number];
