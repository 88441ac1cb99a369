/**
 * The widget's entry: registers the first step and the checkout (element modules have no side effects; the later
 * steps are registered by later-steps.ts, loaded on demand). Loading the script twice does no harm (define.ts).
 *
 *   <script type="module" src="https://…/kasu-checkout.js"></script>
 *   <kasu-checkout api="https://bff.example" locale="es-MX"></kasu-checkout>
 */
import { define } from './define.js';
import { KasuCheckout } from './kasu-checkout.js';
import { KasuStepCurp } from './steps/kasu-step-curp.js';

// The first step before `<kasu-checkout>`, so that it renders it already upgraded. The later steps come with the
// API client, at the first interaction (later-steps.ts).
define('kasu-step-curp', KasuStepCurp);
define('kasu-checkout', KasuCheckout);

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
