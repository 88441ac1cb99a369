import { describe, expect, it } from 'vitest';
import { chargeableAt, dueDate, mexicoCityDate, payDayOf } from '../../server/cards/schedule.js';

describe('instalment schedule', () => {
  it('when the first charge is on the 15th, then every later instalment falls on the 15th of the following months', () => {
    expect([1, 2, 3, 13].map((n) => dueDate('2026-11-15', payDayOf('2026-11-15'), n))).toEqual([
      '2026-11-15', '2026-12-15', '2027-01-15', '2027-11-15',
    ]);
  });

  it('when the first charge is on the 30th, then the pay day is the 28th so February has it too', () => {
    expect(payDayOf('2027-01-30')).toBe(28);
    expect([2, 3].map((n) => dueDate('2027-01-30', 28, n))).toEqual(['2027-02-28', '2027-03-28']);
  });

  it('when it is 23:30 on 30 November in Mexico City, then the calendar date there is still the 30th', () => {
    expect(mexicoCityDate(new Date('2026-12-01T05:30:00Z'))).toBe('2026-11-30');
  });

  it('when an instalment is due on a date, then it becomes chargeable at 09:00 Mexico City time', () => {
    expect(chargeableAt('2026-12-15').toISOString()).toBe('2026-12-15T15:00:00.000Z');
  });
});
