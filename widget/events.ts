/**
 * The public events of `<kasu-checkout>`. All bubble and are composed, so a host page can listen on the element
 * or on any ancestor. Their payload is in `detail`, for pages written in plain JavaScript.
 */
import type { PaymentMethod, PaymentStatus } from '../shared/contract.js';
import type { ErrorCode } from '../shared/errors.js';
import type { StepName } from './flow.js';

const OPTIONS = { bubbles: true, composed: true } as const;

/** The first step is on screen and usable (after a resume, the resumed step). Fired once. */
export class KasuReadyEvent extends CustomEvent<{ step: StepName }> {
  static readonly eventName = 'kasu-ready';
  constructor(step: StepName) {
    super(KasuReadyEvent.eventName, { ...OPTIONS, detail: { step } });
  }
}

export type KasuStepChangeDetail = {
  step: StepName;
  /** Zero-based position of `step`; the progress text shows `index + 1`. */
  index: number;
  total: number;
};

/** Another step has been rendered. */
export class KasuStepChangeEvent extends CustomEvent<KasuStepChangeDetail> {
  static readonly eventName = 'kasu-step-change';
  constructor(detail: KasuStepChangeDetail) {
    super(KasuStepChangeEvent.eventName, { ...OPTIONS, detail });
  }
}

export type KasuCompleteDetail = {
  checkoutId: string;
  /** Our order reference, the one payment providers see. */
  reference: string;
  /** KASU's policy number; null when KASU has not assigned it yet. */
  policy: string | null;
};

/** The purchase is registered with KASU. */
export class KasuCompleteEvent extends CustomEvent<KasuCompleteDetail> {
  static readonly eventName = 'kasu-complete';
  constructor(detail: KasuCompleteDetail) {
    super(KasuCompleteEvent.eventName, { ...OPTIONS, detail });
  }
}

export type KasuPaymentChangeDetail = {
  /** The payment's new status: `paid` is final and good; `expired`, `cancelled` and `failed` are final and bad. */
  status: PaymentStatus;
  method: PaymentMethod;
};

/**
 * The status of the purchase's payment changed since the page last heard of it (while the customer waits on the
 * confirmation after paying with Khipu, including right after coming back from Khipu's page).
 */
export class KasuPaymentChangeEvent extends CustomEvent<KasuPaymentChangeDetail> {
  static readonly eventName = 'kasu-payment-change';
  constructor(detail: KasuPaymentChangeDetail) {
    super(KasuPaymentChangeEvent.eventName, { ...OPTIONS, detail });
  }
}

/** A request to the BFF failed; `code` is one of shared/errors.ts. The customer already sees the message. */
export class KasuErrorEvent extends CustomEvent<{ code: ErrorCode }> {
  static readonly eventName = 'kasu-error';
  constructor(code: ErrorCode) {
    super(KasuErrorEvent.eventName, { ...OPTIONS, detail: { code } });
  }
}

declare global {
  interface GlobalEventHandlersEventMap {
    'kasu-ready': KasuReadyEvent;
    'kasu-step-change': KasuStepChangeEvent;
    'kasu-complete': KasuCompleteEvent;
    'kasu-payment-change': KasuPaymentChangeEvent;
    'kasu-error': KasuErrorEvent;
  }
}
