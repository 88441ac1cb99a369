import { LitElement, css, html, nothing } from 'lit';
import type { CheckoutView, PaymentView } from '../../shared/contract.js';
import { describePlan, type Text } from '../i18n.js';
import type { PayOffer } from '../session.js';
import { formStyles, tokens } from '../styles.js';
import { KasuPayAgainEvent } from './step-events.js';

/**
 * Step 7: the registered purchase: policy number, reference, product, plan and amounts; for a purchase paid with
 * Khipu or by card, where its payment stands; for a card, the card and the schedule of charges
 * (`<kasu-card-schedule>`, loaded when needed).
 *
 * @fires kasu-pay-again - the customer wants to go back to Khipu's page to pay
 * @csspart summary - the list of purchase details
 * @csspart policy - the policy number
 * @csspart payment-status - where the Khipu payment stands
 * @csspart payment-button - "Volver a Khipu para pagar" (or "Pagar con Khipu" if they never got there)
 * @csspart card - the card charged (card purchases)
 * @csspart schedule - the instalments with their dates, amounts and statuses (card purchases)
 */
export class KasuStepConfirmation extends LitElement {
  static override styles = [
    tokens,
    formStyles,
    css`
      dl {
        display: grid;
        /* A long unbroken value (a policy number) wraps instead of widening the checkout. */
        grid-template-columns: minmax(0, max-content) minmax(0, 1fr);
        gap: 0.5rem 1rem;
        margin: var(--_k-space) 0;
      }
      dt {
        font-weight: 600;
      }
      dd {
        margin: 0;
        overflow-wrap: anywhere;
      }
      .policy {
        font-size: 1.25em;
        font-weight: 700;
        letter-spacing: 0.03em;
      }
      .payment {
        padding-left: 0.75rem;
        border-left: 4px solid var(--_k-primary);
      }
      .payment p {
        margin: 0.25rem 0;
      }
    `,
  ];

  static override properties = {
    text: { attribute: false },
    checkout: { attribute: false },
    leaving: { type: Boolean },
    payOffer: { attribute: false },
    waitOver: { attribute: false },
  };

  declare text: Text;
  /** The registered checkout, with its order and payment. */
  declare checkout: CheckoutView | null;
  /** The page is on its way to Khipu. */
  declare leaving: boolean;
  /**
   * Whether to offer Khipu's page for a pending payment: `again` when the customer came back by cancelling there,
   * `due` when they never got there (say the answer to their purchase was lost and the page reloaded).
   */
  declare payOffer: PayOffer | null;
  /** The checkout stopped checking the payment without a final answer. */
  declare waitOver: boolean;

  constructor() {
    super();
    this.checkout = null;
    this.leaving = false;
    this.payOffer = null;
    this.waitOver = false;
  }

  override updated(): void {
    // Without it the confirmation still says everything but the schedule.
    if (this.checkout?.subscription) void import('../card/card-elements.js').catch(() => undefined);
  }

  #onPayAgain(): void {
    this.dispatchEvent(new KasuPayAgainEvent());
  }

  #renderPayment(payment: PaymentView) {
    const t = this.text;
    const { status } = payment;
    let detail;
    let action: unknown = nothing;
    if (this.leaving) {
      detail = t.leavingForKhipu;
    } else if (status === 'paid') {
      detail = t.paymentPaid(t.money(payment.amount), payment.paidAt ? t.dateTime(payment.paidAt) : null);
    } else if (status === 'pending' && this.payOffer && payment.redirectUrl) {
      const again = this.payOffer === 'again';
      detail = again ? t.paymentCancelledOnKhipu : t.paymentDue;
      action = html`<button part="payment-button" type="button" @click=${this.#onPayAgain}>
        ${again ? t.payAgain : t.payNow}
      </button>`;
    } else if (status === 'pending' || status === 'verifying') {
      detail = this.waitOver ? `${t.paymentWaiting} ${t.paymentWaitOver}` : t.paymentWaiting;
    } else {
      detail = t.paymentEnded;
    }
    return html`
      <div part="payment-status" class="payment">
        <p><strong>${t.paymentStatuses[status]}</strong></p>
        <p>${detail}</p>
        ${action}
      </div>
    `;
  }

  override render() {
    const t = this.text;
    const order = this.checkout?.order;
    if (!this.checkout || !order) return html``;
    const plan = {
      count: order.instalments,
      instalment: order.instalmentAmount,
      total: order.instalmentAmount * order.instalments,
    };
    const email = this.checkout.contact?.email;
    const payment = this.checkout.payment;
    return html`
      <p>${t.confirmationIntro}</p>
      ${payment && payment.method !== 'email' ? this.#renderPayment(payment) : nothing}
      <dl part="summary">
        <dt>${t.policyNumber}</dt>
        <dd>
          ${order.policy
            ? html`<span part="policy" class="policy">${order.policy}</span>`
            : html`<span part="policy">${t.policyPending}</span>`}
        </dd>
        <dt>${t.reference}</dt>
        <dd>${order.reference}</dd>
        ${this.checkout.product
          ? html`<dt>${t.product}</dt>
              <dd>${t.productNames[this.checkout.product]}</dd>`
          : ''}
        <dt>${t.plan}</dt>
        <dd>${describePlan(t, plan)}</dd>
        ${plan.count > 1
          ? html`<dt>${t.instalment}</dt>
              <dd>${t.money(plan.instalment)}</dd>`
          : ''}
        <dt>${t.total}</dt>
        <dd>${t.money(plan.total)}</dd>
      </dl>
      ${order.paymentMethod === 'email'
        ? html`<p>${email ? t.paymentLinkSent(email) : t.paymentLinkSentNoEmail}</p>`
        : ''}
      ${this.checkout.subscription
        ? html`<kasu-card-schedule
            exportparts="card, schedule"
            .text=${t}
            .subscription=${this.checkout.subscription}
          ></kasu-card-schedule>`
        : ''}
    `;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'kasu-step-confirmation': KasuStepConfirmation;
  }
}
