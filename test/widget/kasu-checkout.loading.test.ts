/// <reference types="mocha" />
// Its own file, so its own page: no earlier test has loaded the API module yet.
import { expect, fixture, html, waitUntil } from '@open-wc/testing';
import '../../widget/index.js';
import type { KasuCheckout } from '../../widget/index.js';
import { FAKE_BFF_BASE } from './fake-bff.js';
import { field, heading, TITLES } from './helpers.js';

const apiModuleRequested = () =>
  performance.getEntriesByType('resource').some((entry) => new URL(entry.name).pathname.startsWith('/widget/api.'));

describe('<kasu-checkout> first paint', () => {
  it('when the checkout first renders, then it is usable without the API client, loaded on first interaction', async () => {
    const el = await fixture<KasuCheckout>(html`<kasu-checkout api=${FAKE_BFF_BASE}></kasu-checkout>`);
    await expect(el).to.be.accessible();
    expect(heading(el)).to.equal(TITLES.curp);
    expect(field(el, 'CURP').disabled).to.equal(false);
    expect(apiModuleRequested(), 'API module loaded before it was needed').to.equal(false);
    expect(customElements.get('kasu-step-product'), 'later steps loaded before they were needed').to.equal(undefined);

    field(el, 'CURP').focus();
    await waitUntil(apiModuleRequested, 'the API module was never loaded');
    await waitUntil(() => customElements.get('kasu-step-payment'), 'the later steps were never loaded');
  });
});
