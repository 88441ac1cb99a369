import { describe, expect, it } from 'vitest';
import { MX_STATE_CODES, normalizePhone } from '../../shared/mexico.js';

describe('mexico', () => {
  it('when the states are listed, then there are the 32 federal entities', () => {
    expect(MX_STATE_CODES).toHaveLength(32);
  });

  it.each([
    ['55 1234 5678', '5512345678'],
    ['(55) 1234-5678', '5512345678'],
    ['+52 55 1234 5678', '5512345678'],
    ['525512345678', '5512345678'],
    ['+52 1 55 1234 5678', '5512345678'],
  ])('when the phone is %s, then it is normalised to 10 digits', (input, expected) => {
    expect(normalizePhone(input)).toBe(expected);
  });

  it.each(['12345', '55123456789', '55-1234-567a', ''])('when the phone is %s, then it is refused', (input) => {
    expect(normalizePhone(input)).toBeNull();
  });
});
