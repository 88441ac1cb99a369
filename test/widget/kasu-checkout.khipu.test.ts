/// <reference types="mocha" />
// Paying by bank transfer with Khipu: the payment step's bank list, leaving for Khipu's page, and the confirmation
// that follows the payment when the customer comes back. Its own file (its own page), because these tests change
// the page's address and replace the widget's navigation.
import { aTimeout, expect, fixture, html, waitUntil } from '@open-wc/testing';
import { ERRORS } from '../../shared/errors.js';
import '../../widget/index.js';
import type { KasuCheckout, KasuPaymentChangeEvent } from '../../widget/index.js';
import { navigation } from '../../widget/navigation.js';
import { PAYMENT_POLLING } from '../../widget/payment-watch.js';
import {
  FAKE_BFF_BASE,
  KHIPU_BANKS,
  KHIPU_PAYMENT_PAGE,
  installFakeBff,
  type FakeBff,
} from './fake-bff.js';
import {
  TITLES,
  button,
  field,
  fill,
  hasButton,
  liveRegion,
  reach,
  settled,
  stepRoot,
  text,
  untilError,
  untilHeading,
} from './helpers.js';

const SESSION_KEY = `kasu-checkout:${FAKE_BFF_BASE}`;
const BANK_LABEL = 'Tu banco (opcional)';
const PAGE_URL = window.location.href;
const POLLING = { ...PAYMENT_POLLING };
const realAssign = navigation.assign;

let bff: FakeBff;
/** Where the widget sent the page, in order. */
let visits: string[];
/** Every public event the widget fired, by type. */
let events: Record<'kasu-complete' | 'kasu-payment-change', CustomEvent[]>;
const record = (event: Event) => void events[event.type as keyof typeof events].push(event as CustomEvent);

async function mount(locale = 'es-MX'): Promise<KasuCheckout> {
  return fixture<KasuCheckout>(html`<kasu-checkout api=${FAKE_BFF_BASE} locale=${locale}></kasu-checkout>`);
}

function paymentStatus(el: KasuCheckout): string {
  return text(stepRoot(el).querySelector('[part="payment-status"]'));
}

async function untilPaymentStatus(el: KasuCheckout, expected: string): Promise<void> {
  await waitUntil(
    () => paymentStatus(el).includes(expected),
    `payment status never showed "${expected}" (it shows "${paymentStatus(el)}")`,
    { timeout: 4000 },
  );
}

async function chooseTransfer(el: KasuCheckout): Promise<void> {
  field(el, 'Transferencia bancaria').click();
  await settled(el);
}

async function untilBanks(el: KasuCheckout): Promise<HTMLSelectElement> {
  await waitUntil(() => stepRoot(el).getElementById('khipu-bank') !== null, 'the bank select never showed');
  return field<HTMLSelectElement>(el, BANK_LABEL);
}

/** The customer pays by transfer (optionally from `bankId`) and the widget sends them to Khipu. */
async function payByTransfer(el: KasuCheckout, bankId?: string): Promise<string> {
  await reach(el, 'payment');
  await chooseTransfer(el);
  if (bankId) fill(await untilBanks(el), bankId);
  button(el, 'Confirmar compra').click();
  await waitUntil(() => visits.length > 0, 'the widget never went to Khipu');
  return checkoutId();
}

function checkoutId(): string {
  return JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? '{}').id;
}

/** Paid by transfer, then the page was left for Khipu: the element is gone, the session stays. */
async function leftForKhipu(): Promise<string> {
  const el = await mount();
  const id = await payByTransfer(el);
  el.remove();
  return id;
}

/** Khipu sends the customer back to the page it was given (`cancelled`: through its cancel link). */
async function comeBack(id: string, { cancelled = false, locale = 'es-MX' } = {}): Promise<KasuCheckout> {
  const payment = bff.khipuPayment(id);
  if (!payment) throw new Error('no Khipu payment');
  history.replaceState(history.state, '', cancelled ? payment.cancelUrl : payment.returnUrl);
  const el = await mount(locale);
  await untilHeading(el, locale === 'en' ? 'Done! Your purchase is registered' : TITLES.confirmation);
  await settled(el);
  return el;
}

beforeEach(() => {
  sessionStorage.clear();
  bff = installFakeBff();
  visits = [];
  navigation.assign = (url) => void visits.push(url);
  events = { 'kasu-complete': [], 'kasu-payment-change': [] };
  document.addEventListener('kasu-complete', record);
  document.addEventListener('kasu-payment-change', record);
  Object.assign(PAYMENT_POLLING, { fastMs: 20, fastForMs: 200, slowMs: 50, giveUpAfterMs: 3000 });
});

afterEach(() => {
  bff.restore();
  sessionStorage.clear();
  navigation.assign = realAssign;
  document.removeEventListener('kasu-complete', record);
  document.removeEventListener('kasu-payment-change', record);
  Object.assign(PAYMENT_POLLING, POLLING);
  history.replaceState(history.state, '', PAGE_URL);
});

describe('<kasu-checkout> Khipu: payment step', () => {
  it('when bank transfer is chosen, then an optional bank select lists Khipu’s banks, loaded once', async () => {
    const el = await mount();
    await reach(el, 'payment');
    expect(stepRoot(el).getElementById('khipu-bank'), 'no select before the choice').to.equal(null);
    await chooseTransfer(el);
    const select = await untilBanks(el);
    await expect(el).to.be.accessible();
    expect([...select.options].map((option) => text(option))).to.deep.equal([
      'Lo elijo en Khipu',
      ...KHIPU_BANKS.map((bank) => bank.name),
    ]);
    expect(select.value, 'no bank by default').to.equal('');

    field(el, 'Pagar después').click();
    await settled(el);
    expect(stepRoot(el).getElementById('khipu-bank')).to.equal(null);
    await chooseTransfer(el);
    await untilBanks(el);
    const [request, ...more] = bff.requestsTo('banks');
    expect(request?.headers.authorization, 'the bank list needs no checkout token').to.equal(undefined);
    expect(more, 'asked once').to.have.length(0);
  });

  it('when the bank list cannot be loaded, then a note says so and paying still works', async () => {
    bff.failNext('banks', { code: 'PROVIDER_UNAVAILABLE' });
    const el = await mount();
    await reach(el, 'payment');
    await chooseTransfer(el);
    await waitUntil(() => text(stepRoot(el)).includes('No pudimos cargar la lista de bancos'), 'no note');
    expect(stepRoot(el).getElementById('khipu-bank')).to.equal(null);
    await expect(el).to.be.accessible();

    button(el, 'Confirmar compra').click();
    await waitUntil(() => visits.length > 0, 'the widget never went to Khipu');
    const [submit] = bff.requestsTo('submit');
    expect(submit?.body).to.deep.equal({ paymentMethod: 'khipu', returnUrl: PAGE_URL });
  });

  it('when the bank list takes a while, then the step says it is loading and stays usable', async () => {
    const el = await mount();
    await reach(el, 'payment');
    bff.delayMs = 300;
    await chooseTransfer(el);
    expect(text(stepRoot(el))).to.include('Cargando la lista de bancos…');
    expect(button(el, 'Confirmar compra').disabled).to.equal(false);
    await untilBanks(el);
  });
});

describe('<kasu-checkout> Khipu: going to pay', () => {
  it('when the purchase is confirmed twice, then one submit sends the bank and this page, and the page goes to Khipu', async () => {
    const el = await mount();
    await reach(el, 'payment');
    await chooseTransfer(el);
    fill(await untilBanks(el), 'Bxmrt');
    bff.delayMs = 150;
    const submit = button(el, 'Confirmar compra');
    submit.click();
    submit.click();
    await untilHeading(el, TITLES.confirmation);
    await waitUntil(() => visits.length > 0, 'the widget never went to Khipu');

    const submits = bff.requestsTo('submit');
    expect(submits).to.have.length(1);
    expect(submits[0]?.body).to.deep.equal({ paymentMethod: 'khipu', khipuBankId: 'Bxmrt', returnUrl: PAGE_URL });
    expect(submits[0]?.headers['idempotency-key']).to.match(/^[0-9a-f-]{36}$/);
    const id = checkoutId();
    expect(visits).to.deep.equal([`${KHIPU_PAYMENT_PAGE}pay_${id.slice(4)}`]);
    expect(text(liveRegion(el))).to.equal('Te llevamos a Khipu para pagar…');
    expect(paymentStatus(el)).to.include('Te llevamos a Khipu para pagar…');
    expect(events['kasu-complete'], 'the purchase is registered').to.have.length(1);
    const stored = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null');
    expect(stored?.id, 'kept for the way back').to.equal(id);
    await aTimeout(100);
    expect(bff.requestsTo('get'), 'no checks while leaving').to.have.length(0);
  });

  it('when the page carries kasu_payment, then the returnUrl sent is the page without it', async () => {
    const url = new URL(PAGE_URL);
    url.searchParams.set('kasu_payment', 'cancelled');
    history.replaceState(history.state, '', url.href);
    const el = await mount();
    expect(window.location.href, 'removed once read').to.equal(PAGE_URL);
    await payByTransfer(el);
    expect((bff.requestsTo('submit')[0]?.body as { returnUrl: string }).returnUrl).to.equal(PAGE_URL);
  });

  it('when the answer to a transfer purchase is lost, then "Reintentar" repeats the same request and key', async () => {
    const el = await mount();
    await reach(el, 'payment');
    await chooseTransfer(el);
    fill(await untilBanks(el), 'Bawdf');
    bff.failNext('submit', 'network-after-processing');
    button(el, 'Confirmar compra').click();
    expect(await untilError(el)).to.equal(ERRORS.NETWORK_ERROR.es);
    expect(visits).to.have.length(0);

    button(el, 'Reintentar').click();
    await waitUntil(() => visits.length > 0, 'the widget never went to Khipu');
    const [first, retry] = bff.requestsTo('submit');
    expect(retry?.headers['idempotency-key']).to.equal(first?.headers['idempotency-key']);
    expect(retry?.body).to.deep.equal(first?.body);
    expect(visits).to.have.length(1);
  });

  it('when paying later, then the page stays, no payment status shows and the session is forgotten', async () => {
    const el = await mount();
    await reach(el, 'confirmation');
    expect(visits).to.have.length(0);
    expect(stepRoot(el).querySelector('[part="payment-status"]')).to.equal(null);
    expect(text(stepRoot(el))).to.include('Te enviamos la liga de pago a maria.camacho@correo.mx.');
    expect(sessionStorage.getItem(SESSION_KEY)).to.equal(null);
  });
});

describe('<kasu-checkout> Khipu: coming back', () => {
  it('when the customer comes back before Khipu confirms, then "Pago pendiente" shows until it is "Pagado"', async () => {
    const id = await leftForKhipu();
    events['kasu-complete'] = [];
    const el = await comeBack(id);
    expect(text(stepRoot(el).querySelector('[part="policy"]'))).to.match(/^FUN\d{17}$/);
    expect(paymentStatus(el)).to.equal('Pago pendiente Estamos esperando la confirmación de tu pago…');
    expect(hasButton(el, 'Volver a Khipu para pagar'), 'they did not cancel').to.equal(false);
    await expect(el).to.be.accessible();
    await waitUntil(() => bff.requestsTo('get').length >= 3, 'the confirmation does not check the payment');

    bff.setPaymentStatus(id, 'paid');
    await untilPaymentStatus(el, 'Pagado');
    expect(paymentStatus(el)).to.match(/^Pagado Recibimos tu pago de \$524\.21 el 23 de noviembre de 2026/);
    expect(text(liveRegion(el))).to.equal('Pagado');
    await expect(el).to.be.accessible();
    expect(events['kasu-complete'], 'kasu-complete is once per purchase').to.have.length(0);
    expect(events['kasu-payment-change'].map((event) => event.detail)).to.deep.equal([
      { status: 'paid', method: 'khipu' },
    ]);
    const [change] = events['kasu-payment-change'] as KasuPaymentChangeEvent[];
    expect(change?.bubbles && change.composed).to.equal(true);
    expect(sessionStorage.getItem(SESSION_KEY), 'final: nothing left to resume').to.equal(null);

    const checks = bff.requestsTo('get').length;
    await aTimeout(150);
    expect(bff.requestsTo('get'), 'no checks after a final answer').to.have.length(checks);
  });

  it('when Khipu confirmed before the customer is back, then "Pagado" shows at once and kasu-payment-change fires', async () => {
    const id = await leftForKhipu();
    bff.setPaymentStatus(id, 'paid');
    const el = await comeBack(id);
    expect(paymentStatus(el)).to.include('Pagado');
    expect(events['kasu-payment-change'].map((event) => event.detail)).to.deep.equal([
      { status: 'paid', method: 'khipu' },
    ]);
    expect(sessionStorage.getItem(SESSION_KEY)).to.equal(null);
  });

  it('when the page reloads while waiting, then it keeps following the payment', async () => {
    const id = await leftForKhipu();
    const first = await comeBack(id);
    await untilPaymentStatus(first, 'Pago pendiente');
    first.remove();
    const el = await mount();
    await untilHeading(el, TITLES.confirmation);
    bff.setPaymentStatus(id, 'verifying');
    await untilPaymentStatus(el, 'Pago en verificación');
    bff.setPaymentStatus(id, 'paid');
    await untilPaymentStatus(el, 'Pagado');
    expect(events['kasu-payment-change'].map((event) => event.detail.status)).to.deep.equal(['verifying', 'paid']);
  });

  it('when the BFF answers slower than the checks are due, then checks never overlap', async () => {
    const id = await leftForKhipu();
    let inFlight = 0;
    let most = 0;
    const fakeFetch = window.fetch;
    window.fetch = async (...args: Parameters<typeof fetch>) => {
      most = Math.max(most, ++inFlight);
      try {
        return await fakeFetch(...args);
      } finally {
        inFlight -= 1;
      }
    };
    try {
      bff.delayMs = 80;
      await comeBack(id);
      await waitUntil(() => bff.requestsTo('get').length >= 4, 'too few checks');
      expect(most).to.equal(1);
    } finally {
      window.fetch = fakeFetch;
    }
  });

  it('when no answer comes in time, then the customer is told they will hear by email and checks stop', async () => {
    Object.assign(PAYMENT_POLLING, { giveUpAfterMs: 150 });
    const id = await leftForKhipu();
    const el = await comeBack(id);
    await untilPaymentStatus(el, 'Te avisaremos por correo en cuanto se confirme.');
    const checks = bff.requestsTo('get').length;
    await aTimeout(150);
    expect(bff.requestsTo('get')).to.have.length(checks);
    expect(sessionStorage.getItem(SESSION_KEY), 'a reload follows it again').to.not.equal(null);
    await expect(el).to.be.accessible();
  });

  it('when the element is removed while waiting, then checks stop', async () => {
    const id = await leftForKhipu();
    const el = await comeBack(id);
    await waitUntil(() => bff.requestsTo('get').length >= 2, 'no checks');
    el.remove();
    await aTimeout(30);
    const checks = bff.requestsTo('get').length;
    await aTimeout(150);
    expect(bff.requestsTo('get')).to.have.length(checks);
  });

  it('when the customer cancelled on Khipu, then the page says so and "Volver a Khipu para pagar" goes back', async () => {
    const id = await leftForKhipu();
    const paymentPage = visits[0];
    const el = await comeBack(id, { cancelled: true });
    expect(new URL(window.location.href).searchParams.has('kasu_payment'), 'parameter removed').to.equal(false);
    expect(window.location.href, 'the page’s own parameters stay').to.equal(PAGE_URL);
    expect(paymentStatus(el)).to.include('Cancelaste el pago en Khipu.');
    await expect(el).to.be.accessible();

    el.remove();
    const reloaded = await mount();
    await untilHeading(reloaded, TITLES.confirmation);
    await settled(reloaded);
    expect(paymentStatus(reloaded), 'a reload still offers Khipu').to.include('Cancelaste el pago en Khipu.');
    button(reloaded, 'Volver a Khipu para pagar').click();
    await settled(reloaded);
    expect(visits).to.deep.equal([paymentPage, paymentPage]);
    expect(text(liveRegion(reloaded))).to.equal('Te llevamos a Khipu para pagar…');
    reloaded.remove();

    const back = await comeBack(id);
    expect(hasButton(back, 'Volver a Khipu para pagar'), 'back from paying this time').to.equal(false);
    expect(paymentStatus(back)).to.include('Estamos esperando la confirmación de tu pago…');
  });

  it('when the answer to the purchase was lost and the page reloaded, then "Pagar con Khipu" takes them there', async () => {
    const first = await mount();
    await reach(first, 'payment');
    await chooseTransfer(first);
    bff.failNext('submit', 'network-after-processing');
    button(first, 'Confirmar compra').click();
    await untilError(first);
    first.remove();

    const el = await mount();
    await untilHeading(el, TITLES.confirmation);
    await settled(el);
    expect(paymentStatus(el)).to.equal('Pago pendiente Falta tu pago: continúa en Khipu. Pagar con Khipu');
    expect(events['kasu-complete'], 'registered: the page hears of it now').to.have.length(1);
    await expect(el).to.be.accessible();
    el.remove();

    const reloaded = await mount();
    await untilHeading(reloaded, TITLES.confirmation);
    await settled(reloaded);
    button(reloaded, 'Pagar con Khipu').click();
    expect(visits).to.deep.equal([bff.khipuPayment(checkoutId())?.redirectUrl]);
    expect(events['kasu-complete'], 'still once').to.have.length(1);
  });

  it('when the payment expired, then the confirmation says so and the session is forgotten', async () => {
    const id = await leftForKhipu();
    const el = await comeBack(id, { cancelled: true });
    bff.setPaymentStatus(id, 'expired');
    await untilPaymentStatus(el, 'Pago vencido');
    expect(paymentStatus(el)).to.equal('Pago vencido No recibimos este pago. Tu compra sigue registrada.');
    expect(hasButton(el, 'Volver a Khipu para pagar'), 'nothing left to pay there').to.equal(false);
    expect(events['kasu-payment-change'].map((event) => event.detail)).to.deep.equal([
      { status: 'expired', method: 'khipu' },
    ]);
    expect(sessionStorage.getItem(SESSION_KEY)).to.equal(null);
    await expect(el).to.be.accessible();
  });

  it('when the checkout session is no longer accepted while waiting, then checks stop with the email note', async () => {
    const id = await leftForKhipu();
    const el = await comeBack(id);
    bff.failNext('get', { code: 'UNAUTHORIZED' });
    await untilPaymentStatus(el, 'Te avisaremos por correo');
    expect(sessionStorage.getItem(SESSION_KEY)).to.equal(null);
    expect(events['kasu-complete'], 'kasu-complete only before leaving').to.have.length(1);
  });
});

describe('<kasu-checkout> Khipu: in English', () => {
  it('when locale="en", then the pending, paid and cancelled payment states are in English and accessible', async () => {
    const id = await leftForKhipu();
    const pending = await comeBack(id, { locale: 'en' });
    expect(paymentStatus(pending)).to.equal('Payment pending We are waiting for your payment to be confirmed…');
    await expect(pending).to.be.accessible();
    pending.remove();

    const cancelled = await comeBack(id, { cancelled: true, locale: 'en' });
    expect(paymentStatus(cancelled)).to.include('You cancelled the payment on Khipu.');
    expect(hasButton(cancelled, 'Go back to Khipu to pay')).to.equal(true);
    await expect(cancelled).to.be.accessible();

    bff.setPaymentStatus(id, 'paid');
    await untilPaymentStatus(cancelled, 'Paid');
    expect(paymentStatus(cancelled)).to.match(/^Paid We received your payment of MX\$524\.21 on November 23, 2026/);
    await expect(cancelled).to.be.accessible();
  });

  it('when locale="en", then the bank choice is in English', async () => {
    const el = await fixture<KasuCheckout>(html`<kasu-checkout api=${FAKE_BFF_BASE}></kasu-checkout>`);
    await reach(el, 'payment');
    el.locale = 'en';
    await settled(el);
    field(el, 'Bank transfer').click();
    await waitUntil(() => stepRoot(el).getElementById('khipu-bank') !== null, 'no bank select');
    const select = field<HTMLSelectElement>(el, 'Your bank (optional)');
    expect(text(select.options[0])).to.equal('I’ll choose on Khipu');
    await expect(el).to.be.accessible();
  });
});
