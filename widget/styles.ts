/**
 * Styles shared by the checkout and its steps. The host page themes through `--kasu-*` custom properties
 * (they inherit into every shadow root) and `::part()`; the private `--_k-*` names hold the defaults.
 */
import { css } from 'lit';

export const tokens = css`
  :host {
    --_k-primary: var(--kasu-color-primary, var(--_kasu-scheme-primary, #0b5cad));
    --_k-on-primary: var(--kasu-color-on-primary, var(--_kasu-scheme-on-primary, #ffffff));
    --_k-text: var(--kasu-color-text, var(--_kasu-scheme-text, #1f2933));
    --_k-muted: var(--kasu-color-muted, var(--_kasu-scheme-muted, #4b5563));
    --_k-surface: var(--kasu-color-surface, var(--_kasu-scheme-surface, #ffffff));
    --_k-border: var(--kasu-color-border, var(--_kasu-scheme-border, #7b8794));
    --_k-error: var(--kasu-color-error, var(--_kasu-scheme-error, #b3261e));
    --_k-focus: var(--kasu-color-focus, var(--_kasu-scheme-focus, #1a73e8));
    --_k-radius: var(--kasu-radius, 8px);
    --_k-font-size: var(--kasu-font-size, 1rem);
    --_k-space: var(--kasu-spacing, 1rem);
    --_k-control-height: var(--kasu-control-height, 2.75rem);
  }
`;

/**
 * The dark scheme's defaults (every pair ≥ 4.5:1 against the surface). Set on `<kasu-checkout>` for theme="dark",
 * and for theme="auto" when the system prefers dark; they inherit into the steps' shadow roots.
 */
const dark = css`
  --_kasu-scheme-primary: #8ab4f8;
  --_kasu-scheme-on-primary: #0b1b33;
  --_kasu-scheme-text: #e8eaed;
  --_kasu-scheme-muted: #b6bdc8;
  --_kasu-scheme-surface: #15181d;
  --_kasu-scheme-border: #8b949e;
  --_kasu-scheme-error: #f28b82;
  --_kasu-scheme-focus: #a8c7fa;
  color-scheme: dark;
`;
export const schemes = css`
  :host([theme='dark']) {
    ${dark}
  }
  @media (prefers-color-scheme: dark) {
    :host([theme='auto']) {
      ${dark}
    }
  }
`;

export const formStyles = css`
  :host {
    display: block;
    color: var(--_k-text);
    font-size: var(--_k-font-size);
    line-height: 1.5;
  }
  form {
    display: grid;
    gap: var(--_k-space);
  }
  fieldset {
    display: grid;
    gap: calc(var(--_k-space) * 0.75);
    margin: 0;
    padding: 0;
    border: 0;
    min-width: 0;
  }
  legend {
    padding: 0;
    margin-bottom: calc(var(--_k-space) * 0.5);
    font-weight: 600;
  }
  .field {
    display: grid;
    gap: 0.25rem;
  }
  label {
    font-weight: 600;
  }
  .hint,
  .detail {
    margin: 0;
    color: var(--_k-muted);
    font-size: 0.875em;
  }
  input:not([type='radio'], [type='checkbox']),
  select {
    box-sizing: border-box;
    width: 100%;
    min-height: var(--_k-control-height);
    padding: 0.5rem 0.75rem;
    border: 1px solid var(--_k-border);
    border-radius: var(--_k-radius);
    background: var(--_k-surface);
    color: inherit;
    font: inherit;
  }
  input[aria-invalid='true'],
  select[aria-invalid='true'] {
    border-color: var(--_k-error);
    border-width: 2px;
  }
  input[type='radio'],
  input[type='checkbox'] {
    width: 1.25rem;
    height: 1.25rem;
    margin: 0.15rem 0 0;
    accent-color: var(--_k-primary);
  }
  .field-error {
    margin: 0;
    color: var(--_k-error);
    font-size: 0.875em;
    font-weight: 600;
  }
  .field-error:empty {
    display: none;
  }
  .option {
    display: grid;
    grid-template-columns: auto 1fr;
    gap: 0.25rem 0.75rem;
    padding: 0.75rem;
    border: 1px solid var(--_k-border);
    border-radius: var(--_k-radius);
    background: var(--_k-surface);
  }
  .option:has(input:checked) {
    border-color: var(--_k-primary);
    border-width: 2px;
  }
  .option .detail {
    grid-column: 2;
  }
  .option.unavailable label {
    font-weight: 400;
  }
  button {
    justify-self: start;
    min-height: var(--_k-control-height);
    padding: 0.5rem 1.25rem;
    border: 1px solid var(--_k-primary);
    border-radius: var(--_k-radius);
    background: var(--_k-primary);
    color: var(--_k-on-primary);
    font: inherit;
    font-weight: 600;
    cursor: pointer;
  }
  button:disabled {
    cursor: progress;
    background: var(--_k-muted);
    border-color: var(--_k-muted);
  }
  a {
    color: var(--_k-primary);
  }
  :focus-visible {
    outline: 3px solid var(--_k-focus);
    outline-offset: 2px;
  }
`;
