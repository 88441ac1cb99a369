/// <reference types="mocha" />
// The merchant's integration surface: schemes, languages on every step, attributes, methods, events, several
// widgets on one page.
import { expect, fixture, html, oneEvent, waitUntil } from '@open-wc/testing';
import { emulateMedia, setViewport } from '@web/test-runner-commands';
import '../../widget/index.js';
import type { KasuCheckout, KasuCompleteEvent, KasuStepChangeEvent } from '../../widget/index.js';
import { ADULT_CURP, FAKE_BFF_BASE, installFakeBff, type FakeBff } from './fake-bff.js';
import {
  STEP_ORDER, TITLES, advanceTo, button, enterCurp, field, fill, heading, reach, settled, shadow, stepRoot, untilHeading,
} from './helpers.js';

let bff: FakeBff;
beforeEach(() => {
  sessionStorage.clear();
  bff = installFakeBff();
});
afterEach(async () => {
  bff.restore();
  sessionStorage.clear();
  await emulateMedia({ colorScheme: 'light' });
});

const surface = (el: KasuCheckout) => getComputedStyle(shadow(el).querySelector('[part="base"]') as Element).backgroundColor;
const LIGHT_SURFACE = 'rgb(255, 255, 255)';
const DARK_SURFACE = 'rgb(21, 24, 29)';

describe('<kasu-checkout> schemes and languages', () => {
  it('when every step is shown, then it passes axe in Spanish and English, light and dark', async () => {
    const el = await fixture<KasuCheckout>(html`<kasu-checkout api=${FAKE_BFF_BASE}></kasu-checkout>`);
    for (const step of STEP_ORDER) {
      await advanceTo(el, step);
      for (const [locale, theme] of [['en', 'light'], ['en', 'dark'], ['es-MX', 'dark'], ['es-MX', 'light']] as const) {
        el.locale = locale;
        el.theme = theme;
        await settled(el);
        expect(shadow(el).querySelector('section')?.getAttribute('lang'), `${step} ${locale}`).to.equal(locale);
        expect(surface(el), `${step} ${theme}`).to.equal(theme === 'dark' ? DARK_SURFACE : LIGHT_SURFACE);
        await expect(el, `${step} in ${locale}, ${theme}`).to.be.accessible();
      }
    }
    expect(heading(el)).to.equal(TITLES.confirmation);
  });

  it('when the viewport is 320 px wide, then every step reflows without horizontal scrolling', async () => {
    await setViewport({ width: 320, height: 640 });
    try {
      const el = await fixture<KasuCheckout>(html`<kasu-checkout api=${FAKE_BFF_BASE}></kasu-checkout>`);
      for (const step of STEP_ORDER) {
        await advanceTo(el, step);
        await settled(el);
        const base = shadow(el).querySelector('[part="base"]') as HTMLElement;
        expect(document.documentElement.scrollWidth, `page on ${step}`).to.be.at.most(320);
        expect(base.scrollWidth, `checkout on ${step}`).to.be.at.most(base.clientWidth);
      }
    } finally {
      await setViewport({ width: 800, height: 600 });
    }
  });

  it('when theme="auto", then the scheme follows the system preference', async () => {
    const el = await fixture<KasuCheckout>(html`<kasu-checkout api=${FAKE_BFF_BASE} theme="auto"></kasu-checkout>`);
    await emulateMedia({ colorScheme: 'dark' });
    expect(surface(el)).to.equal(DARK_SURFACE);
    await emulateMedia({ colorScheme: 'light' });
    expect(surface(el)).to.equal(LIGHT_SURFACE);
  });

  it('when the page sets a font, then the checkout uses it unless --kasu-font-family says otherwise', async () => {
    const wrapper = await fixture<HTMLDivElement>(html`<div style="font-family: Georgia, serif">
      <kasu-checkout api=${FAKE_BFF_BASE}></kasu-checkout>
    </div>`);
    const el = wrapper.querySelector('kasu-checkout') as KasuCheckout;
    await settled(el);
    expect(getComputedStyle(field(el, 'CURP')).fontFamily).to.equal('Georgia, serif');
    el.style.setProperty('--kasu-font-family', 'monospace');
    expect(getComputedStyle(field(el, 'CURP')).fontFamily).to.equal('monospace');
  });
});

describe('<kasu-checkout> attributes and methods', () => {
  it('when product="Retiro" is set, then the product step has Retiro chosen; an ineligible one is not chosen', async () => {
    const el = await fixture<KasuCheckout>(html`<kasu-checkout api=${FAKE_BFF_BASE} product="Retiro"></kasu-checkout>`);
    await reach(el, 'product');
    expect(field(el, 'Retiro').checked).to.equal(true);
    button(el, 'Continuar').click();
    await untilHeading(el, TITLES.plan);
    expect(bff.requestsTo('quote')[0]?.body).to.deep.equal({ product: 'Retiro' });

    const other = await fixture<KasuCheckout>(html`<kasu-checkout id="other" api=${FAKE_BFF_BASE} product="Universidad"></kasu-checkout>`);
    await reach(other, 'product');
    expect(field(other, 'Universidad').checked).to.equal(false);
    expect(field(other, 'Funerario').checked).to.equal(false);
  });

  it('when prefill() is called, then the CURP and the contact fields come filled, and nothing is sent until the customer goes on', async () => {
    const el = await fixture<KasuCheckout>(html`<kasu-checkout api=${FAKE_BFF_BASE}></kasu-checkout>`);
    el.prefill({ curp: ` ${ADULT_CURP.toLowerCase()} `, email: 'ana@example.mx', phone: '+52 55 1234 5678' });
    await settled(el);
    expect(field(el, 'CURP').value).to.equal(ADULT_CURP);
    expect(bff.requests).to.have.length(0);
    button(el, 'Continuar').click();
    await untilHeading(el, TITLES.product);
    await advanceTo(el, 'plan');
    await advanceTo(el, 'contact');
    expect(field(el, /Correo/).value).to.equal('ana@example.mx');
    expect(field(el, /Teléfono/).value.replace(/\D/g, '')).to.equal('5512345678');
  });

  it('when reset() is called mid-purchase, then the first step shows empty, the stored checkout is forgotten and focus stays put', async () => {
    const outside = document.createElement('button');
    document.body.append(outside);
    try {
      const el = await fixture<KasuCheckout>(html`<kasu-checkout api=${FAKE_BFF_BASE}></kasu-checkout>`);
      await reach(el, 'plan');
      expect(sessionStorage.length).to.equal(1);
      outside.focus();
      const change = oneEvent(el, 'kasu-step-change') as Promise<KasuStepChangeEvent>;
      el.reset();
      expect((await change).detail).to.deep.equal({ step: 'curp', index: 0, total: 7 });
      await settled(el);
      expect(heading(el)).to.equal(TITLES.curp);
      expect(field(el, 'CURP').value).to.equal('');
      expect(sessionStorage.length).to.equal(0);
      expect(document.activeElement).to.equal(outside);
      await enterCurp(el);
      expect(bff.requestsTo('create')).to.have.length(2);
    } finally {
      outside.remove();
    }
  });
});

describe('<kasu-checkout> events', () => {
  it('when a purchase goes through, then every public event reaches the document with its documented detail', async () => {
    const seen: Array<{ type: string; detail: unknown; target: EventTarget | null }> = [];
    const types = ['kasu-ready', 'kasu-step-change', 'kasu-complete', 'kasu-error'];
    const record = (event: Event) => seen.push({ type: event.type, detail: (event as CustomEvent).detail, target: event.target });
    for (const type of types) document.addEventListener(type, record);
    try {
      const el = await fixture<KasuCheckout>(html`<kasu-checkout api=${FAKE_BFF_BASE}></kasu-checkout>`);
      await waitUntil(() => seen.some((event) => event.type === 'kasu-ready'));
      const bad = field(el, 'CURP');
      bff.failNext('create', { code: 'PROVIDER_UNAVAILABLE' });
      fill(bad, ADULT_CURP);
      button(el, 'Continuar').click();
      await waitUntil(() => seen.some((event) => event.type === 'kasu-error'));
      await reach(el, 'confirmation');
      await settled(el);

      expect(seen.every((event) => event.target === el), 'retargeted to the element').to.equal(true);
      const of = (type: string) => seen.filter((event) => event.type === type).map((event) => event.detail);
      expect(of('kasu-ready')).to.deep.equal([{ step: 'curp' }]);
      expect(of('kasu-error')).to.deep.equal([{ code: 'PROVIDER_UNAVAILABLE' }]);
      expect(of('kasu-step-change')).to.deep.equal(STEP_ORDER.slice(1).map((step, i) => ({ step, index: i + 1, total: 7 })));
      const [complete] = of('kasu-complete') as Array<KasuCompleteEvent['detail']>;
      expect(Object.keys(complete ?? {}).sort()).to.deep.equal(['checkoutId', 'policy', 'reference']);
      expect(bff.requestsTo('submit')[0]?.path).to.include(`/${complete?.checkoutId}/`);
      expect(complete?.reference).to.match(/\S/);
      expect(complete?.policy).to.match(/\S/);
      expect(stepRoot(el).textContent).to.include(complete!.policy!);
    } finally {
      for (const type of types) document.removeEventListener(type, record);
    }
  });
});

describe('<kasu-checkout> twice on one page', () => {
  it('when two checkouts share a page, then each keeps its own step, session and events', async () => {
    const page = await fixture<HTMLDivElement>(html`<div>
      <kasu-checkout id="funeral" api=${FAKE_BFF_BASE}></kasu-checkout>
      <kasu-checkout id="retiro" api=${FAKE_BFF_BASE} locale="en"></kasu-checkout>
    </div>`);
    const [a, b] = [...page.querySelectorAll('kasu-checkout')] as KasuCheckout[];
    await settled(a!);
    await settled(b!);
    const changes: EventTarget[] = [];
    page.addEventListener('kasu-step-change', (event) => changes.push(event.target!));
    await enterCurp(a!);
    expect(heading(a!)).to.equal(TITLES.product);
    expect(heading(b!)).to.equal('Start with your CURP');
    expect(changes).to.deep.equal([a]);
    expect(Object.keys(sessionStorage)).to.deep.equal([`kasu-checkout:${FAKE_BFF_BASE}#funeral`]);
    expect(stepRoot(b!).querySelector('input')?.value).to.equal('');
  });
});

