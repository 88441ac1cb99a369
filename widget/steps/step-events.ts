/**
 * Intent events the steps send up to `<kasu-checkout>`. Like every kasu event they bubble and are composed;
 * the flow controller stops them once handled, so the host page only sees the documented public events.
 */
import type { Address, Consents, Contact, PaymentMethod, Product, TokenizedCard } from '../../shared/contract.js';

const OPTIONS = { bubbles: true, composed: true } as const;

export class KasuCurpSubmitEvent extends Event {
  static readonly eventName = 'kasu-curp-submit';
  /** Well formed, upper case. */
  readonly curp: string;
  constructor(curp: string) {
    super(KasuCurpSubmitEvent.eventName, OPTIONS);
    this.curp = curp;
  }
}

export class KasuProductSelectEvent extends Event {
  static readonly eventName = 'kasu-product-select';
  readonly product: Product;
  constructor(product: Product) {
    super(KasuProductSelectEvent.eventName, OPTIONS);
    this.product = product;
  }
}

export class KasuPlanSelectEvent extends Event {
  static readonly eventName = 'kasu-plan-select';
  readonly planCount: number;
  constructor(planCount: number) {
    super(KasuPlanSelectEvent.eventName, OPTIONS);
    this.planCount = planCount;
  }
}

export class KasuContactSubmitEvent extends Event {
  static readonly eventName = 'kasu-contact-submit';
  readonly contact: Contact;
  readonly address: Address;
  constructor(contact: Contact, address: Address) {
    super(KasuContactSubmitEvent.eventName, OPTIONS);
    this.contact = contact;
    this.address = address;
  }
}

export class KasuConsentsSubmitEvent extends Event {
  static readonly eventName = 'kasu-consents-submit';
  readonly consents: Consents;
  constructor(consents: Consents) {
    super(KasuConsentsSubmitEvent.eventName, OPTIONS);
    this.consents = consents;
  }
}

export class KasuPaymentSubmitEvent extends Event {
  static readonly eventName = 'kasu-payment-submit';
  readonly paymentMethod: PaymentMethod;
  /** Khipu: the bank the customer chose, or null to choose it on Khipu's page. */
  readonly khipuBankId: string | null;
  /** Card: the tokenizer's card; the customer has also authorised recurring charges. */
  readonly card: TokenizedCard | null;
  constructor(paymentMethod: PaymentMethod, khipuBankId: string | null = null, card: TokenizedCard | null = null) {
    super(KasuPaymentSubmitEvent.eventName, OPTIONS);
    this.paymentMethod = paymentMethod;
    this.khipuBankId = khipuBankId;
    this.card = card;
  }
}

/** The payment step needs the card tokenizer frame (the customer chose to pay by card). */
export class KasuCardSessionRequestEvent extends Event {
  static readonly eventName = 'kasu-card-session-request';
  constructor() {
    super(KasuCardSessionRequestEvent.eventName, OPTIONS);
  }
}

/** The payment step needs Khipu's bank list (the customer chose to pay by transfer). */
export class KasuBanksRequestEvent extends Event {
  static readonly eventName = 'kasu-banks-request';
  constructor() {
    super(KasuBanksRequestEvent.eventName, OPTIONS);
  }
}

/** The customer wants to go back to the provider's page to pay the open payment. */
export class KasuPayAgainEvent extends Event {
  static readonly eventName = 'kasu-pay-again';
  constructor() {
    super(KasuPayAgainEvent.eventName, OPTIONS);
  }
}

declare global {
  interface GlobalEventHandlersEventMap {
    'kasu-curp-submit': KasuCurpSubmitEvent;
    'kasu-product-select': KasuProductSelectEvent;
    'kasu-plan-select': KasuPlanSelectEvent;
    'kasu-contact-submit': KasuContactSubmitEvent;
    'kasu-consents-submit': KasuConsentsSubmitEvent;
    'kasu-payment-submit': KasuPaymentSubmitEvent;
    'kasu-banks-request': KasuBanksRequestEvent;
    'kasu-card-session-request': KasuCardSessionRequestEvent;
    'kasu-pay-again': KasuPayAgainEvent;
  }
}
