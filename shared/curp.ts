/**
 * CURP (Clave Única de Registro de Población) parsing, shared by the widget and the server.
 * Pure: no DOM, no Node APIs. Only RENAPO (through KASU) knows whether a CURP really exists;
 * this module only says whether it is well formed.
 */

export const CURP_STATES = [
  'AS', 'BC', 'BS', 'CC', 'CL', 'CM', 'CS', 'CH', 'DF', 'DG', 'GT', 'GR', 'HG', 'JC', 'MC', 'MN', 'MS',
  'NT', 'NL', 'OC', 'PL', 'QT', 'QR', 'SP', 'SL', 'SR', 'TC', 'TS', 'TL', 'VZ', 'YN', 'ZS', 'NE',
] as const;
export type CurpState = (typeof CURP_STATES)[number];

/** RENAPO's 81 "palabras inconvenientes" that positions 1–4 never spell (as python-stdnum lists them). */
const INCONVENIENT_WORDS = new Set(
  `BACA BAKA BUEI BUEY CACA CACO CAGA CAGO CAKA CAKO COGE COGI COJA COJE
   COJI COJO COLA CULO FALO FETO GETA GUEI GUEY JETA JOTO KACA KACO KAGA
   KAGO KAKA KAKO KOGE KOGI KOJA KOJE KOJI KOJO KOLA KULO LILO LOCA LOCO
   LOKA LOKO MAME MAMO MEAR MEAS MEON MIAR MION MOCO MOKO MULA MULO NACA
   NACO PEDA PEDO PENE PIPI PITO POPO PUTA PUTO QULO RATA ROBA ROBE ROBO
   RUIN SENO TETA VACA VAGA VAGO VAKA VUEI VUEY WUEI WUEY`.split(/\s+/),
);

const CHECK_ALPHABET = '0123456789ABCDEFGHIJKLMNÑOPQRSTUVWXYZ';
const SHAPE = /^[A-Z][AEIOUX][A-Z]{2}\d{6}[HMX][A-Z]{2}[B-DF-HJ-NP-TV-Z]{3}[0-9A-Z]\d$/;

export type CurpSex = 'H' | 'M' | 'X';

export type CurpErrorCode =
  | 'CURP_INVALID_FORMAT'
  | 'CURP_INVALID_CHECK_DIGIT'
  | 'CURP_INVALID_DATE'
  | 'CURP_INCONVENIENT_WORD';

export type ParsedCurp = {
  ok: true;
  curp: string;
  /** YYYY-MM-DD */
  birthDate: string;
  sex: CurpSex;
  /** Birth state (or NE, born abroad); not the residence state. */
  state: CurpState;
  /** Whole years at `today`. */
  age: number;
};

export type CurpResult = ParsedCurp | { ok: false; code: CurpErrorCode };

/** The check digit (position 18) for the first 17 characters. */
export function curpCheckDigit(first17: string): string {
  let sum = 0;
  for (let i = 0; i < 17; i++) {
    const value = CHECK_ALPHABET.indexOf(first17.charAt(i));
    if (value < 0) return '';
    sum += value * (18 - i);
  }
  return String((10 - (sum % 10)) % 10);
}

/** Whole years between a YYYY-MM-DD date and `today` (in UTC). */
export function ageOn(birthDate: string, today: Date): number {
  const [y, m, d] = birthDate.split('-').map(Number) as [number, number, number];
  let age = today.getUTCFullYear() - y;
  const month = today.getUTCMonth() + 1;
  if (month < m || (month === m && today.getUTCDate() < d)) age -= 1;
  return age;
}

export function parseCurp(value: string, today: Date = new Date()): CurpResult {
  const curp = value.trim().toUpperCase();
  if (!SHAPE.test(curp)) return { ok: false, code: 'CURP_INVALID_FORMAT' };
  const state = curp.slice(11, 13);
  if (!(CURP_STATES as readonly string[]).includes(state)) return { ok: false, code: 'CURP_INVALID_FORMAT' };
  if (INCONVENIENT_WORDS.has(curp.slice(0, 4))) return { ok: false, code: 'CURP_INCONVENIENT_WORD' };

  // Position 17 tells the century: a digit for 1900–1999, a letter for 2000 onwards.
  const century = /\d/.test(curp.charAt(16)) ? 1900 : 2000;
  const year = century + Number(curp.slice(4, 6));
  const month = Number(curp.slice(6, 8));
  const day = Number(curp.slice(8, 10));
  const date = new Date(Date.UTC(year, month - 1, day));
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) {
    return { ok: false, code: 'CURP_INVALID_DATE' };
  }
  const birthDate = `${year}-${curp.slice(6, 8)}-${curp.slice(8, 10)}`;
  const age = ageOn(birthDate, today);
  if (age < 0) return { ok: false, code: 'CURP_INVALID_DATE' };

  if (curpCheckDigit(curp) !== curp.charAt(17)) return { ok: false, code: 'CURP_INVALID_CHECK_DIGIT' };

  return { ok: true, curp, birthDate, sex: curp.charAt(10) as CurpSex, state: state as CurpState, age };
}
