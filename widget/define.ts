/**
 * Registers tags. Host pages do load the script twice (a tag manager plus a hard-coded tag): a tag that already
 * exists is left alone, with a warning.
 */
export function define(tag: string, element: CustomElementConstructor): void {
  if (customElements.get(tag)) {
    console.warn(`<${tag}> is already defined (is the KASU checkout script loaded twice?); keeping the first.`);
    return;
  }
  customElements.define(tag, element);
}
