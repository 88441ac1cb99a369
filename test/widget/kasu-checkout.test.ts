/// <reference types="mocha" />
import { aTimeout, expect, fixture, html, oneEvent, waitUntil } from '@open-wc/testing';
import { sendKeys } from '@web/test-runner-commands';
import { ERRORS } from '../../shared/errors.js';
import { MX_STATE_CODES } from '../../shared/mexico.js';
import '../../widget/index.js';
import type { KasuCheckout, KasuCompleteEvent, KasuErrorEvent, KasuStepChangeEvent } from '../../widget/index.js';
import { ADULT_CURP, CHILD_CURP, FAKE_BFF_BASE, installFakeBff, type FakeBff } from './fake-bff.js';
import {
  CONTACT,
  STEP_ORDER,
  TITLES,
  advanceTo,
  blur,
  button,
  deepQueryAll,
  description,
  enterCurp,
  errorPanel,
  field,
  fill,
  fillContact,
  hasButton,
  heading,
  liveRegion,
  progress,
  reach,
  settled,
  shadow,
  stepRoot,
  text,
  untilError,
  untilHeading,
} from './helpers.js';

const SESSION_KEY = `kasu-checkout:${FAKE_BFF_BASE}`;

let bff: FakeBff;

async function mount(locale?: string): Promise<KasuCheckout> {
  return fixture<KasuCheckout>(html`<kasu-checkout api=${FAKE_BFF_BASE} locale=${locale ?? 'es-MX'}></kasu-checkout>`);
}

beforeEach(() => {
  sessionStorage.clear();
  bff = installFakeBff();
});

afterEach(() => {
  bff.restore();
  sessionStorage.clear();
});

/** The focused element, through the shadow roots. */
function deepActive(): Element | null {
  let active = document.activeElement;
  while (active?.shadowRoot?.activeElement) active = active.shadowRoot.activeElement;
  return active;
}

/** Presses Tab until the focused element is the button `until`, letting `each` act on every control on the way. */
async function tabThrough(each: (control: HTMLInputElement | HTMLSelectElement) => Promise<void>, until: string): Promise<void> {
  for (let presses = 0; presses < 40; presses++) {
    await sendKeys({ press: 'Tab' });
    const active = deepActive();
    if (active instanceof HTMLButtonElement && active.textContent?.trim() === until) return;
    if (active instanceof HTMLInputElement || active instanceof HTMLSelectElement) await each(active);
  }
  throw new Error(`Tab never reached "${until}"`);
}

describe('<kasu-checkout> step 1: CURP', () => {
  it('when it first renders, then it is accessible, shows "Paso 1 de 7" and already has its live region', async () => {
    const el = await mount();
    await expect(el).to.be.accessible();
    expect(progress(el)).to.equal('Paso 1 de 7');
    expect(heading(el)).to.equal(TITLES.curp);
    const live = liveRegion(el);
    expect(live, 'live region').to.be.instanceOf(HTMLElement);
    expect(live?.getAttribute('aria-live')).to.equal('polite');
    expect(hasButton(el, 'Regresar'), 'no Back on the first step').to.equal(false);
  });

  it('when it is connected, then kasu-ready fires once', async () => {
    const host = document.createElement('div');
    document.body.append(host);
    const ready: Event[] = [];
    host.addEventListener('kasu-ready', (event) => ready.push(event));
    host.innerHTML = `<kasu-checkout api="${FAKE_BFF_BASE}"></kasu-checkout>`;
    await waitUntil(() => ready.length > 0, 'kasu-ready never fired');
    await aTimeout(50);
    expect(ready).to.have.length(1);
    expect((ready[0] as CustomEvent<{ step: string }>).detail.step).to.equal('curp');
    host.remove();
  });

  const invalid = [
    ['CURP_INVALID_FORMAT', 'CAMC880526'],
    ['CURP_INCONVENIENT_WORD', 'BACA880526HMCBNR04'],
    ['CURP_INVALID_DATE', 'CAMC881326HMCBNR04'],
    ['CURP_INVALID_CHECK_DIGIT', 'CAMC880526HMCBNR05'],
  ] as const;
  for (const [code, curp] of invalid) {
    it(`when a CURP with ${code} is typed, then its message is shown on the field, linked, and nothing is sent`, async () => {
      const el = await mount();
      const input = field(el, 'CURP');
      fill(input, curp);
      blur(input);
      await waitUntil(() => description(input).includes(ERRORS[code].es), `no ${code} message`);
      expect(input.getAttribute('aria-invalid')).to.equal('true');
      await expect(el).to.be.accessible();

      button(el, 'Continuar').click();
      await aTimeout(50);
      expect(bff.requests, 'requests sent').to.have.length(0);
      expect(heading(el)).to.equal(TITLES.curp);
    });
  }

  it('when an invalid CURP is corrected, then the message goes away as it is typed', async () => {
    const el = await mount();
    const input = field(el, 'CURP');
    fill(input, 'CAMC880526HMCBNR05');
    await waitUntil(() => input.getAttribute('aria-invalid') === 'true');
    fill(input, ADULT_CURP.toLowerCase());
    await settled(el);
    expect(input.getAttribute('aria-invalid')).to.equal('false');
    expect(description(input)).not.to.include(ERRORS.CURP_INVALID_CHECK_DIGIT.es);
  });

  it('when RENAPO does not recognise the CURP, then the rejection is shown on the CURP field', async () => {
    bff.restore();
    bff = installFakeBff({ rejectedCurps: [ADULT_CURP] });
    const el = await mount();
    const input = field(el, 'CURP');
    fill(input, ADULT_CURP);
    button(el, 'Continuar').click();
    await waitUntil(() => description(input).includes(ERRORS.CURP_REJECTED.es), 'no CURP_REJECTED message');
    expect(input.getAttribute('aria-invalid')).to.equal('true');
    expect(text(liveRegion(el))).to.include(ERRORS.CURP_REJECTED.es);
  });

  it('when a valid CURP is submitted, then a checkout is created and remembered for this tab', async () => {
    const el = await mount();
    await enterCurp(el, ` ${ADULT_CURP.toLowerCase()} `);
    const [create] = bff.requestsTo('create');
    expect(create?.body).to.deep.equal({ curp: ADULT_CURP });
    const stored = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null');
    expect(stored.id).to.match(/^chk_/);
    expect(stored.token).to.be.a('string').with.length.above(0);
  });
});

describe('<kasu-checkout> step 2: product', () => {
  it('when the products show, then the step is accessible and an ineligible product is disabled with its reason', async () => {
    const el = await mount();
    await reach(el, 'product');
    await expect(el).to.be.accessible();
    expect(progress(el)).to.equal('Paso 2 de 7');
    expect(text(stepRoot(el).querySelector('legend'))).to.include('38 años');

    const universidad = field(el, 'Universidad');
    expect(universidad.disabled).to.equal(true);
    expect(description(universidad)).to.include('No disponible: la edad máxima es de 7 años.');
    expect(field(el, 'Funerario').disabled).to.equal(false);
    expect(field(el, 'Retiro').disabled).to.equal(false);
    expect(description(field(el, 'Retiro'))).to.include('Para personas de 18 a 64 años.');
  });

  it('when the customer is too young for a product, then it is disabled with the minimum age', async () => {
    const el = await mount();
    await enterCurp(el, CHILD_CURP);
    await expect(el).to.be.accessible();
    const retiro = field(el, 'Retiro');
    expect(retiro.disabled).to.equal(true);
    expect(description(retiro)).to.include('No disponible: la edad mínima es de 18 años.');
  });

  it('when Continuar is pressed without a choice, then it asks for one and sends nothing', async () => {
    const el = await mount();
    await reach(el, 'product');
    button(el, 'Continuar').click();
    await settled(el);
    expect(text(stepRoot(el).getElementById('product-error'))).to.equal('Elige una opción para continuar.');
    expect(bff.requestsTo('quote')).to.have.length(0);
  });

  it('when a product is chosen, then it is quoted with the checkout token', async () => {
    const el = await mount();
    await reach(el, 'plan');
    const [quote] = bff.requestsTo('quote');
    const { token } = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? '{}');
    expect(quote?.body).to.deep.equal({ product: 'Funerario' });
    expect(quote?.headers.authorization).to.equal(`Bearer ${token}`);
  });
});

describe('<kasu-checkout> step 3: plan', () => {
  it('when the plans show, then the step is accessible and every amount is in pesos with Intl formatting', async () => {
    const el = await mount();
    await reach(el, 'plan');
    await expect(el).to.be.accessible();
    expect(progress(el)).to.equal('Paso 3 de 7');
    const labels = [...stepRoot(el).querySelectorAll('label')].map(text);
    expect(labels).to.deep.equal([
      '1 pago (contado) de $5,900.00',
      '3 pagos mensuales de $2,006.13 (total $6,018.39)',
      '6 pagos mensuales de $1,018.04 (total $6,108.24)',
      '12 pagos mensuales de $524.21 (total $6,290.52)',
    ]);
    expect(text(stepRoot(el).querySelector('legend'))).to.include('$5,900.00');
  });

  it('when a plan is chosen, then the product and plan count are saved', async () => {
    const el = await mount();
    await reach(el, 'contact');
    const [update] = bff.requestsTo('update');
    expect(update?.method).to.equal('PATCH');
    expect(update?.body).to.deep.equal({ product: 'Funerario', planCount: 12 });
  });
});

describe('<kasu-checkout> step 4: contact and address', () => {
  it('when the form shows, then it is accessible and every input has a label', async () => {
    const el = await mount();
    await reach(el, 'contact');
    await expect(el).to.be.accessible();
    expect(progress(el)).to.equal('Paso 4 de 7');
    const controls = stepRoot(el).querySelectorAll<HTMLInputElement | HTMLSelectElement>('input, select');
    expect(controls.length).to.equal(8);
    for (const control of controls) expect(control.labels?.length, control.id).to.equal(1);
  });

  it('when the state is chosen, then the select offers the 32 states by code', async () => {
    const el = await mount();
    await reach(el, 'contact');
    const state = field<HTMLSelectElement>(el, 'Estado');
    const codes = [...state.options].map((option) => option.value).filter(Boolean);
    expect(codes).to.deep.equal(MX_STATE_CODES);
    expect([...state.options].find((option) => option.value === 'CMX')?.textContent).to.equal('Ciudad de México');
  });

  it('when fields are left empty or mistyped, then each shows its error inline, linked, and nothing is sent', async () => {
    const el = await mount();
    await reach(el, 'contact');
    fill(field(el, 'Teléfono celular (10 dígitos)'), '55 1234');
    fill(field(el, 'Código postal'), '3940');
    button(el, 'Continuar').click();
    await settled(el);
    await expect(el).to.be.accessible();

    const email = field(el, 'Correo electrónico');
    expect(email.getAttribute('aria-invalid')).to.equal('true');
    expect(description(email)).to.equal('Este dato es obligatorio.');
    expect(description(field(el, 'Teléfono celular (10 dígitos)'))).to.include('10 dígitos');
    expect(description(field(el, 'Código postal'))).to.equal('El código postal tiene 5 dígitos.');
    expect(description(field(el, 'Estado'))).to.equal('Este dato es obligatorio.');
    expect(stepRoot(el).activeElement, 'focus on the first field with an error').to.equal(email);
    expect(bff.requestsTo('update')).to.have.length(1); // only the plan
  });

  it('when the BFF rejects fields, then its errors are shown inline on the matching fields and linked', async () => {
    const el = await mount();
    await reach(el, 'contact');
    bff.failNext('update', {
      code: 'VALIDATION_FAILED',
      fields: { 'contact.phone': 'PHONE_INVALID', 'address.postalCode': 'POSTAL_CODE_INVALID' },
    });
    fillContact(el);
    button(el, 'Continuar').click();
    await untilError(el);

    expect(errorPanel(el)).to.equal(ERRORS.VALIDATION_FAILED.es);
    const phone = field(el, 'Teléfono celular (10 dígitos)');
    expect(phone.getAttribute('aria-invalid')).to.equal('true');
    expect(description(phone)).to.equal('Escribe los 10 dígitos de tu teléfono, por ejemplo 55 1234 5678.');
    expect(description(field(el, 'Código postal'))).to.equal('El código postal tiene 5 dígitos.');
    expect(field(el, 'Calle').getAttribute('aria-invalid')).to.equal('false');
    expect(stepRoot(el).activeElement).to.equal(phone);
    await expect(el).to.be.accessible();

    fill(phone, '55 8765 4321');
    await settled(el);
    expect(phone.getAttribute('aria-invalid'), 'an edited field drops the server error').to.equal('false');
  });

  it('when the BFF finds an email invalid that looked fine here, then its code is shown on the email field', async () => {
    const el = await mount();
    await reach(el, 'contact');
    fillContact(el, { 'Correo electrónico': 'maria@correo' });
    button(el, 'Continuar').click();
    await untilError(el);
    const [, contact] = bff.requestsTo('update');
    const sent = (contact?.body as { contact: unknown }).contact;
    expect(sent).to.deep.equal({ email: 'maria@correo', phone: '5512345678' });
    expect(description(field(el, 'Correo electrónico'))).to.equal(
      'Escribe un correo válido, por ejemplo nombre@correo.com.',
    );
  });

  it('when the contact is valid, then it is saved with the phone as 10 digits and the state code', async () => {
    const el = await mount();
    await reach(el, 'consents');
    const [, update] = bff.requestsTo('update');
    expect(update?.body).to.deep.equal({
      contact: { email: 'maria.camacho@correo.mx', phone: '5512345678' },
      address: {
        street: 'Avenida Insurgentes Sur',
        number: '1602 int. 4',
        neighborhood: 'Crédito Constructor',
        municipality: 'Benito Juárez',
        postalCode: '03940',
        state: 'CMX',
      },
    });
  });
});

describe('<kasu-checkout> step 5: consents', () => {
  it('when the documents show, then the step is accessible and each links to its document', async () => {
    const el = await mount();
    await reach(el, 'consents');
    await expect(el).to.be.accessible();
    expect(progress(el)).to.equal('Paso 5 de 7');
    const links = [...stepRoot(el).querySelectorAll('a')];
    expect(links.map((link) => link.href)).to.deep.equal([
      'https://legal.kasu.example/terminos-y-condiciones-2026-01.pdf',
      'https://legal.kasu.example/aviso-de-privacidad-2025-07.pdf',
      'https://legal.kasu.example/fideicomiso-F0003-v4.pdf',
    ]);
    expect(text(links[1])).to.include('aviso de privacidad');
    expect(text(links[2])).to.include('fideicomiso F/0003');
    for (const link of links) expect(link.rel).to.include('noopener');
  });

  it('when one document is not accepted, then it is marked as required and nothing is sent', async () => {
    const el = await mount();
    await reach(el, 'consents');
    field(el, /términos y condiciones/).click();
    field(el, /aviso de privacidad/).click();
    button(el, 'Continuar').click();
    await settled(el);
    const trust = field(el, /fideicomiso F\/0003/);
    expect(trust.getAttribute('aria-invalid')).to.equal('true');
    expect(description(trust)).to.equal('Debes aceptar este documento para continuar.');
    expect(stepRoot(el).activeElement).to.equal(trust);
    expect(bff.requestsTo('update')).to.have.length(2);
    await expect(el).to.be.accessible();
  });

  it('when all three are accepted, then the consents are saved', async () => {
    const el = await mount();
    await reach(el, 'payment');
    const updates = bff.requestsTo('update');
    expect(updates[updates.length - 1]?.body).to.deep.equal({ consents: { terms: true, privacy: true, trust: true } });
  });
});

describe('<kasu-checkout> step 6: payment', () => {
  it('when the methods show, then the step is accessible, email is chosen and an unavailable one says "Próximamente"', async () => {
    bff.restore();
    bff = installFakeBff({ card: false });
    const el = await mount();
    await reach(el, 'payment');
    await expect(el).to.be.accessible();
    expect(progress(el)).to.equal('Paso 6 de 7');
    const email = field(el, 'Pagar después');
    expect(email.checked).to.equal(true);
    expect(description(email)).to.equal('Te enviamos la liga de pago por correo.');
    const transfer = field(el, 'Transferencia bancaria');
    expect(transfer.disabled).to.equal(false);
    expect(description(transfer)).to.equal('Paga desde la app o el portal de tu banco con Khipu.');
    expect(field(el, 'Tarjeta (cargo recurrente)').disabled).to.equal(true);
    expect(description(field(el, 'Tarjeta (cargo recurrente)'))).to.equal('Próximamente');
    expect(bff.requestsTo('banks'), 'banks only for customers who choose a transfer').to.have.length(0);
    expect(text(stepRoot(el).querySelector('[part="summary"]'))).to.equal(
      'Vas a contratar Funerario: 12 pagos mensuales de $524.21 (total $6,290.52).',
    );
  });

  it('when the purchase button is clicked twice, then exactly one submit is sent, with an Idempotency-Key', async () => {
    const el = await mount();
    await reach(el, 'payment');
    bff.delayMs = 150;
    const submit = button(el, 'Confirmar compra');
    submit.click();
    submit.click();
    await settled(el);
    expect(button(el, 'Enviando…').disabled, 'disabled while pending').to.equal(true);
    button(el, 'Enviando…').click();
    await untilHeading(el, TITLES.confirmation);

    const submits = bff.requestsTo('submit');
    expect(submits).to.have.length(1);
    expect(submits[0]?.body).to.deep.equal({ paymentMethod: 'email' });
    expect(submits[0]?.headers['idempotency-key']).to.match(/^[0-9a-f-]{36}$/);
  });

  it('when the answer to the purchase is lost, then "Reintentar" sends it again with the same Idempotency-Key', async () => {
    const el = await mount();
    await reach(el, 'payment');
    bff.failNext('submit', 'network-after-processing');
    button(el, 'Confirmar compra').click();
    expect(await untilError(el)).to.equal(ERRORS.NETWORK_ERROR.es);

    button(el, 'Reintentar').click();
    await untilHeading(el, TITLES.confirmation);
    const [first, retry] = bff.requestsTo('submit');
    expect(retry, 'a second request').to.not.equal(undefined);
    expect(retry?.headers['idempotency-key']).to.equal(first?.headers['idempotency-key']);
  });

  it('when the purchase is confirmed again after a retryable error, then it is the same attempt and key', async () => {
    const el = await mount();
    await reach(el, 'payment');
    bff.failNext('submit', { code: 'SUBMIT_IN_PROGRESS' });
    button(el, 'Confirmar compra').click();
    expect(await untilError(el)).to.equal(ERRORS.SUBMIT_IN_PROGRESS.es);
    button(el, 'Confirmar compra').click();
    await untilHeading(el, TITLES.confirmation);
    const [first, second] = bff.requestsTo('submit');
    expect(second?.headers['idempotency-key']).to.equal(first?.headers['idempotency-key']);
  });

  it('when an attempt definitely failed, then the next attempt gets a new Idempotency-Key', async () => {
    const el = await mount();
    await reach(el, 'payment');
    bff.failNext('submit', { code: 'PAYMENT_METHOD_UNAVAILABLE' });
    button(el, 'Confirmar compra').click();
    expect(await untilError(el)).to.equal(ERRORS.PAYMENT_METHOD_UNAVAILABLE.es);
    expect(hasButton(el, 'Reintentar'), 'not retryable').to.equal(false);
    button(el, 'Confirmar compra').click();
    await untilHeading(el, TITLES.confirmation);
    const [first, second] = bff.requestsTo('submit');
    expect(second?.headers['idempotency-key']).to.be.a('string').and.not.equal(first?.headers['idempotency-key']);
  });
});

describe('<kasu-checkout> a price that changed', () => {
  it('when the BFF says the price changed, then the plans show again with the reason before anything is paid, and the next attempt is a new one', async () => {
    const el = await mount();
    await reach(el, 'payment');
    bff.failNext('submit', { code: 'PRICE_CHANGED', fields: { price: 'CHANGED' } });
    button(el, 'Confirmar compra').click();
    await untilHeading(el, TITLES.plan);
    expect(errorPanel(el)).to.include(ERRORS.PRICE_CHANGED.es);
    expect(liveRegion(el)?.textContent).to.include(ERRORS.PRICE_CHANGED.es);
    expect(field(el, /^12 pagos mensuales/).checked, 'the chosen plan is kept').to.equal(true);
    expect(hasButton(el, 'Reintentar')).to.equal(false);
    await expect(el).to.be.accessible();
    await advanceTo(el, 'contact');
    await advanceTo(el, 'consents');
    await advanceTo(el, 'payment');
    await advanceTo(el, 'confirmation');
    const [first, second] = bff.requestsTo('submit');
    expect(second?.headers['idempotency-key']).to.be.a('string').and.not.equal(first?.headers['idempotency-key']);
  });
});

describe('<kasu-checkout> step 7: confirmation', () => {
  it('when the purchase is registered, then the step is accessible, shows the policy and kasu-complete fires', async () => {
    const el = await mount();
    await reach(el, 'payment');
    const completed = oneEvent(el, 'kasu-complete') as Promise<KasuCompleteEvent>;
    button(el, 'Confirmar compra').click();
    const event = await completed;
    await untilHeading(el, TITLES.confirmation);
    await expect(el).to.be.accessible();
    expect(progress(el)).to.equal('Paso 7 de 7');

    const [submitted] = bff.requestsTo('submit');
    expect(submitted).to.not.equal(undefined);
    const { checkoutId, reference, policy } = event.detail;
    expect(checkoutId).to.match(/^chk_/);
    expect(reference).to.match(/^KC-/);
    expect(policy).to.match(/^FUN\d{17}$/);
    expect(event.bubbles && event.composed).to.equal(true);

    const summary = text(stepRoot(el).querySelector('[part="summary"]'));
    expect(text(stepRoot(el).querySelector('[part="policy"]'))).to.equal(policy);
    expect(summary).to.include(reference);
    expect(summary).to.include('Funerario');
    expect(summary).to.include('12 pagos mensuales de $524.21 (total $6,290.52)');
    expect(summary).to.include('$6,290.52');
    expect(text(stepRoot(el))).to.include('Te enviamos la liga de pago a maria.camacho@correo.mx.');
    expect(hasButton(el, 'Regresar'), 'no way back from a purchase').to.equal(false);
    expect(sessionStorage.getItem(SESSION_KEY), 'nothing left to resume').to.equal(null);
  });
});

describe('<kasu-checkout> errors', () => {
  it('when a request fails with a retryable error, then "Reintentar" repeats it without retyping anything', async () => {
    const el = await mount();
    await reach(el, 'product');
    bff.failNext('quote', { code: 'PROVIDER_UNAVAILABLE' });
    const failed = oneEvent(el, 'kasu-error') as Promise<KasuErrorEvent>;
    field(el, 'Funerario').click();
    button(el, 'Continuar').click();
    expect((await failed).detail).to.deep.equal({ code: 'PROVIDER_UNAVAILABLE' });
    expect(await untilError(el)).to.equal(ERRORS.PROVIDER_UNAVAILABLE.es);
    await expect(el).to.be.accessible();
    expect(text(liveRegion(el))).to.equal(ERRORS.PROVIDER_UNAVAILABLE.es);
    expect(shadow(el).activeElement?.getAttribute('part'), 'focus on the error').to.equal('error');

    button(el, 'Reintentar').click();
    await untilHeading(el, TITLES.plan);
    const quotes = bff.requestsTo('quote');
    expect(quotes).to.have.length(2);
    expect(quotes[1]?.body).to.deep.equal({ product: 'Funerario' });
  });

  it('when the network is down at the first step, then NETWORK_ERROR is shown and a retry keeps the CURP', async () => {
    const el = await mount();
    bff.failNext('create', 'network');
    fill(field(el, 'CURP'), ADULT_CURP);
    button(el, 'Continuar').click();
    expect(await untilError(el)).to.equal(ERRORS.NETWORK_ERROR.es);
    expect(field(el, 'CURP').value).to.equal(ADULT_CURP);
    button(el, 'Reintentar').click();
    await untilHeading(el, TITLES.product);
    expect(bff.requestsTo('create')).to.have.length(2);
  });

  it('when the BFF answers something outside the contract, then INTERNAL is shown with a retry', async () => {
    const el = await mount();
    bff.failNext('create', 'garbage');
    fill(field(el, 'CURP'), ADULT_CURP);
    button(el, 'Continuar').click();
    expect(await untilError(el)).to.equal(ERRORS.INTERNAL.es);
    expect(hasButton(el, 'Reintentar')).to.equal(true);
  });

  it('when KASU refuses a product for the age, then no "Reintentar" is offered and the product becomes unavailable', async () => {
    const el = await mount();
    await reach(el, 'product');
    bff.failNext('quote', { code: 'PRODUCT_NOT_ELIGIBLE' });
    field(el, 'Retiro').click();
    button(el, 'Continuar').click();
    expect(await untilError(el)).to.equal(ERRORS.PRODUCT_NOT_ELIGIBLE.es);
    expect(hasButton(el, 'Reintentar')).to.equal(false);
    expect(text(shadow(el).querySelector('[part="error"]'))).to.match(/Folio para soporte: req-\d+/);
    await settled(el);
    const retiro = field(el, 'Retiro');
    expect(retiro.disabled).to.equal(true);
    expect(description(retiro)).to.include(ERRORS.PRODUCT_NOT_ELIGIBLE.es);
    await expect(el).to.be.accessible();
  });

  it('when KASU already has the email or phone, then the contact step shows again with the message', async () => {
    const el = await mount();
    await reach(el, 'payment');
    bff.failNext('submit', { code: 'CONTACT_ALREADY_REGISTERED' });
    button(el, 'Confirmar compra').click();
    expect(await untilError(el)).to.equal(ERRORS.CONTACT_ALREADY_REGISTERED.es);
    expect(heading(el)).to.equal(TITLES.contact);
    expect(field(el, 'Correo electrónico').value).to.equal('maria.camacho@correo.mx');
  });

  it('when the BFF says a document is not accepted at submit, then the consents step shows again', async () => {
    const el = await mount();
    await reach(el, 'payment');
    bff.failNext('submit', { code: 'CONSENT_REQUIRED' });
    button(el, 'Confirmar compra').click();
    expect(await untilError(el)).to.equal(ERRORS.CONSENT_REQUIRED.es);
    expect(heading(el)).to.equal(TITLES.consents);
  });

  it('when the purchase was submitted in another tab, then saving shows the checkout as stored', async () => {
    const el = await mount();
    await reach(el, 'payment');
    const { id, token } = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? '{}');
    const otherTab = await fetch(`${FAKE_BFF_BASE}/v1/checkouts/${id}/submit`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'Idempotency-Key': 'other-tab-0001',
      },
      body: JSON.stringify({ paymentMethod: 'email' }),
    });
    expect(otherTab.status).to.equal(200);

    const completed = oneEvent(el, 'kasu-complete') as Promise<KasuCompleteEvent>;
    button(el, 'Regresar').click();
    await untilHeading(el, TITLES.consents);
    button(el, 'Continuar').click();
    await untilHeading(el, TITLES.confirmation);
    expect((await completed).detail.checkoutId).to.equal(id);
    expect(bff.requestsTo('submit')).to.have.length(1);
  });

  it('when the checkout session expires mid-purchase, then the customer is offered to start again', async () => {
    const el = await mount();
    await reach(el, 'product');
    bff.failNext('quote', { code: 'UNAUTHORIZED' });
    field(el, 'Funerario').click();
    button(el, 'Continuar').click();
    expect(await untilError(el)).to.equal(ERRORS.UNAUTHORIZED.es);
    expect(sessionStorage.getItem(SESSION_KEY)).to.equal(null);
    button(el, 'Empezar de nuevo').click();
    await untilHeading(el, TITLES.curp);
  });
});

describe('<kasu-checkout> resuming after a reload', () => {
  it('when the page reloads mid-purchase, then the checkout resumes where the customer was, data kept', async () => {
    const first = await mount();
    await reach(first, 'consents');
    first.remove();

    const ready = oneEvent(document, 'kasu-ready');
    const el = await mount();
    await ready;
    await untilHeading(el, TITLES.consents);
    await expect(el).to.be.accessible();
    expect(progress(el)).to.equal('Paso 5 de 7');
    const [get] = bff.requestsTo('get');
    const { id, token } = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? '{}');
    expect(get?.path).to.equal(`/v1/checkouts/${id}`);
    expect(get?.headers.authorization).to.equal(`Bearer ${token}`);

    button(el, 'Regresar').click();
    await untilHeading(el, TITLES.contact);
    expect(field(el, 'Correo electrónico').value).to.equal('maria.camacho@correo.mx');
    expect(field<HTMLSelectElement>(el, 'Estado').value).to.equal('CMX');
  });

  it('when the stored checkout is no longer accepted, then it starts over at the CURP with the reason', async () => {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify({ id: 'chk_999999', token: 'tok_expired' }));
    const el = await mount();
    expect(await untilError(el)).to.equal(ERRORS.UNAUTHORIZED.es);
    expect(heading(el)).to.equal(TITLES.curp);
    expect(sessionStorage.getItem(SESSION_KEY)).to.equal(null);
    await expect(el).to.be.accessible();
  });

  it('when the BFF is unreachable while resuming, then "Reintentar" resumes without retyping', async () => {
    const first = await mount();
    await reach(first, 'plan');
    first.remove();
    bff.failNext('get', 'network');
    const el = await mount();
    expect(await untilError(el)).to.equal(ERRORS.NETWORK_ERROR.es);
    button(el, 'Reintentar').click();
    await untilHeading(el, TITLES.plan);
  });
});

describe('<kasu-checkout> navigation', () => {
  it('when the step changes, then focus moves to its heading and kasu-step-change fires', async () => {
    const el = await mount();
    const changed = oneEvent(el, 'kasu-step-change') as Promise<KasuStepChangeEvent>;
    await enterCurp(el);
    expect((await changed).detail).to.deep.equal({ step: 'product', index: 1, total: 7 });
    expect(shadow(el).activeElement).to.equal(shadow(el).querySelector('h2'));
    expect(text(liveRegion(el))).to.equal('Paso 2 de 7: Elige tu producto');
  });

  it('when Back is pressed, then the previous step shows with the earlier answers kept', async () => {
    const el = await mount();
    await reach(el, 'contact');
    button(el, 'Regresar').click();
    await untilHeading(el, TITLES.plan);
    expect(field(el, /^12 pagos mensuales/).checked).to.equal(true);
    button(el, 'Regresar').click();
    await untilHeading(el, TITLES.product);
    expect(field(el, 'Funerario').checked).to.equal(true);
    button(el, 'Regresar').click();
    await untilHeading(el, TITLES.curp);
    expect(field(el, 'CURP').value).to.equal(ADULT_CURP);
  });

  it('when the customer only uses the keyboard, then the whole purchase can be made', async () => {
    const el = await mount();
    field(el, 'CURP').focus();
    await sendKeys({ type: ADULT_CURP.toLowerCase() });
    await sendKeys({ press: 'Enter' });
    await untilHeading(el, TITLES.product);

    await sendKeys({ press: 'Tab' }); // from the heading into the radio group: Funerario
    await sendKeys({ press: 'Space' });
    expect(field(el, 'Funerario').checked).to.equal(true);
    await sendKeys({ press: 'Enter' });
    await untilHeading(el, TITLES.plan);

    await sendKeys({ press: 'Tab' });
    await sendKeys({ press: 'ArrowDown' }); // radios: arrows choose
    expect(field(el, /^3 pagos mensuales/).checked).to.equal(true);
    await sendKeys({ press: 'Enter' });
    await untilHeading(el, TITLES.contact);
    expect(bff.requestsTo('update')[0]?.body).to.deep.equal({ product: 'Funerario', planCount: 3 });

    // Contact and address: Tab from field to field, typing into each, until the button.
    await tabThrough(async (control) => {
      const label = control.labels?.[0]?.textContent?.trim() ?? '';
      if (control instanceof HTMLSelectElement) await sendKeys({ type: 'Ciudad' });
      else if (label in CONTACT) await sendKeys({ type: CONTACT[label as keyof typeof CONTACT] });
    }, 'Continuar');
    await sendKeys({ press: 'Enter' });
    await untilHeading(el, TITLES.consents);

    // The documents: Space on each checkbox (links to the documents are passed over).
    await tabThrough(async (control) => {
      if (control instanceof HTMLInputElement && control.type === 'checkbox') await sendKeys({ press: 'Space' });
    }, 'Continuar');
    await sendKeys({ press: 'Enter' });
    await untilHeading(el, TITLES.payment);

    await tabThrough(async () => {}, 'Confirmar compra');
    await sendKeys({ press: 'Enter' });
    await untilHeading(el, TITLES.confirmation);
    expect(bff.requestsTo('submit')).to.have.length(1);
    expect(shadow(el).activeElement?.getAttribute('part')).to.equal('heading');
  });

  it('when every step is rendered, then no element carries an inline style attribute', async () => {
    const el = await mount();
    for (const step of STEP_ORDER) {
      await advanceTo(el, step);
      expect(deepQueryAll(shadow(el), '[style]'), `inline styles on ${step}`).to.have.length(0);
    }
    expect(heading(el)).to.equal(TITLES.confirmation);
  });
});

describe('<kasu-checkout> theming, locale and registration', () => {
  it('when the host sets --kasu-* properties and ::part() rules, then the checkout uses them', async () => {
    const style = document.createElement('style');
    style.textContent = `
      .themed { --kasu-color-primary: rgb(120, 20, 60); --kasu-radius: 0px; }
      .themed::part(progress) { text-transform: uppercase; }
    `;
    document.head.append(style);
    try {
      const el = await fixture<KasuCheckout>(html`<kasu-checkout class="themed" api=${FAKE_BFF_BASE}></kasu-checkout>`);
      const submit = button(el, 'Continuar');
      expect(getComputedStyle(submit).backgroundColor).to.equal('rgb(120, 20, 60)');
      expect(getComputedStyle(submit).borderTopLeftRadius).to.equal('0px');
      const progressText = shadow(el).querySelector('[part="progress"]') as Element;
      expect(getComputedStyle(progressText).textTransform).to.equal('uppercase');
    } finally {
      style.remove();
    }
  });

  it('when locale="en", then the checkout is in English, error copy included', async () => {
    const el = await mount('en');
    await expect(el).to.be.accessible();
    expect(progress(el)).to.equal('Step 1 of 7');
    expect(heading(el)).to.equal('Start with your CURP');
    expect(shadow(el).querySelector('section')?.getAttribute('lang')).to.equal('en');
    const input = field(el, 'CURP');
    fill(input, 'CAMC880526HMCBNR05');
    blur(input);
    await waitUntil(() => description(input).includes(ERRORS.CURP_INVALID_CHECK_DIGIT.en), 'no English message');
    expect(hasButton(el, 'Continue')).to.equal(true);
  });

  it('when the tags are registered a second time, then nothing throws and a warning says so', async () => {
    const warnings: unknown[][] = [];
    const warn = console.warn;
    console.warn = (...args: unknown[]) => void warnings.push(args);
    try {
      // A second copy of the entry module, as when a page loads the script twice.
      await import(new URL('../../widget/index.ts?loaded=twice', import.meta.url).href);
    } finally {
      console.warn = warn;
    }
    expect(warnings.some(([message]) => String(message).includes('<kasu-checkout> is already defined'))).to.equal(true);
    const el = await mount();
    expect(heading(el)).to.equal(TITLES.curp);
  });
});
