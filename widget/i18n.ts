/**
 * Every string the widget shows, in Mexican Spanish and English.
 * Error copy for catalogue codes lives in shared/errors.ts (pure data, shared with the server).
 */
import type { PaymentStatus, Plan } from '../shared/contract.js';
import type { ConsentDocument, PaymentMethod, Product } from '../shared/products.js';
import { errorMessage, isErrorCode, type Locale } from '../shared/errors.js';
import { formatMoney } from '../shared/money.js';
import type { StepName } from './flow.js';

export type { Locale };

/** Codes of errors found in the widget itself, shown next to the field they are about. */
export type FieldErrorCode =
  | 'REQUIRED'
  | 'CHOICE_REQUIRED'
  | 'ACCEPTANCE_REQUIRED'
  | 'EMAIL_INVALID'
  | 'PHONE_INVALID'
  | 'POSTAL_CODE_INVALID'
  | 'INVALID';

const esMX = {
  titles: {
    curp: 'Empieza con tu CURP',
    product: 'Elige tu producto',
    plan: 'Elige cómo pagar',
    contact: 'Tus datos de contacto y domicilio',
    consents: 'Revisa y acepta los documentos',
    payment: 'Forma de pago',
    confirmation: '¡Listo! Tu compra quedó registrada',
  } satisfies Record<StepName, string>,
  progress: (step: number, total: number) => `Paso ${step} de ${total}`,
  stepAnnouncement: (step: number, total: number, title: string) => `Paso ${step} de ${total}: ${title}`,
  back: 'Regresar',
  retry: 'Reintentar',
  restart: 'Empezar de nuevo',
  continue: 'Continuar',
  sending: 'Enviando…',
  loading: 'Cargando tu compra…',
  genericError: 'No pudimos continuar. Vuelve a intentar.',
  supportReference: (requestId: string) => `Folio para soporte: ${requestId}`,

  curpLabel: 'CURP',
  curpHint: 'Los 18 caracteres de tu Clave Única de Registro de Población, como aparecen en tu constancia.',

  productLegend: (age: number) => `Productos KASU para tu edad (${age} años)`,
  productNames: {
    Funerario: 'Funerario',
    Universidad: 'Universidad',
    Retiro: 'Retiro',
  } satisfies Record<Product, string>,
  productDescriptions: {
    Funerario: 'Servicio funerario completo para ti, pagado hoy a precio de hoy.',
    Universidad: 'Un fondo para la educación universitaria de tu hija o hijo.',
    Retiro: 'Ahorro para tu retiro con rendimiento garantizado.',
  } satisfies Record<Product, string>,
  ageRange: (min: number, max: number) => `Para personas de ${min} a ${max} años.`,
  tooYoung: (min: number) => `No disponible: la edad mínima es de ${min} años.`,
  tooOld: (max: number) => `No disponible: la edad máxima es de ${max} años.`,

  planLegend: (product: string, price: string) => `Planes de pago para ${product} (precio de contado ${price})`,
  planCash: (total: string) => `1 pago (contado) de ${total}`,
  planMonthly: (count: number, instalment: string, total: string) =>
    `${count} pagos mensuales de ${instalment} (total ${total})`,

  contactLegend: 'Contacto',
  addressLegend: 'Domicilio',
  fields: {
    'contact.email': 'Correo electrónico',
    'contact.phone': 'Teléfono celular (10 dígitos)',
    'address.street': 'Calle',
    'address.number': 'Número exterior e interior',
    'address.neighborhood': 'Colonia',
    'address.municipality': 'Municipio o alcaldía',
    'address.postalCode': 'Código postal',
    'address.state': 'Estado',
  },
  statePlaceholder: 'Selecciona tu estado',

  consentsLegend: 'Para continuar, acepta los tres documentos',
  consentLabels: {
    terms: 'Acepto los términos y condiciones',
    privacy: 'Leí y acepto el aviso de privacidad',
    trust: 'Acepto el contrato del fideicomiso F/0003',
  } satisfies Record<ConsentDocument, string>,
  consentLinks: {
    terms: 'Leer los términos y condiciones',
    privacy: 'Leer el aviso de privacidad',
    trust: 'Leer el contrato del fideicomiso F/0003',
  } satisfies Record<ConsentDocument, string>,
  opensInNewTab: '(se abre en otra pestaña)',

  paymentLegend: '¿Cómo quieres pagar?',
  paymentSummary: (product: string, plan: string) => `Vas a contratar ${product}: ${plan}.`,
  paymentMethods: {
    email: 'Pagar después',
    khipu: 'Transferencia bancaria',
    card: 'Tarjeta (cargo recurrente)',
  } satisfies Record<PaymentMethod, string>,
  paymentDescriptions: {
    email: 'Te enviamos la liga de pago por correo.',
    khipu: 'Paga desde la app o el portal de tu banco con Khipu.',
    card: 'Cargamos cada mensualidad a tu tarjeta en su fecha.',
  } satisfies Record<PaymentMethod, string>,
  comingSoon: 'Próximamente',
  submitPurchase: 'Confirmar compra',
  bankLabel: 'Tu banco (opcional)',
  bankOnKhipu: 'Lo elijo en Khipu',
  banksLoading: 'Cargando la lista de bancos…',
  banksFailed: 'No pudimos cargar la lista de bancos: podrás elegir tu banco en Khipu.',
  leavingForKhipu: 'Te llevamos a Khipu para pagar…',
  /** The rest of the card copy is in card/card-text.ts, loaded with the card's elements. */
  cardLoading: 'Cargando el formulario de tarjeta…',

  confirmationIntro: 'Gracias por confiar en KASU. Guarda estos datos.',
  policyNumber: 'Número de póliza',
  policyPending: 'Te lo enviaremos por correo en cuanto KASU lo asigne.',
  reference: 'Referencia de compra',
  product: 'Producto',
  plan: 'Plan',
  instalment: 'Cada pago',
  total: 'Total',
  paymentLinkSent: (email: string) => `Te enviamos la liga de pago a ${email}.`,
  paymentLinkSentNoEmail: 'Te enviamos la liga de pago por correo.',
  paymentStatuses: {
    pending: 'Pago pendiente',
    verifying: 'Pago en verificación',
    paid: 'Pagado',
    expired: 'Pago vencido',
    cancelled: 'Pago cancelado',
    failed: 'Pago no completado',
  } satisfies Record<PaymentStatus, string>,
  paymentWaiting: 'Estamos esperando la confirmación de tu pago…',
  paymentWaitOver: 'Te avisaremos por correo en cuanto se confirme.',
  paymentPaid: (amount: string, date: string | null) =>
    // The date may end with "a.m." or "p.m.": no second full stop after it.
    date ? `Recibimos tu pago de ${amount} el ${date}`.replace(/\.?$/, '.') : `Recibimos tu pago de ${amount}.`,
  /** Under "Pago vencido", "Pago cancelado" or "Pago no completado". */
  paymentEnded: 'No recibimos este pago. Tu compra sigue registrada.',
  paymentCancelledOnKhipu: 'Cancelaste el pago en Khipu. Tu compra sigue registrada: puedes volver a Khipu para pagar.',
  payAgain: 'Volver a Khipu para pagar',
  paymentDue: 'Falta tu pago: continúa en Khipu.',
  payNow: 'Pagar con Khipu',

  fieldErrors: {
    REQUIRED: 'Este dato es obligatorio.',
    CHOICE_REQUIRED: 'Elige una opción para continuar.',
    ACCEPTANCE_REQUIRED: 'Debes aceptar este documento para continuar.',
    EMAIL_INVALID: 'Escribe un correo válido, por ejemplo nombre@correo.com.',
    PHONE_INVALID: 'Escribe los 10 dígitos de tu teléfono, por ejemplo 55 1234 5678.',
    POSTAL_CODE_INVALID: 'El código postal tiene 5 dígitos.',
    INVALID: 'Revisa este dato.',
  } satisfies Record<FieldErrorCode, string>,
};

export type Strings = typeof esMX;

const en: Strings = {
  titles: {
    curp: 'Start with your CURP',
    product: 'Choose your product',
    plan: 'Choose how to pay',
    contact: 'Your contact details and address',
    consents: 'Review and accept the documents',
    payment: 'Payment method',
    confirmation: 'Done! Your purchase is registered',
  },
  progress: (step, total) => `Step ${step} of ${total}`,
  stepAnnouncement: (step, total, title) => `Step ${step} of ${total}: ${title}`,
  back: 'Back',
  retry: 'Try again',
  restart: 'Start again',
  continue: 'Continue',
  sending: 'Sending…',
  loading: 'Loading your purchase…',
  genericError: 'We could not continue. Please try again.',
  supportReference: (requestId) => `Support reference: ${requestId}`,

  curpLabel: 'CURP',
  curpHint: 'The 18 characters of your Clave Única de Registro de Población, as shown on your CURP certificate.',

  productLegend: (age) => `KASU products for your age (${age})`,
  productNames: { Funerario: 'Funeral plan', Universidad: 'University fund', Retiro: 'Retirement savings' },
  productDescriptions: {
    Funerario: 'A complete funeral service for you, paid today at today’s price.',
    Universidad: 'A fund for your child’s university education.',
    Retiro: 'Savings for your retirement with a guaranteed return.',
  },
  ageRange: (min, max) => `For people aged ${min} to ${max}.`,
  tooYoung: (min) => `Not available: the minimum age is ${min}.`,
  tooOld: (max) => `Not available: the maximum age is ${max}.`,

  planLegend: (product, price) => `Payment plans for ${product} (cash price ${price})`,
  planCash: (total) => `1 payment (cash) of ${total}`,
  planMonthly: (count, instalment, total) => `${count} monthly payments of ${instalment} (total ${total})`,

  contactLegend: 'Contact',
  addressLegend: 'Address',
  fields: {
    'contact.email': 'Email',
    'contact.phone': 'Mobile phone (10 digits)',
    'address.street': 'Street',
    'address.number': 'Street and unit number',
    'address.neighborhood': 'Neighbourhood (colonia)',
    'address.municipality': 'Municipality (municipio or alcaldía)',
    'address.postalCode': 'Postal code',
    'address.state': 'State',
  },
  statePlaceholder: 'Select your state',

  consentsLegend: 'To continue, accept all three documents',
  consentLabels: {
    terms: 'I accept the terms and conditions',
    privacy: 'I have read and accept the privacy notice',
    trust: 'I accept the trust F/0003 agreement',
  },
  consentLinks: {
    terms: 'Read the terms and conditions',
    privacy: 'Read the privacy notice',
    trust: 'Read the trust F/0003 agreement',
  },
  opensInNewTab: '(opens in a new tab)',

  paymentLegend: 'How do you want to pay?',
  paymentSummary: (product, plan) => `You are buying ${product}: ${plan}.`,
  paymentMethods: { email: 'Pay later', khipu: 'Bank transfer', card: 'Card (recurring charges)' },
  paymentDescriptions: {
    email: 'We email you the payment link.',
    khipu: 'Pay from your bank’s app or website with Khipu.',
    card: 'We charge each monthly payment to your card on its date.',
  },
  comingSoon: 'Coming soon',
  submitPurchase: 'Confirm purchase',
  bankLabel: 'Your bank (optional)',
  bankOnKhipu: 'I’ll choose on Khipu',
  banksLoading: 'Loading the list of banks…',
  banksFailed: 'We could not load the list of banks: you can choose your bank on Khipu.',
  leavingForKhipu: 'Taking you to Khipu to pay…',
  cardLoading: 'Loading the card form…',

  confirmationIntro: 'Thank you for trusting KASU. Keep these details.',
  policyNumber: 'Policy number',
  policyPending: 'We will email it to you as soon as KASU assigns it.',
  reference: 'Purchase reference',
  product: 'Product',
  plan: 'Plan',
  instalment: 'Each payment',
  total: 'Total',
  paymentLinkSent: (email) => `We sent the payment link to ${email}.`,
  paymentLinkSentNoEmail: 'We emailed you the payment link.',
  paymentStatuses: {
    pending: 'Payment pending',
    verifying: 'Payment being verified',
    paid: 'Paid',
    expired: 'Payment expired',
    cancelled: 'Payment cancelled',
    failed: 'Payment not completed',
  },
  paymentWaiting: 'We are waiting for your payment to be confirmed…',
  paymentWaitOver: 'We will email you as soon as it is confirmed.',
  paymentPaid: (amount, date) =>
    date ? `We received your payment of ${amount} on ${date}.` : `We received your payment of ${amount}.`,
  paymentEnded: 'We did not receive this payment. Your purchase is still registered.',
  paymentCancelledOnKhipu:
    'You cancelled the payment on Khipu. Your purchase is still registered: you can go back to Khipu to pay.',
  payAgain: 'Go back to Khipu to pay',
  paymentDue: 'Your payment is still due: continue on Khipu.',
  payNow: 'Pay with Khipu',

  fieldErrors: {
    REQUIRED: 'This field is required.',
    CHOICE_REQUIRED: 'Choose an option to continue.',
    ACCEPTANCE_REQUIRED: 'You must accept this document to continue.',
    EMAIL_INVALID: 'Enter a valid email address, for example name@example.com.',
    PHONE_INVALID: 'Enter the 10 digits of your phone number, for example 55 1234 5678.',
    POSTAL_CODE_INVALID: 'A postal code has 5 digits.',
    INVALID: 'Please check this field.',
  },
};

export const STRINGS: Record<Locale, Strings> = { 'es-MX': esMX, en };

/** The `locale` attribute, validated once: anything English is `en`, everything else the default `es-MX`. */
export function resolveLocale(value: string | null | undefined): Locale {
  return value?.trim().toLowerCase().startsWith('en') ? 'en' : 'es-MX';
}

/** The strings of one locale plus the lookups into shared/: error copy and money. Passed down to every step. */
export type Text = Strings & {
  locale: Locale;
  /** Copy for a catalogue code or a field code. */
  error(code: string): string;
  /** Centavos as MXN ("$5,900.00"). */
  money(centavos: number): string;
  /** An ISO instant as a date and time in Mexico City ("23 de noviembre de 2026, 9:00 a.m."). */
  dateTime(iso: string): string;
};

export function createText(locale: Locale): Text {
  const strings = STRINGS[locale];
  const fieldErrors: Record<string, string> = strings.fieldErrors;
  return {
    ...strings,
    locale,
    error(code) {
      const field = fieldErrors[code];
      if (field !== undefined) return field;
      // Anything else the server puts in `fields` (a zod message) is not customer copy.
      return isErrorCode(code) ? errorMessage(code, locale) : strings.fieldErrors.INVALID;
    },
    money(centavos) {
      return formatMoney({ amount: centavos, currency: 'MXN' }, locale);
    },
    dateTime(iso) {
      const format = { dateStyle: 'long', timeStyle: 'short', timeZone: 'America/Mexico_City' } as const;
      return new Intl.DateTimeFormat(locale, format).format(new Date(iso));
    },
  };
}

/** "1 pago (contado) de $X" or "N pagos mensuales de $X (total $Y)". */
export function describePlan(text: Text, plan: Pick<Plan, 'count' | 'instalment' | 'total'>): string {
  return plan.count === 1
    ? text.planCash(text.money(plan.total))
    : text.planMonthly(plan.count, text.money(plan.instalment), text.money(plan.total));
}
