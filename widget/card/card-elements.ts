/**
 * The card's elements, registered when first needed: the customer chose to pay by card, or the confirmation shows a
 * card purchase. Loaded with a dynamic `import()` to keep the first paint light; like index.ts, a tag that already
 * exists (the script loaded twice) is left alone.
 */
// First: configures zod before shared/contract.ts builds its schemas (the frame parses the tokenizer's message).
import '../zod-jitless.js';
import { KasuCardFrame } from './kasu-card-frame.js';
import { KasuCardSchedule } from './kasu-card-schedule.js';

const ELEMENTS: ReadonlyArray<[string, CustomElementConstructor]> = [
  ['kasu-card-frame', KasuCardFrame],
  ['kasu-card-schedule', KasuCardSchedule],
];

for (const [tag, element] of ELEMENTS) {
  if (!customElements.get(tag)) customElements.define(tag, element);
}
