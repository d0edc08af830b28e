/**
 * Reading the date-times clients send (a published `timestamp`, a filter's `since` and `until`,
 * the CLI's dates). `Date.parse` alone rolls an impossible date over (`2020-02-30` becomes March
 * 1st, `24:00` the next day); here every field is checked against the calendar first, so a date
 * that does not exist is refused instead of stored as another one.
 */

/** RFC 3339 date-time with a zone, e.g. `2026-01-31T12:00:00Z` or `…+02:00`; seconds optional. */
const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|[+-](\d{2}):(\d{2}))$/i;
/** A calendar date, `2026-01-31`. */
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
] as const;

/** What {@link readDateTime} and {@link readDate} found: the instant, or why there is none. */
export type DateReading = { ok: true; ms: number } | { ok: false; problem: string };

/** The number of days of `month` (1–12) in `year`, by the Gregorian calendar. */
export function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Why a calendar date does not exist, or null when it does. */
function dateProblem(year: string, month: string, day: string): string | null {
  const m = Number(month);
  const d = Number(day);
  if (m < 1 || m > 12) return `month ${month} does not exist`;
  const days = daysInMonth(Number(year), m);
  if (d < 1 || d > days) {
    return `day ${day} does not exist: ${MONTHS[m - 1] as string} ${year} has ${days} days`;
  }
  return null;
}

/** Why a time of day (and zone offset) does not exist, or null when it does. */
function timeProblem(
  hour: string,
  minute: string,
  second: string | undefined,
  offsetHour: string | undefined,
  offsetMinute: string | undefined,
): string | null {
  if (Number(hour) > 23) return `hour ${hour} does not exist: write 00:00 of the next day`;
  if (Number(minute) > 59) return `minute ${minute} does not exist`;
  if (second !== undefined && Number(second) > 59) {
    return `second ${second} does not exist (leap seconds are not accepted)`;
  }
  if (Number(offsetHour ?? 0) > 23 || Number(offsetMinute ?? 0) > 59) {
    return `the offset ${offsetHour}:${offsetMinute} is out of range (at most ±23:59)`;
  }
  return null;
}

/** The instant `text` names; a text that passed the calendar checks always parses. */
function instant(text: string): DateReading {
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? { ok: false, problem: 'it is not a date' } : { ok: true, ms };
}

/**
 * Reads an RFC 3339 date-time with a time zone (`2026-01-31T12:00:00Z`, `2026-01-31T14:00+02:00`,
 * any number of fractional digits) that exists: month 1–12, a day of that month (29 February only
 * in leap years), hour 0–23, minute and second 0–59, offset up to ±23:59.
 */
export function readDateTime(text: string): DateReading {
  const m = DATE_TIME.exec(text);
  if (!m) return { ok: false, problem: 'it is not an ISO 8601 date-time with a time zone' };
  // The groups without a default always match when the expression does.
  const [
    ,
    year = '',
    month = '',
    day = '',
    hour = '',
    minute = '',
    second,
    offsetHour,
    offsetMinute,
  ] = m;
  const problem =
    dateProblem(year, month, day) ?? timeProblem(hour, minute, second, offsetHour, offsetMinute);
  return problem === null ? instant(text) : { ok: false, problem };
}

/** Reads a calendar date (`2026-01-31`) that exists, as midnight UTC. */
export function readDate(text: string): DateReading {
  const m = DATE.exec(text);
  if (!m) return { ok: false, problem: 'it is not a date such as 2026-01-31' };
  const [, year = '', month = '', day = ''] = m;
  const problem = dateProblem(year, month, day);
  return problem === null ? instant(`${text}T00:00:00Z`) : { ok: false, problem };
}

/** Reads a calendar date ({@link readDate}) or else a date-time ({@link readDateTime}). */
export function readDateOrDateTime(text: string): DateReading {
  return DATE.test(text) ? readDate(text) : readDateTime(text);
}
