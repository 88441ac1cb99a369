/**
 * The instalment schedule of a card subscription. Rule: the first instalment is charged at enrollment; every later
 * one falls due monthly on the "pay day", the day of the month of the first charge capped at 28 so that every
 * month has it (enrolled on 30 January → 28 February, 28 March, …). Dates are calendar dates in Mexico City.
 */

/** The pay day for a first charge made on `date` (YYYY-MM-DD). */
export function payDayOf(date: string): number {
  return Math.min(Number(date.slice(8, 10)), 28);
}

/** Due date (YYYY-MM-DD) of instalment `number` (1 = the first charge's date). */
export function dueDate(firstChargeDate: string, payDay: number, number: number): string {
  if (number === 1) return firstChargeDate;
  const year = Number(firstChargeDate.slice(0, 4));
  const month = Number(firstChargeDate.slice(5, 7)) - 1 + (number - 1);
  const date = new Date(Date.UTC(year, month, payDay));
  return date.toISOString().slice(0, 10);
}

const MEXICO_CITY_OFFSET_MS = -6 * 3_600_000;

/** A calendar date in Mexico City (UTC−6 all year since 2022: Mexico abolished daylight saving time). */
export function mexicoCityDate(instant: Date): string {
  return new Date(instant.getTime() + MEXICO_CITY_OFFSET_MS).toISOString().slice(0, 10);
}

/** The hour of the day (0–23) in Mexico City. */
export function mexicoCityHour(instant: Date): number {
  return new Date(instant.getTime() + MEXICO_CITY_OFFSET_MS).getUTCHours();
}

/** The moment a due date starts being chargeable: 09:00 in Mexico City, a civil hour for a charge. */
export function chargeableAt(due: string): Date {
  return new Date(`${due}T15:00:00Z`);
}
