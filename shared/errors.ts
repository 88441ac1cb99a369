/**
 * The one catalogue of error codes. The server answers every failure with
 * `{error: {code, message, retryable, requestId, fields?}}` (ErrorBodySchema in contract.ts); the widget renders by
 * `code`, never by message text. Pure data with no zod, so the widget's first paint can carry the copy.
 */

type Entry = {
  /** HTTP status the BFF answers with. */
  status: number;
  /** Whether the same request may succeed if repeated later (the widget offers "Reintentar"). */
  retryable: boolean;
  /** Customer-facing copy. */
  es: string;
  en: string;
};

export const ERRORS = {
  VALIDATION_FAILED: {
    status: 400, retryable: false,
    es: 'Revisa los datos marcados.', en: 'Please check the highlighted fields.',
  },
  CURP_INVALID_FORMAT: {
    status: 400, retryable: false,
    es: 'La CURP debe tener 18 caracteres: 4 letras, 6 números de tu fecha de nacimiento, H, M o X, tu estado y 5 caracteres más.',
    en: 'A CURP has 18 characters: 4 letters, your birth date as 6 digits, H, M or X, your state and 5 more characters.',
  },
  CURP_INVALID_CHECK_DIGIT: {
    status: 400, retryable: false,
    es: 'La CURP no es válida: revisa que esté escrita exactamente como en tu constancia.',
    en: 'This CURP is not valid: check that it matches your CURP certificate exactly.',
  },
  CURP_INVALID_DATE: {
    status: 400, retryable: false,
    es: 'La fecha de nacimiento de la CURP no es válida.', en: 'The birth date in this CURP is not valid.',
  },
  CURP_INCONVENIENT_WORD: {
    status: 400, retryable: false,
    es: 'La CURP no es válida: revisa las primeras cuatro letras.', en: 'This CURP is not valid: check its first four letters.',
  },
  CURP_REJECTED: {
    status: 422, retryable: false,
    es: 'RENAPO no reconoce esta CURP como vigente. Verifica que sea correcta.',
    en: 'RENAPO does not recognise this CURP as active. Please check it.',
  },
  PRODUCT_NOT_ELIGIBLE: {
    status: 422, retryable: false,
    es: 'Este producto no está disponible para tu edad.', en: 'This product is not available for your age.',
  },
  CONSENT_REQUIRED: {
    status: 422, retryable: false,
    es: 'Debes aceptar los términos y condiciones, el aviso de privacidad y el fideicomiso F/0003.',
    en: 'You must accept the terms and conditions, the privacy notice and trust F/0003.',
  },
  ALREADY_REGISTERED: {
    status: 409, retryable: false,
    es: 'Ya tienes este producto contratado con esta CURP.', en: 'This CURP already has this product.',
  },
  CONTACT_ALREADY_REGISTERED: {
    status: 409, retryable: false,
    es: 'Ese correo o teléfono ya está registrado en KASU. Usa otro.',
    en: 'That email or phone number is already registered with KASU. Please use another.',
  },
  CHECKOUT_INCOMPLETE: {
    status: 422, retryable: false,
    es: 'Faltan datos para completar la compra.', en: 'Some details are missing to complete the purchase.',
  },
  CHECKOUT_CLOSED: {
    status: 409, retryable: false,
    es: 'Esta compra ya se envió y no se puede modificar.', en: 'This purchase has been submitted and can no longer be changed.',
  },
  PRICE_CHANGED: {
    status: 409, retryable: false,
    es: 'El precio cambió desde que lo consultaste. Revisa el nuevo monto antes de pagar.',
    en: 'The price changed since you were quoted. Please review the new amount before paying.',
  },
  CARD_DECLINED: {
    status: 402, retryable: false,
    es: 'Tu banco rechazó el cargo a esta tarjeta. Intenta con otra tarjeta.',
    en: 'Your bank declined the charge on this card. Please try another card.',
  },
  PAYMENT_METHOD_UNAVAILABLE: {
    status: 422, retryable: false,
    es: 'Esta forma de pago no está disponible por ahora. Elige otra.',
    en: 'This payment method is not available right now. Please choose another.',
  },
  IDEMPOTENCY_KEY_REQUIRED: {
    status: 400, retryable: false,
    es: 'No pudimos enviar tu solicitud. Recarga la página.', en: 'We could not send your request. Please reload the page.',
  },
  IDEMPOTENCY_KEY_REUSED: {
    status: 422, retryable: false,
    es: 'Esta solicitud ya se envió con otros datos. Recarga la página.',
    en: 'This request was already sent with different details. Please reload the page.',
  },
  SUBMIT_IN_PROGRESS: {
    status: 409, retryable: true,
    es: 'Tu compra se está procesando. Espera un momento.', en: 'Your purchase is being processed. Please wait a moment.',
  },
  REGISTRATION_NEEDS_REVIEW: {
    status: 409, retryable: false,
    es: 'No pudimos confirmar tu registro. Nuestro equipo lo revisará y te escribirá; no intentes pagar otra vez.',
    en: 'We could not confirm your registration. Our team will review it and email you; please do not pay again.',
  },
  UNAUTHORIZED: {
    status: 401, retryable: false,
    es: 'Tu sesión de compra expiró. Empieza de nuevo.', en: 'Your checkout session has expired. Please start again.',
  },
  NOT_FOUND: {
    status: 404, retryable: false,
    es: 'No encontramos lo que buscas.', en: 'We could not find what you were looking for.',
  },
  RATE_LIMITED: {
    status: 429, retryable: true,
    es: 'Demasiados intentos. Espera un minuto y vuelve a intentar.', en: 'Too many attempts. Wait a minute and try again.',
  },
  PROVIDER_UNAVAILABLE: {
    status: 503, retryable: true,
    es: 'El servicio no responde en este momento. Tus datos están guardados: vuelve a intentar.',
    en: 'The service is not responding right now. Your details are saved: please try again.',
  },
  PROVIDER_CONFIG_ERROR: {
    status: 502, retryable: false,
    es: 'La tienda no tiene bien configurado este servicio. Avísale al comercio.',
    en: 'This shop has not set up the service correctly. Please let the merchant know.',
  },
  NETWORK_ERROR: {
    status: 0, retryable: true,
    es: 'No hay conexión. Revisa tu internet y vuelve a intentar.', en: 'No connection. Check your internet and try again.',
  },
  INTERNAL: {
    status: 500, retryable: true,
    es: 'Algo salió mal de nuestro lado. Vuelve a intentar.', en: 'Something went wrong on our side. Please try again.',
  },
} as const satisfies Record<string, Entry>;

export type ErrorCode = keyof typeof ERRORS;
export const ERROR_CODES = Object.keys(ERRORS) as [ErrorCode, ...ErrorCode[]];

export type Locale = 'es-MX' | 'en';

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERRORS, value);
}

export function errorMessage(code: ErrorCode, locale: Locale): string {
  const entry: Entry = ERRORS[code];
  return locale === 'en' ? entry.en : entry.es;
}
