import { LitElement, css, html, nothing } from 'lit';
import type { CheckoutView } from '../../shared/contract.js';
import type { Text } from '../i18n.js';
import { tokens } from '../styles.js';
import { CARD_STRINGS, formatDueDate } from './card-text.js';

export type Subscription = NonNullable<CheckoutView['subscription']>;

/**
 * A card purchase on the confirmation: the card on file and every instalment with its due date, amount and status.
 *
 * @csspart card - the card on file
 * @csspart schedule - the table of instalments
 */
export class KasuCardSchedule extends LitElement {
  static override styles = [
    tokens,
    css`
      :host {
        display: grid;
        gap: calc(var(--_k-space) * 0.75);
      }
      p {
        margin: 0;
      }
      table {
        width: 100%;
        border-collapse: collapse;
        font-variant-numeric: tabular-nums;
      }
      caption {
        margin-bottom: 0.5rem;
        font-weight: 600;
        text-align: start;
      }
      th,
      td {
        padding: 0.4rem 0.5rem;
        border-bottom: 1px solid var(--_k-border);
        text-align: start;
      }
      .amount {
        text-align: end;
      }
    `,
  ];

  static override properties = {
    text: { attribute: false },
    subscription: { attribute: false },
  };

  declare text: Text;
  /** The checkout's subscription: the card and the schedule. */
  declare subscription: Subscription | null;

  constructor() {
    super();
    this.subscription = null;
  }

  override render() {
    const subscription = this.subscription;
    if (!subscription) return nothing;
    const locale = this.text.locale;
    const t = CARD_STRINGS[locale];
    const { card } = subscription;
    return html`
      <p part="card"><strong>${t.cardOnFile}:</strong> ${t.cardDescription(card.brand, card.last4)}</p>
      <table part="schedule">
        <caption>
          ${t.schedule}
        </caption>
        <thead>
          <tr>
            <th scope="col">${t.columns.number}</th>
            <th scope="col">${t.columns.dueDate}</th>
            <th scope="col" class="amount">${t.columns.amount}</th>
            <th scope="col">${t.columns.status}</th>
          </tr>
        </thead>
        <tbody>
          ${subscription.instalments.map(
            (instalment) => html`<tr>
              <th scope="row">${instalment.number}</th>
              <td>${formatDueDate(instalment.dueDate, locale)}</td>
              <td class="amount">${this.text.money(instalment.amount)}</td>
              <td>${t.instalmentStatuses[instalment.status]}</td>
            </tr>`,
          )}
        </tbody>
      </table>
    `;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'kasu-card-schedule': KasuCardSchedule;
  }
}
