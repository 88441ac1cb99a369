/** The checkout's steps in order, and where a stored checkout resumes. Pure: no DOM. */
import type { CheckoutView } from '../shared/contract.js';

export const STEPS = ['curp', 'product', 'plan', 'contact', 'consents', 'payment', 'confirmation'] as const;
export type StepName = (typeof STEPS)[number];

/** The first step whose data the checkout does not have yet. */
export function resumeStep(checkout: CheckoutView): StepName {
  if (checkout.status === 'registered' && checkout.order) return 'confirmation';
  if (!checkout.product || !checkout.quote) return 'product';
  if (checkout.planCount === null) return 'plan';
  if (!checkout.contact || !checkout.address) return 'contact';
  const { terms, privacy, trust } = checkout.consents;
  if (!(terms && privacy && trust)) return 'consents';
  return 'payment';
}

/**
 * Whether the checkout's payment is one the customer pays at a provider's page and it is not final yet: the
 * confirmation keeps checking it and the session is kept so a reload does too. Pay later is left to KASU's email.
 */
export function awaitsPayment(checkout: CheckoutView | null): boolean {
  const payment = checkout?.payment;
  return payment?.method === 'khipu' && (payment.status === 'pending' || payment.status === 'verifying');
}
