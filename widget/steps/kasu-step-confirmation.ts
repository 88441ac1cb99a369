import { LitElement, css, html } from 'lit';
import type { CheckoutView } from '../../shared/contract.js';
import { describePlan, type Text } from '../i18n.js';
import { formStyles, tokens } from '../styles.js';

/**
 * Step 7: the registered purchase: policy number, reference, product, plan and amounts.
 *
 * @csspart summary - the list of purchase details
 * @csspart policy - the policy number
 */
export class KasuStepConfirmation extends LitElement {
  static override styles = [
    tokens,
    formStyles,
    css`
      dl {
        display: grid;
        grid-template-columns: max-content 1fr;
        gap: 0.5rem 1rem;
        margin: var(--_k-space) 0;
      }
      dt {
        font-weight: 600;
      }
      dd {
        margin: 0;
      }
      .policy {
        font-size: 1.25em;
        font-weight: 700;
        letter-spacing: 0.03em;
      }
    `,
  ];

  static override properties = {
    text: { attribute: false },
    checkout: { attribute: false },
  };

  declare text: Text;
  /** The registered checkout, with its order. */
  declare checkout: CheckoutView | null;

  constructor() {
    super();
    this.checkout = null;
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
    return html`
      <p>${t.confirmationIntro}</p>
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
    `;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'kasu-step-confirmation': KasuStepConfirmation;
  }
}
