/** The checkout's steps in order, and where a stored checkout resumes. Pure: no DOM. */
import type { CheckoutView } from '../shared/contract.js';

export const STEPS = ['curp', 'product', 'plan', 'contact', 'consents', 'payment', 'confirmation'] as const;
export type StepName = (typeof STEPS)[number];

/**
 * Whether the purchase is over for the customer: registered, and not a card purchase whose card was declined (KASU
 * already has it, but it waits on the payment step for another card).
 */
export function isPurchased(checkout: CheckoutView): boolean {
  return checkout.status === 'registered' && checkout.order !== null && checkout.subscription?.status !== 'pending_card';
}

/** The first step whose data the checkout does not have yet. */
export function resumeStep(checkout: CheckoutView): StepName {
  if (isPurchased(checkout)) return 'confirmation';
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
