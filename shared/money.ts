/**
 * Money is an integer number of centavos plus a currency, everywhere in code.
 * Conversions to and from decimal strings and floats happen only at the edges (providers, display).
 * Pure (no zod), so the widget's first paint can format prices; the schemas are in contract.ts.
 */

/** A whole, non-negative number of centavos. */
export type Centavos = number;
export type Currency = 'MXN';
export type Money = { amount: Centavos; currency: Currency };

/** A provider's amount in pesos (a JSON number such as 1234.5) to centavos. */
export function pesosToCentavos(pesos: number): Centavos {
  if (!Number.isFinite(pesos) || pesos < 0) throw new RangeError(`not an amount: ${pesos}`);
  return Math.round(pesos * 100);
}

/** Centavos as a plain decimal string with two places ("1234.50"), as payment APIs take it. */
export function centavosToDecimal(amount: Centavos): string {
  if (!Number.isSafeInteger(amount) || amount < 0) throw new RangeError(`not centavos: ${amount}`);
  const pesos = Math.trunc(amount / 100);
  const cents = amount % 100;
  return `${pesos}.${String(cents).padStart(2, '0')}`;
}

/** Parse a decimal string ("1234.5", "1234.50", "1234") to centavos; rejects more than two decimals. */
export function decimalToCentavos(value: string): Centavos {
  const match = /^(\d+)(?:\.(\d{1,2}))?$/.exec(value.trim());
  if (!match) throw new RangeError(`not a decimal amount: ${value}`);
  return Number(match[1]) * 100 + Number((match[2] ?? '').padEnd(2, '0'));
}

/** Display helper: "$1,234.50" in es-MX, "MX$1,234.50" in en. */
export function formatMoney(money: Money, locale: string): string {
  return new Intl.NumberFormat(locale, { style: 'currency', currency: money.currency }).format(money.amount / 100);
}

export type InstalmentPlan = {
  /** Number of monthly payments; 1 = pago de contado. */
  count: number;
  /** Each payment, in centavos. */
  instalment: Centavos;
  /** instalment × count, in centavos. */
  total: Centavos;
};

/**
 * KASU's plan of n monthly payments: the annuity payment = P·r·(1+r)^n / ((1+r)^n − 1) with r = yearly rate / 12,
 * rounded to the centavo (P/n when the rate is 0); total = payment × n.
 */
export function instalmentPlan(price: Centavos, count: number, annualRatePercent: number): InstalmentPlan {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`not an instalment count: ${count}`);
  if (count === 1) return { count, instalment: price, total: price };
  const r = annualRatePercent / 100 / 12;
  const exact = r === 0 ? price / count : (price * r * (1 + r) ** count) / ((1 + r) ** count - 1);
  const instalment = Math.round(exact);
  return { count, instalment, total: instalment * count };
}
