import { describe, expect, it } from 'vitest';
import { curpCheckDigit, parseCurp } from '../../shared/curp.js';

const TODAY = new Date('2026-11-23T12:00:00Z');

/** Builds a CURP with a correct check digit from its first 17 characters. */
const withCheckDigit = (first17: string) => first17 + curpCheckDigit(first17);

describe('parseCurp', () => {
  it.each([
    ['CAMC880526HMCBNR04', '1988-05-26', 'H', 'MC', 38],
    ['CAPC200504HMCBXRA2', '2020-05-04', 'H', 'MC', 6],
    ['REAE060617MMCYLVA4', '2006-06-17', 'M', 'MC', 20],
    ['BOXW310820HNERXN09', '1931-08-20', 'H', 'NE', 95],
  ])('when %s is parsed, then it gives its birth date, sex, state and age', (curp, birthDate, sex, state, age) => {
    expect(parseCurp(curp, TODAY)).toEqual({ ok: true, curp, birthDate, sex, state, age });
  });

  it('when the input is lowercase with spaces around it, then it is trimmed and upper-cased first', () => {
    expect(parseCurp('  camc880526hmcbnr04 \n', TODAY)).toMatchObject({ ok: true, curp: 'CAMC880526HMCBNR04' });
  });

  it('when the CURP is non-binary (sex X), then it is valid with sex X', () => {
    const curp = withCheckDigit('PEXJ900101XDFRRN0');
    expect(parseCurp(curp, TODAY)).toMatchObject({ ok: true, sex: 'X', state: 'DF', birthDate: '1990-01-01' });
  });

  it('when position 17 is a letter, then the birth year is in the 2000s; a digit, the 1900s', () => {
    expect(parseCurp(withCheckDigit('LOPM100315MJCPRRA'), TODAY)).toMatchObject({ ok: true, birthDate: '2010-03-15' });
    expect(parseCurp(withCheckDigit('LOPM100315MJCPRR0'), TODAY)).toMatchObject({ ok: true, birthDate: '1910-03-15' });
  });

  it('when the day before the birthday, then the age is one less than on the birthday', () => {
    const curp = 'CAMC880526HMCBNR04';
    expect(parseCurp(curp, new Date('2026-05-25T12:00:00Z'))).toMatchObject({ age: 37 });
    expect(parseCurp(curp, new Date('2026-05-26T12:00:00Z'))).toMatchObject({ age: 38 });
  });

  it.each([
    ['too short', 'CAMC880526HMCBNR0'],
    ['too long', 'CAMC880526HMCBNR041'],
    ['digit among the letters', 'C4MC880526HMCBNR04'],
    ['second letter not a vowel', 'CBMC880526HMCBNR04'],
    ['sex not H, M or X', 'CAMC880526ZMCBNR04'],
    ['unknown birth state', 'CAMC880526HZZBNR04'],
    ['vowel among the consonants', 'CAMC880526HMCANR04'],
    ['empty', ''],
  ])('when the CURP is %s, then CURP_INVALID_FORMAT', (_kind, curp) => {
    expect(parseCurp(curp, TODAY)).toEqual({ ok: false, code: 'CURP_INVALID_FORMAT' });
  });

  it('when the check digit is wrong, then CURP_INVALID_CHECK_DIGIT', () => {
    expect(parseCurp('CAMC880526HMCBNR05', TODAY)).toEqual({ ok: false, code: 'CURP_INVALID_CHECK_DIGIT' });
  });

  it.each([
    ['30 February', 'CAMC880230HMCBNR0'],
    ['month 13', 'CAMC881326HMCBNR0'],
    ['day 00', 'CAMC880500HMCBNR0'],
    ['29 February of a common year', 'CAMC890229HMCBNR0'],
  ])('when the date is %s, then CURP_INVALID_DATE', (_kind, first17) => {
    expect(parseCurp(withCheckDigit(first17), TODAY)).toEqual({ ok: false, code: 'CURP_INVALID_DATE' });
  });

  it('when the birth date is in the future, then CURP_INVALID_DATE', () => {
    expect(parseCurp(withCheckDigit('CAMC271231HMCBNRA'), TODAY)).toEqual({ ok: false, code: 'CURP_INVALID_DATE' });
  });

  it('when 29 February of a leap year, then it is valid', () => {
    expect(parseCurp(withCheckDigit('CAMC880229HMCBNR0'), TODAY)).toMatchObject({ ok: true, birthDate: '1988-02-29' });
  });

  it.each(['BACA', 'PUTO', 'MULA', 'WUEY'])('when the first four letters spell %s, then CURP_INCONVENIENT_WORD', (word) => {
    expect(parseCurp(withCheckDigit(`${word}880526HMCBNR0`), TODAY)).toEqual({ ok: false, code: 'CURP_INCONVENIENT_WORD' });
  });
});
