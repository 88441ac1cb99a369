/**
 * Following a payment that is still open after the customer comes back from the provider. Khipu notifies the BFF
 * usually within seconds and sometimes within minutes, so the checkout asks often at first, then less, then stops.
 * Loaded with a dynamic `import()` only on that confirmation, to keep it out of the first paint.
 */
import type { CheckoutView } from '../shared/contract.js';
import type { ApiClient, CheckoutAuth } from './api.js';

/** When to ask. Mutable so that browser tests can make the schedule fast. */
export const PAYMENT_POLLING = {
  /** Between checks during the first `fastForMs`. */
  fastMs: 2_000,
  fastForMs: 60_000,
  /** Between checks after that. */
  slowMs: 10_000,
  /** No more checks after this long: the customer is told they will hear by email. */
  giveUpAfterMs: 600_000,
};

export type PaymentWatch = {
  client: Pick<ApiClient, 'getCheckout'>;
  /** The checkout's credentials, looked up before every check: null ends the watch. */
  auth(): CheckoutAuth | null;
  /** A fresh view of the checkout; resolves to whether the payment is still worth asking about. */
  onCheckout(checkout: CheckoutView): boolean;
  /** The watch ended without a final answer: on time, or because the BFF no longer accepts the session. */
  onGiveUp(sessionRefused: boolean): void;
  /** Aborting stops the watch, including a check under way. */
  signal: AbortSignal;
};

/** Checks one at a time (the next is scheduled only once the previous has answered), until told to stop. */
export function watchPayment({ client, auth, onCheckout, onGiveUp, signal }: PaymentWatch): void {
  const started = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  signal.addEventListener('abort', () => clearTimeout(timer), { once: true });

  const check = async (): Promise<boolean> => {
    const credentials = auth();
    if (!credentials) return false;
    const result = await client.getCheckout(credentials, signal);
    if (signal.aborted) return false;
    if (result.ok) return onCheckout(result.data.checkout);
    // Blips are ridden out; an answer that will not change (the session expired) ends the watch.
    if (result.error.retryable) return true;
    onGiveUp(true);
    return false;
  };
  const schedule = () => {
    const elapsed = Date.now() - started;
    if (elapsed >= PAYMENT_POLLING.giveUpAfterMs) {
      onGiveUp(false);
      return;
    }
    const delay = elapsed < PAYMENT_POLLING.fastForMs ? PAYMENT_POLLING.fastMs : PAYMENT_POLLING.slowMs;
    timer = setTimeout(() => void check().then((again) => again && !signal.aborted && schedule()), delay);
  };
  if (!signal.aborted) schedule();
}
