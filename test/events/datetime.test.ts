import { describe, expect, it } from 'vitest';
import {
  daysInMonth,
  readDate,
  readDateOrDateTime,
  readDateTime,
} from '../../src/events/datetime.js';

describe('readDateTime', () => {
  it.each([
    ['2024-02-29T00:00:00Z', '2024-02-29T00:00:00.000Z'],
    ['2000-02-29T12:00:00Z', '2000-02-29T12:00:00.000Z'],
    ['2026-01-31T23:59:59.999Z', '2026-01-31T23:59:59.999Z'],
    ['2026-01-31T23:59:59.123456789Z', '2026-01-31T23:59:59.123Z'],
    ['2026-01-31T12:00Z', '2026-01-31T12:00:00.000Z'],
    ['2026-01-31t12:00:00z', '2026-01-31T12:00:00.000Z'],
    ['2026-03-01T01:30:00+05:30', '2026-02-28T20:00:00.000Z'],
    ['2026-12-31T23:00:00-23:59', '2027-01-01T22:59:00.000Z'],
    ['2026-01-01T00:00:00-00:00', '2026-01-01T00:00:00.000Z'],
    ['0001-01-01T00:00:00Z', '0001-01-01T00:00:00.000Z'],
    ['9999-12-31T23:59:59Z', '9999-12-31T23:59:59.000Z'],
  ])('should read %s as %s', (text, iso) => {
    const reading = readDateTime(text);
    expect(reading.ok && new Date(reading.ms).toISOString()).toBe(iso);
  });

  it.each([
    ['2020-02-30T00:00:00Z', 'day 30 does not exist: February 2020 has 29 days'],
    ['2023-02-29T00:00:00Z', 'day 29 does not exist: February 2023 has 28 days'],
    ['1900-02-29T00:00:00Z', 'day 29 does not exist: February 1900 has 28 days'],
    ['2026-06-31T00:00:00Z', 'day 31 does not exist: June 2026 has 30 days'],
    ['2026-01-32T00:00:00Z', 'day 32 does not exist: January 2026 has 31 days'],
    ['2026-01-00T00:00:00Z', 'day 00 does not exist: January 2026 has 31 days'],
    ['2026-13-01T00:00:00Z', 'month 13 does not exist'],
    ['2026-00-01T00:00:00Z', 'month 00 does not exist'],
    ['2026-01-01T24:00:00Z', 'hour 24 does not exist: write 00:00 of the next day'],
    ['2026-01-01T23:60:00Z', 'minute 60 does not exist'],
    ['2026-01-01T23:59:60Z', 'second 60 does not exist (leap seconds are not accepted)'],
    ['2026-01-01T12:00:00+24:00', 'the offset 24:00 is out of range (at most ±23:59)'],
    ['2026-01-01T12:00:00-05:60', 'the offset 05:60 is out of range (at most ±23:59)'],
    ['2026-01-01T12:00:00', 'it is not an ISO 8601 date-time with a time zone'],
    ['2026-01-01', 'it is not an ISO 8601 date-time with a time zone'],
    ['March 1 2020', 'it is not an ISO 8601 date-time with a time zone'],
    ['2026-01-01T12:00:00Z ', 'it is not an ISO 8601 date-time with a time zone'],
    ['+002026-01-01T12:00:00Z', 'it is not an ISO 8601 date-time with a time zone'],
  ])('should refuse %s: %s', (text, problem) => {
    expect(readDateTime(text)).toEqual({ ok: false, problem });
  });
});

describe('readDate and readDateOrDateTime', () => {
  it('should read a date that exists as midnight UTC, and refuse one that does not', () => {
    expect(readDate('2024-02-29')).toEqual({ ok: true, ms: Date.UTC(2024, 1, 29) });
    expect(readDate('2025-02-29')).toEqual({
      ok: false,
      problem: 'day 29 does not exist: February 2025 has 28 days',
    });
    expect(readDate('2025-2-1')).toMatchObject({ ok: false });
    expect(readDateOrDateTime('2024-02-29')).toEqual(readDate('2024-02-29'));
    expect(readDateOrDateTime('2024-02-29T10:00:00Z')).toEqual({
      ok: true,
      ms: Date.UTC(2024, 1, 29, 10),
    });
    expect(readDateOrDateTime('2024-02-30T10:00:00Z')).toMatchObject({ ok: false });
  });

  it('should count the days of every month by the Gregorian calendar', () => {
    const days = (year: number) =>
      Array.from({ length: 12 }, (_, i) => daysInMonth(year, i + 1)).join(' ');
    expect(days(2026)).toBe('31 28 31 30 31 30 31 31 30 31 30 31');
    expect(days(2024)).toBe('31 29 31 30 31 30 31 31 30 31 30 31');
    expect([1900, 2000, 2100, 2400].map((y) => daysInMonth(y, 2))).toEqual([28, 29, 28, 29]);
    // The same answer as the calendar of Date, for every month of four centuries.
    for (let year = 1800; year < 2200; year++) {
      for (let month = 1; month <= 12; month++) {
        expect(daysInMonth(year, month)).toBe(new Date(Date.UTC(year, month, 0)).getUTCDate());
      }
    }
  });
});
