/**
 * The widget's entry, and the one module that registers tags (element modules have no side effects). Host pages
 * do load the script twice (a tag manager plus a hard-coded tag): a tag that already exists is left alone,
 * with a warning.
 *
 *   <script type="module" src="https://…/kasu-checkout.js"></script>
 *   <kasu-checkout api="https://bff.example" locale="es-MX"></kasu-checkout>
 */
import { KasuCheckout } from './kasu-checkout.js';
import { KasuStepConfirmation } from './steps/kasu-step-confirmation.js';
import { KasuStepConsents } from './steps/kasu-step-consents.js';
import { KasuStepContact } from './steps/kasu-step-contact.js';
import { KasuStepCurp } from './steps/kasu-step-curp.js';
import { KasuStepPayment } from './steps/kasu-step-payment.js';
import { KasuStepPlan } from './steps/kasu-step-plan.js';
import { KasuStepProduct } from './steps/kasu-step-product.js';

const ELEMENTS: ReadonlyArray<[string, CustomElementConstructor]> = [
  // Steps first, so that `<kasu-checkout>` renders them already upgraded.
  ['kasu-step-curp', KasuStepCurp],
  ['kasu-step-product', KasuStepProduct],
  ['kasu-step-plan', KasuStepPlan],
  ['kasu-step-contact', KasuStepContact],
  ['kasu-step-consents', KasuStepConsents],
  ['kasu-step-payment', KasuStepPayment],
  ['kasu-step-confirmation', KasuStepConfirmation],
  ['kasu-checkout', KasuCheckout],
];

for (const [tag, element] of ELEMENTS) define(tag, element);

function define(tag: string, element: CustomElementConstructor): void {
  if (customElements.get(tag)) {
    console.warn(`<${tag}> is already defined (is the KASU checkout script loaded twice?); keeping the first.`);
    return;
  }
  customElements.define(tag, element);
}

export { KasuCheckout };
export {
  KasuCompleteEvent,
  KasuErrorEvent,
  KasuPaymentChangeEvent,
  KasuReadyEvent,
  KasuStepChangeEvent,
} from './events.js';
export type { KasuCompleteDetail, KasuPaymentChangeDetail, KasuStepChangeDetail } from './events.js';
export type { StepName } from './flow.js';
export type { Locale } from './i18n.js';
