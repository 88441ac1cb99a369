/**
 * The steps after the CURP, loaded with a dynamic `import()` together with the API client (the widget cannot leave
 * the first step without it), so that the first paint carries only the first step.
 */
import { define } from './define.js';
import { KasuStepConfirmation } from './steps/kasu-step-confirmation.js';
import { KasuStepConsents } from './steps/kasu-step-consents.js';
import { KasuStepContact } from './steps/kasu-step-contact.js';
import { KasuStepPayment } from './steps/kasu-step-payment.js';
import { KasuStepPlan } from './steps/kasu-step-plan.js';
import { KasuStepProduct } from './steps/kasu-step-product.js';

define('kasu-step-product', KasuStepProduct);
define('kasu-step-plan', KasuStepPlan);
define('kasu-step-contact', KasuStepContact);
define('kasu-step-consents', KasuStepConsents);
define('kasu-step-payment', KasuStepPayment);
define('kasu-step-confirmation', KasuStepConfirmation);
