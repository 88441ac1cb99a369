/**
 * Drives `<kasu-checkout>` the way a customer does: finds things by their visible label or text inside the
 * (open) shadow roots, types, clicks, and waits for what the customer would wait for.
 */
import { waitUntil } from '@open-wc/testing';
import type { KasuCheckout } from '../../widget/index.js';
import { ADULT_CURP } from './fake-bff.js';

/** Every element matching `selector` in `root` and in every shadow root below it, in document order. */
export function deepQueryAll<E extends Element = HTMLElement>(root: ParentNode, selector: string): E[] {
  const found: E[] = [];
  const visit = (node: ParentNode) => {
    for (const element of node.querySelectorAll('*')) {
      if (element.matches(selector)) found.push(element as E);
      if (element.shadowRoot) visit(element.shadowRoot);
    }
  };
  visit(root);
  return found;
}

export function shadow(el: KasuCheckout): ShadowRoot {
  if (!el.shadowRoot) throw new Error('no shadow root');
  return el.shadowRoot;
}

/** The shadow root of the step on screen. */
export function stepRoot(el: KasuCheckout): ShadowRoot {
  const step = shadow(el).querySelector('[part~="step"]');
  if (!step?.shadowRoot) throw new Error('no step on screen');
  return step.shadowRoot;
}

/** Waits for the checkout and the step on screen to finish rendering. */
export async function settled(el: KasuCheckout): Promise<void> {
  await el.updateComplete;
  await (stepRoot(el).host as unknown as { updateComplete: Promise<unknown> }).updateComplete;
}

export function heading(el: KasuCheckout): string {
  return text(shadow(el).querySelector('h2'));
}

export function progress(el: KasuCheckout): string {
  return text(shadow(el).querySelector('[part="progress"]'));
}

export function liveRegion(el: KasuCheckout): HTMLElement | null {
  return shadow(el).querySelector('[role="status"]');
}

/** The error panel's message, or '' when there is none. */
export function errorPanel(el: KasuCheckout): string {
  return text(shadow(el).querySelector('[part="error"] .message'));
}

export function text(node: Node | null | undefined): string {
  return (node?.textContent ?? '').replace(/\s+/g, ' ').trim();
}

/** The control whose `<label>` reads `label` (exactly, or starting with it), in the current step. */
export function field<E extends HTMLElement = HTMLInputElement>(el: KasuCheckout, label: string | RegExp): E {
  const root = stepRoot(el);
  for (const candidate of root.querySelectorAll('label')) {
    const content = text(candidate);
    if (typeof label === 'string' ? content === label : label.test(content)) {
      const control = root.getElementById(candidate.htmlFor);
      if (control) return control as E;
    }
  }
  throw new Error(`no field labelled ${label}`);
}

/** The text of the elements a control's aria-describedby points at (in its own shadow root). */
export function description(control: HTMLElement): string {
  const root = control.getRootNode() as ShadowRoot;
  return (control.getAttribute('aria-describedby') ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map((id) => text(root.getElementById(id)))
    .join(' ');
}

/** A button anywhere in the checkout whose text is `label`. */
export function button(el: KasuCheckout, label: string): HTMLButtonElement {
  const match = deepQueryAll<HTMLButtonElement>(shadow(el), 'button').find((candidate) => text(candidate) === label);
  if (!match) throw new Error(`no button "${label}"`);
  return match;
}

export function hasButton(el: KasuCheckout, label: string): boolean {
  return deepQueryAll<HTMLButtonElement>(shadow(el), 'button').some((candidate) => text(candidate) === label);
}

/** Types into a field as a paste would: focus, new value, one input event. */
export function fill(control: HTMLInputElement | HTMLSelectElement, value: string): void {
  control.focus();
  control.value = value;
  const type = control instanceof HTMLSelectElement ? 'change' : 'input';
  control.dispatchEvent(new Event(type, { bubbles: true, composed: true }));
}

export function blur(control: HTMLElement): void {
  control.blur();
}

export async function untilHeading(el: KasuCheckout, title: string): Promise<void> {
  await waitUntil(() => heading(el) === title, `heading never became "${title}" (it is "${heading(el)}")`, {
    timeout: 4000,
  });
  await el.updateComplete;
}

export async function untilError(el: KasuCheckout): Promise<string> {
  await waitUntil(() => errorPanel(el) !== '', 'no error was shown', { timeout: 4000 });
  return errorPanel(el);
}

// ---------- the steps, in Spanish (the default locale) ----------

export const TITLES = {
  curp: 'Empieza con tu CURP',
  product: 'Elige tu producto',
  plan: 'Elige cómo pagar',
  contact: 'Tus datos de contacto y domicilio',
  consents: 'Revisa y acepta los documentos',
  payment: 'Forma de pago',
  confirmation: '¡Listo! Tu compra quedó registrada',
} as const;

export type Step = keyof typeof TITLES;

export async function enterCurp(el: KasuCheckout, curp = ADULT_CURP): Promise<void> {
  fill(field(el, 'CURP'), curp);
  button(el, 'Continuar').click();
  await untilHeading(el, TITLES.product);
}

export async function chooseProduct(el: KasuCheckout, product = 'Funerario'): Promise<void> {
  field(el, product).click();
  button(el, 'Continuar').click();
  await untilHeading(el, TITLES.plan);
}

export async function choosePlan(el: KasuCheckout, label: string | RegExp = /^12 pagos mensuales/): Promise<void> {
  field(el, label).click();
  button(el, 'Continuar').click();
  await untilHeading(el, TITLES.contact);
}

export const CONTACT = {
  'Correo electrónico': 'maria.camacho@correo.mx',
  'Teléfono celular (10 dígitos)': '55 1234 5678',
  Calle: 'Avenida Insurgentes Sur',
  'Número exterior e interior': '1602 int. 4',
  Colonia: 'Crédito Constructor',
  'Municipio o alcaldía': 'Benito Juárez',
  'Código postal': '03940',
} as const;

export function fillContact(el: KasuCheckout, overrides: Partial<Record<keyof typeof CONTACT, string>> = {}): void {
  for (const [label, value] of Object.entries({ ...CONTACT, ...overrides })) fill(field(el, label), value);
  fill(field<HTMLSelectElement>(el, 'Estado'), 'CMX');
}

export async function submitContact(el: KasuCheckout): Promise<void> {
  fillContact(el);
  button(el, 'Continuar').click();
  await untilHeading(el, TITLES.consents);
}

export async function acceptConsents(el: KasuCheckout): Promise<void> {
  for (const label of [/términos y condiciones/, /aviso de privacidad/, /fideicomiso F\/0003/]) {
    const checkbox = field(el, label);
    if (!checkbox.checked) checkbox.click();
  }
  button(el, 'Continuar').click();
  await untilHeading(el, TITLES.payment);
}

export const STEP_ORDER: Step[] = ['curp', 'product', 'plan', 'contact', 'consents', 'payment', 'confirmation'];

/** From the step before `step` to `step`, the way a customer does it. */
export async function advanceTo(el: KasuCheckout, step: Step): Promise<void> {
  switch (step) {
    case 'curp':
      return;
    case 'product':
      return enterCurp(el);
    case 'plan':
      return chooseProduct(el);
    case 'contact':
      return choosePlan(el);
    case 'consents':
      return submitContact(el);
    case 'payment':
      return acceptConsents(el);
    case 'confirmation':
      button(el, 'Confirmar compra').click();
      return untilHeading(el, TITLES.confirmation);
  }
}

/** From the first step to `step`. */
export async function reach(el: KasuCheckout, step: Step): Promise<void> {
  for (const name of STEP_ORDER.slice(1, STEP_ORDER.indexOf(step) + 1)) await advanceTo(el, name);
}
