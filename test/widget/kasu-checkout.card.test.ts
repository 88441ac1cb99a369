/// <reference types="mocha" />
// Paying by card with recurring charges: the gateway's tokenizer frame, the recurring-charge consent, the purchase
// that charges the first instalment at once, a declined card, and the confirmation with the schedule.
import { aTimeout, expect, fixture, html, oneEvent, waitUntil } from '@open-wc/testing';
import { ERRORS } from '../../shared/errors.js';
import '../../widget/index.js';
import type { KasuCheckout, KasuCompleteEvent } from '../../widget/index.js';
import { FAKE_BFF_BASE, FAKE_TOKENIZER_URL, RECURRING_CONSENT, installFakeBff, type FakeBff } from './fake-bff.js';
import {
  TITLES,
  button,
  deepQueryAll,
  description,
  errorPanel,
  field,
  hasButton,
  heading,
  reach,
  settled,
  shadow,
  stepRoot,
  text,
  untilError,
  untilHeading,
} from './helpers.js';

const SESSION_KEY = `kasu-checkout:${FAKE_BFF_BASE}`;
const CARD = 'Tarjeta (cargo recurrente)';
const VISA = '4242 4242 4242 4242';
const MASTERCARD = '5555 5555 5555 4444';

let bff: FakeBff;
/** Every tokenizer message this page received, whoever sent it. */
let messages: MessageEvent[];
const recordMessage = (event: MessageEvent) => {
  if ((event.data as { type?: unknown } | null)?.type === 'kasu-card-token') messages.push(event);
};

async function mount(locale = 'es-MX'): Promise<KasuCheckout> {
  return fixture<KasuCheckout>(html`<kasu-checkout api=${FAKE_BFF_BASE} locale=${locale}></kasu-checkout>`);
}

/** `<kasu-card-frame>`'s shadow root, once the card form is on screen. */
function cardRoot(el: KasuCheckout): ShadowRoot | null {
  return deepQueryAll(shadow(el), 'kasu-card-frame')[0]?.shadowRoot ?? null;
}

function frame(el: KasuCheckout): HTMLIFrameElement | null {
  return cardRoot(el)?.querySelector('iframe') ?? null;
}

function consentBox(el: KasuCheckout): HTMLInputElement {
  const box = cardRoot(el)?.getElementById('recurring-consent');
  if (!(box instanceof HTMLInputElement)) throw new Error('no recurring-charge consent');
  return box;
}

function savedCard(el: KasuCheckout): string {
  return text(cardRoot(el)?.querySelector('[part="card"]'));
}

async function chooseCard(el: KasuCheckout, label = CARD): Promise<HTMLIFrameElement> {
  field(el, label).click();
  await settled(el);
  return untilFrame(el);
}

async function untilFrame(el: KasuCheckout): Promise<HTMLIFrameElement> {
  await waitUntil(() => tokenizerReady(frame(el)), 'the card frame never loaded', { timeout: 4000 });
  return frame(el) as HTMLIFrameElement;
}

function tokenizerReady(target: HTMLIFrameElement | null): boolean {
  return target?.contentDocument?.documentElement.dataset.ready === 'true';
}

/** The customer types a card into a tokenizer frame and saves it there (the frame then posts the token). */
async function typeCardInto(target: HTMLIFrameElement, number: string): Promise<void> {
  await waitUntil(() => tokenizerReady(target), 'the tokenizer page never loaded');
  const page = target.contentDocument as Document;
  (page.getElementById('number') as HTMLInputElement).value = number;
  const before = messages.length;
  (page.getElementById('card-form') as HTMLFormElement).requestSubmit();
  await waitUntil(() => messages.length > before, 'the tokenizer posted nothing');
}

async function typeCard(el: KasuCheckout, number = VISA): Promise<void> {
  await typeCardInto(await untilFrame(el), number);
  await waitUntil(() => savedCard(el) !== '', 'the card was not taken');
}

async function payByCard(el: KasuCheckout, number = VISA): Promise<void> {
  await chooseCard(el);
  await typeCard(el, number);
  consentBox(el).click();
}

beforeEach(() => {
  sessionStorage.clear();
  bff = installFakeBff();
  messages = [];
  window.addEventListener('message', recordMessage);
});

afterEach(() => {
  bff.restore();
  sessionStorage.clear();
  window.removeEventListener('message', recordMessage);
});

describe('<kasu-checkout> card: payment step', () => {
  it('when card is chosen, then the tokenizer frame and the BFF’s consent show, accessible', async () => {
    const el = await mount();
    await reach(el, 'payment');
    expect(description(field(el, CARD))).to.equal('Cargamos cada mensualidad a tu tarjeta en su fecha.');
    expect(bff.requestsTo('card-session'), 'only for customers who choose card').to.have.length(0);
    const iframe = await chooseCard(el);
    await expect(el).to.be.accessible();

    expect(iframe.title).to.equal('Datos de tu tarjeta');
    expect(iframe.getAttribute('part')).to.equal('card-frame');
    expect(iframe.hasAttribute('sandbox'), 'the frame runs its own script').to.equal(false);
    expect(new URL(iframe.src).pathname).to.equal(new URL(FAKE_TOKENIZER_URL).pathname);
    expect(new URL(iframe.src).searchParams.get('origin')).to.equal(window.location.origin);
    const consent = consentBox(el);
    expect(consent.checked).to.equal(false);
    expect(text(cardRoot(el)?.querySelector('label[for="recurring-consent"]'))).to.equal(RECURRING_CONSENT.es);
    const [request] = bff.requestsTo('card-session');
    expect(request?.body).to.deep.equal({ origin: window.location.origin });
    expect(request?.headers.authorization).to.match(/^Bearer tok_/);

    field(el, 'Pagar después').click();
    await settled(el);
    expect(frame(el)).to.equal(null);
    await chooseCard(el);
    expect(bff.requestsTo('card-session'), 'asked once').to.have.length(1);
  });

  it('when locale="en", then the card choice, frame title and consent are in English and accessible', async () => {
    const el = await mount();
    await reach(el, 'payment');
    el.locale = 'en';
    await settled(el);
    expect(description(field(el, 'Card (recurring charges)'))).to.equal(
      'We charge each monthly payment to your card on its date.',
    );
    const iframe = await chooseCard(el, 'Card (recurring charges)');
    expect(iframe.title).to.equal('Your card details');
    expect(text(cardRoot(el)?.querySelector('label[for="recurring-consent"]'))).to.equal(RECURRING_CONSENT.en);
    await typeCard(el);
    expect(savedCard(el)).to.equal('Card ending in 4242 (visa)');
    await expect(el).to.be.accessible();
  });

  it('when the frame cannot be loaded, then a retryable error shows and "Reintentar" loads it', async () => {
    bff.failNext('card-session', { code: 'PROVIDER_UNAVAILABLE' });
    const el = await mount();
    await reach(el, 'payment');
    field(el, CARD).click();
    expect(await untilError(el)).to.equal(ERRORS.PROVIDER_UNAVAILABLE.es);
    expect(frame(el)).to.equal(null);
    button(el, 'Reintentar').click();
    await untilFrame(el);
    expect(errorPanel(el)).to.equal('');
    expect(bff.requestsTo('card-session')).to.have.length(2);
  });

  it('when a token message comes from another origin than the tokenizer’s, then it is ignored', async () => {
    bff.restore();
    bff = installFakeBff({ tokenizerOrigin: 'https://tokenizer.test' });
    const el = await mount();
    await reach(el, 'payment');
    // The frame really is on this test server, so its message comes from there, not from tokenizer.test.
    await typeCardInto(await chooseCard(el), VISA);
    await settled(el);
    expect(savedCard(el)).to.equal('');
    expect(frame(el), 'still waiting for the card').to.not.equal(null);

    consentBox(el).click();
    button(el, 'Confirmar compra').click();
    await settled(el);
    expect(description(frame(el) as HTMLIFrameElement)).to.equal(
      'Escribe los datos de tu tarjeta y guárdala para continuar.',
    );
    expect(bff.requestsTo('submit')).to.have.length(0);
  });

  it('when a token message comes from another window, then it is ignored; from the frame, the card shows', async () => {
    const el = await mount();
    await reach(el, 'payment');
    const iframe = await chooseCard(el);
    const forged = { type: 'kasu-card-token', token: 'tok_forged', last4: '0000', brand: 'visa', expiry: '12/29' };

    window.postMessage(forged, window.location.origin);
    await waitUntil(() => messages.length === 1, 'the page’s own message never arrived');
    const other = document.createElement('iframe');
    other.title = 'Otra página';
    other.src = iframe.src;
    document.body.append(other);
    try {
      await typeCardInto(other, '4000 0000 0000 1111');
    } finally {
      other.remove();
    }
    await settled(el);
    expect(savedCard(el), 'same origin, but not our frame').to.equal('');

    await typeCard(el);
    expect(savedCard(el)).to.equal('Tarjeta terminada en 4242 (visa)');
    expect(frame(el), 'the frame gives way to the card').to.equal(null);
    expect(hasButton(el, 'Cambiar tarjeta')).to.equal(true);
    expect((cardRoot(el)?.activeElement as HTMLElement | null)?.getAttribute('part')).to.equal('card');
    await expect(el).to.be.accessible();
  });

  it('when a message from the frame is not a well-formed token, then it is ignored', async () => {
    const el = await mount();
    await reach(el, 'payment');
    const iframe = await chooseCard(el);
    // The frame's own window posting to us, as the tokenizer does, but with a card number or a wrong type.
    const page = iframe.contentDocument as Document;
    const script = page.createElement('script');
    script.textContent = `parent.postMessage({type: 'kasu-card-token', token: 't', last4: '4242 4242', brand: 'visa',
      expiry: '12/29'}, '*'); parent.postMessage({type: 'other', token: 't', last4: '4242', brand: 'visa',
      expiry: '12/29'}, '*');`;
    page.body.append(script);
    await waitUntil(() => messages.length === 1, 'the frame’s messages never arrived');
    await aTimeout(20);
    await settled(el);
    expect(savedCard(el)).to.equal('');
  });

  it('when the purchase is confirmed without the consent, then its error shows, linked, and nothing is sent', async () => {
    const el = await mount();
    await reach(el, 'payment');
    await chooseCard(el);
    await typeCard(el);
    button(el, 'Confirmar compra').click();
    await settled(el);
    const consent = consentBox(el);
    expect(consent.getAttribute('aria-invalid')).to.equal('true');
    expect(description(consent)).to.equal('Debes autorizar los cargos a tu tarjeta para pagar con ella.');
    await waitUntil(() => cardRoot(el)?.activeElement === consent, 'focus did not move to the consent');
    expect(bff.requestsTo('submit')).to.have.length(0);
    await expect(el).to.be.accessible();

    consent.click();
    await settled(el);
    expect(description(consent)).to.equal('');
  });

  it('when "Cambiar tarjeta" is pressed, then the frame shows again, empty, and the new card replaces the old', async () => {
    const el = await mount();
    await reach(el, 'payment');
    await payByCard(el);
    button(el, 'Cambiar tarjeta').click();
    await settled(el);
    const iframe = await untilFrame(el);
    expect((iframe.contentDocument?.getElementById('number') as HTMLInputElement).value).to.equal('');
    await typeCard(el, MASTERCARD);
    expect(savedCard(el)).to.equal('Tarjeta terminada en 4444 (mastercard)');
    expect(consentBox(el).checked, 'the consent stays').to.equal(true);
  });
});

describe('<kasu-checkout> card: the purchase', () => {
  it('when the purchase is confirmed twice, then one submit sends the card and the consent with an Idempotency-Key', async () => {
    const el = await mount();
    await reach(el, 'payment');
    await payByCard(el);
    bff.delayMs = 150;
    const completed = oneEvent(el, 'kasu-complete') as Promise<KasuCompleteEvent>;
    const submit = button(el, 'Confirmar compra');
    submit.click();
    submit.click();
    await untilHeading(el, TITLES.confirmation);
    const event = await completed;

    const submits = bff.requestsTo('submit');
    expect(submits).to.have.length(1);
    const body = submits[0]?.body as { card: { token: string } };
    expect(body).to.deep.equal({
      paymentMethod: 'card',
      card: { token: body.card.token, last4: '4242', brand: 'visa' },
      recurringConsent: true,
    });
    expect(body.card.token).to.match(/^tok_card_/);
    expect(submits[0]?.headers['idempotency-key']).to.match(/^[0-9a-f-]{36}$/);
    expect(event.detail.policy).to.match(/^FUN\d{17}$/);
    expect(sessionStorage.getItem(SESSION_KEY), 'paid: nothing left to resume').to.equal(null);
  });

  it('when the bank declines the card, then the customer stays to type another, sent with a new key', async () => {
    const el = await mount();
    await reach(el, 'payment');
    await payByCard(el);
    bff.declineNextCard();
    button(el, 'Confirmar compra').click();
    expect(await untilError(el)).to.equal(ERRORS.CARD_DECLINED.es);
    expect(heading(el)).to.equal(TITLES.payment);
    expect(hasButton(el, 'Reintentar'), 'not retryable: another card is').to.equal(false);
    expect(savedCard(el), 'the declined card is gone').to.equal('');
    await untilFrame(el);
    expect(shadow(el).activeElement?.getAttribute('part')).to.equal('error');
    await expect(el).to.be.accessible();

    await typeCard(el, MASTERCARD);
    button(el, 'Confirmar compra').click();
    await untilHeading(el, TITLES.confirmation);
    const [declined, paid] = bff.requestsTo('submit');
    const key = (request: typeof declined) => request?.headers['idempotency-key'];
    expect(key(paid)).to.be.a('string').and.not.equal(key(declined));
    const card = (request: typeof declined) => (request?.body as { card: { token: string; last4: string } }).card;
    expect(card(paid).last4).to.equal('4444');
    expect(card(paid).token).to.not.equal(card(declined).token);
    expect(text(stepRoot(el).querySelector('[part="payment-status"]'))).to.match(/^Pagado/);
  });

  it('when the page reloads after a decline, then the payment step shows again, not the confirmation', async () => {
    const first = await mount();
    await reach(first, 'payment');
    await payByCard(first);
    bff.declineNextCard();
    button(first, 'Confirmar compra').click();
    await untilError(first);
    first.remove();

    const el = await mount();
    await untilHeading(el, TITLES.payment);
    await chooseCard(el);
    await typeCard(el, MASTERCARD);
    consentBox(el).click();
    button(el, 'Confirmar compra').click();
    await untilHeading(el, TITLES.confirmation);
  });
});

describe('<kasu-checkout> card: confirmation', () => {
  async function paid(locale?: string): Promise<KasuCheckout> {
    const el = await mount();
    await reach(el, 'payment');
    await payByCard(el);
    button(el, 'Confirmar compra').click();
    await untilHeading(el, TITLES.confirmation);
    if (locale) el.locale = locale;
    await settled(el);
    await waitUntil(() => deepQueryAll(stepRoot(el), '[part="schedule"] tbody tr').length > 0, 'no schedule');
    return el;
  }

  function schedule(el: KasuCheckout): string[][] {
    return deepQueryAll(stepRoot(el), '[part="schedule"] tbody tr').map((row) =>
      [...row.children].map((cell) => text(cell)),
    );
  }

  it('when the card paid the first instalment, then the policy, "Pagado", the card and the schedule show', async () => {
    const el = await paid();
    await expect(el).to.be.accessible();
    expect(text(stepRoot(el).querySelector('[part="policy"]'))).to.match(/^FUN\d{17}$/);
    expect(text(stepRoot(el).querySelector('[part="payment-status"]'))).to.match(
      /^Pagado Recibimos tu pago de \$524\.21 el 23 de noviembre de 2026/,
    );
    expect(text(deepQueryAll(stepRoot(el), '[part="card"]')[0])).to.equal('Tarjeta: visa terminada en 4242');
    const table = deepQueryAll(stepRoot(el), '[part="schedule"]')[0];
    expect(text(table?.querySelector('caption'))).to.equal('Calendario de pagos');
    expect([...(table?.querySelectorAll('thead th') ?? [])].map((cell) => text(cell))).to.deep.equal([
      'Pago',
      'Fecha',
      'Monto',
      'Estado',
    ]);
    const rows = schedule(el);
    expect(rows).to.have.length(12);
    expect(rows[0]).to.deep.equal(['1', '23 de noviembre de 2026', '$524.21', 'Pagado']);
    expect(rows[1]).to.deep.equal(['2', '23 de diciembre de 2026', '$524.21', 'Programado']);
    expect(rows[11]).to.deep.equal(['12', '23 de octubre de 2027', '$524.21', 'Programado']);
  });

  it('when locale="en", then the schedule is in English and accessible', async () => {
    const el = await paid('en');
    await expect(el).to.be.accessible();
    expect(text(deepQueryAll(stepRoot(el), '[part="card"]')[0])).to.equal('Card: visa ending in 4242');
    const rows = schedule(el);
    expect(rows[0]).to.deep.equal(['1', 'November 23, 2026', 'MX$524.21', 'Paid']);
    expect(rows[1]).to.deep.equal(['2', 'December 23, 2026', 'MX$524.21', 'Scheduled']);
  });

  it('when the host styles ::part(card-frame) and ::part(schedule), then the parts reach them', async () => {
    const style = document.createElement('style');
    style.textContent = `
      .themed::part(card-frame) { height: 321px; }
      .themed::part(schedule) { caption-side: bottom; }
    `;
    document.head.append(style);
    try {
      const el = await mount();
      el.classList.add('themed');
      await reach(el, 'payment');
      const iframe = await chooseCard(el);
      expect(getComputedStyle(iframe).height).to.equal('321px');
      await typeCard(el);
      consentBox(el).click();
      button(el, 'Confirmar compra').click();
      await untilHeading(el, TITLES.confirmation);
      await waitUntil(() => deepQueryAll(stepRoot(el), '[part="schedule"]').length > 0, 'no schedule');
      const table = deepQueryAll(stepRoot(el), '[part="schedule"]')[0] as HTMLElement;
      expect(getComputedStyle(table).captionSide).to.equal('bottom');
    } finally {
      style.remove();
    }
  });
});
