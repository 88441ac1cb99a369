import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS, ERROR_CODES, errorMessage } from '../../shared/errors.js';

describe('error catalogue', () => {
  it('when any code is shown to a customer, then it has copy in es-MX and English', () => {
    for (const code of ERROR_CODES) {
      expect(errorMessage(code, 'es-MX').length, code).toBeGreaterThan(10);
      expect(errorMessage(code, 'en').length, code).toBeGreaterThan(10);
      expect(errorMessage(code, 'en')).not.toBe(errorMessage(code, 'es-MX'));
    }
  });

  it('when the README documents errors, then its table lists every code with its status', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    for (const code of ERROR_CODES) {
      const row = readme.split('\n').find((line) => line.startsWith(`| \`${code}\` |`));
      expect(row, `README row for ${code}`).toBeTruthy();
      const status = ERRORS[code].status;
      expect(row).toContain(status === 0 ? '| —' : `| ${status} |`);
    }
  });
});
