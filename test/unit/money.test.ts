import { describe, expect, it } from 'vitest';
import { centavosToDecimal, decimalToCentavos, formatMoney, instalmentPlan, pesosToCentavos } from '../../shared/money.js';

describe('money', () => {
  it('when pesos from a provider are converted, then floating-point noise is rounded to the centavo', () => {
    expect(pesosToCentavos(1234.5)).toBe(123450);
    expect(pesosToCentavos(0.1 + 0.2)).toBe(30);
    expect(pesosToCentavos(19.99)).toBe(1999);
    expect(() => pesosToCentavos(-1)).toThrow(RangeError);
    expect(() => pesosToCentavos(Number.NaN)).toThrow(RangeError);
  });

  it('when centavos become a decimal string and back, then nothing is lost', () => {
    for (const amount of [0, 1, 10, 99, 100, 123450, 590000, 9_007_199_254_740_99]) {
      expect(decimalToCentavos(centavosToDecimal(amount))).toBe(amount);
    }
    expect(centavosToDecimal(5)).toBe('0.05');
    expect(decimalToCentavos('1234.5')).toBe(123450);
    expect(() => decimalToCentavos('1.234')).toThrow(RangeError);
    expect(() => centavosToDecimal(1.5)).toThrow(RangeError);
  });

  it('when a plan has one payment, then it is the cash price', () => {
    expect(instalmentPlan(590000, 1, 12)).toEqual({ count: 1, instalment: 590000, total: 590000 });
  });

  it('when the rate is zero, then payments are the price split evenly (rounded to the centavo)', () => {
    expect(instalmentPlan(100000, 3, 0)).toEqual({ count: 3, instalment: 33333, total: 99999 });
  });

  it('when the rate is 12% a year over 12 months, then the annuity payment is KASU’s formula', () => {
    // 5,900.00 at 1% a month for 12 months: 5900 × 0.01 × 1.01^12 / (1.01^12 − 1) = 524.2079 → 524.21
    expect(instalmentPlan(590000, 12, 12)).toEqual({ count: 12, instalment: 52421, total: 629052 });
  });

  it('when formatted for a person, then es-MX and en show pesos with two decimals', () => {
    expect(formatMoney({ amount: 123450, currency: 'MXN' }, 'es-MX')).toBe('$1,234.50');
    expect(formatMoney({ amount: 123450, currency: 'MXN' }, 'en')).toMatch(/MX\$1,234\.50/);
  });
});
