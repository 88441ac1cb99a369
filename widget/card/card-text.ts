/**
 * The card's copy, in Mexican Spanish and English. Kept apart from i18n.ts because it loads with the card's
 * elements, not in the first paint; the consent text itself comes from the BFF.
 */
import type { InstalmentView } from '../../shared/contract.js';
import type { Locale } from '../i18n.js';

const esMX = {
  frameTitle: 'Datos de tu tarjeta',
  cardSaved: (last4: string, brand: string) => `Tarjeta terminada en ${last4} (${brand})`,
  changeCard: 'Cambiar tarjeta',
  cardRequired: 'Escribe los datos de tu tarjeta y guárdala para continuar.',
  consentRequired: 'Debes autorizar los cargos a tu tarjeta para pagar con ella.',
  cardOnFile: 'Tarjeta',
  cardDescription: (brand: string, last4: string) => `${brand} terminada en ${last4}`,
  schedule: 'Calendario de pagos',
  columns: { number: 'Pago', dueDate: 'Fecha', amount: 'Monto', status: 'Estado' },
  instalmentStatuses: {
    scheduled: 'Programado',
    paid: 'Pagado',
    failed: 'Rechazado',
    review: 'En revisión',
    cancelled: 'Cancelado',
  } satisfies Record<InstalmentView['status'], string>,
};

export type CardStrings = typeof esMX;

const en: CardStrings = {
  frameTitle: 'Your card details',
  cardSaved: (last4, brand) => `Card ending in ${last4} (${brand})`,
  changeCard: 'Change card',
  cardRequired: 'Enter your card details and save the card to continue.',
  consentRequired: 'You must authorise the charges to your card to pay with it.',
  cardOnFile: 'Card',
  cardDescription: (brand, last4) => `${brand} ending in ${last4}`,
  schedule: 'Payment schedule',
  columns: { number: 'Payment', dueDate: 'Date', amount: 'Amount', status: 'Status' },
  instalmentStatuses: {
    scheduled: 'Scheduled',
    paid: 'Paid',
    failed: 'Declined',
    review: 'Under review',
    cancelled: 'Cancelled',
  },
};

export const CARD_STRINGS: Record<Locale, CardStrings> = { 'es-MX': esMX, en };

/** A due date ("2026-12-23") as the customer reads it: "23 de diciembre de 2026", "December 23, 2026". */
export function formatDueDate(isoDate: string, locale: Locale): string {
  // A calendar date, not an instant: formatted in UTC so no time zone moves it to the day before.
  return new Intl.DateTimeFormat(locale, { dateStyle: 'long', timeZone: 'UTC' }).format(new Date(`${isoDate}T00:00:00Z`));
}
