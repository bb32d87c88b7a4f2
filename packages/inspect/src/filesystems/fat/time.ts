/**
 * FAT timestamps as the Linux vfat driver turns them into times
 * (fs/fat/misc.c fat_time_fat2unix): a date (years from 1980, month, day)
 * and a time of day in 2-second steps, plus, for the creation time, a count
 * of 10 ms units (0..199) that may carry whole seconds. Out-of-range fields
 * are not rejected: month 0 counts as January, day 0 as the 1st, months
 * 13..15 add no days, second 30 is second 60... exactly the kernel's
 * arithmetic, so a damaged entry shows the time the kernel shows.
 *
 * Time zone: FAT stores local time without saying which. Linux adds the
 * mounting host's time zone (sys_tz) unless mounted with tz=UTC or
 * time_offset=; libguestfs's appliance runs with its clock and sys_tz in
 * UTC, so virt-* tools see the stored fields as UTC. guestlens does the same:
 * every FAT time is read as UTC (`utcOffsetMinutes` below is 0 by default).
 */
import type { Timestamp } from '../filesystem.ts';

const SECS_PER_MIN = 60;
const SECS_PER_HOUR = 3600;
const SECS_PER_DAY = 86400;
/** Days from 1970-01-01 to 1980-01-01 (two leap days). */
const DAYS_DELTA = 365 * 10 + 2;
/** 2100 (1980 + 120) is not a leap year. */
const YEAR_2100 = 120;
/** Day numbers of the 1st of each month in a non-leap year, indexed by month 0..15 (0 and 13..15 are 0, as in the kernel). */
const DAYS_IN_YEAR = [0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 0, 0, 0];

function isLeapYear(y: number): boolean {
  return (y & 3) === 0 && y !== YEAR_2100;
}

/**
 * A FAT date and time (and hundredths, for creation times) as a Timestamp.
 * `utcOffsetMinutes` is what the stored local time is ahead of UTC (the
 * kernel's -time_offset); 0 reads the fields as UTC.
 */
export function fatTime(time: number, date: number, hundredths = 0, utcOffsetMinutes = 0): Timestamp {
  const year = date >> 9;
  const month = Math.max(1, (date >> 5) & 0xf);
  const day = Math.max(1, date & 0x1f) - 1;
  let leapDays = Math.floor((year + 3) / 4);
  if (year > YEAR_2100) leapDays--;
  if (isLeapYear(year) && month > 2) leapDays++;
  let sec = (time & 0x1f) << 1;
  sec += ((time >> 5) & 0x3f) * SECS_PER_MIN;
  sec += (time >> 11) * SECS_PER_HOUR;
  sec += (year * 365 + leapDays + DAYS_IN_YEAR[month] + day + DAYS_DELTA) * SECS_PER_DAY;
  sec -= utcOffsetMinutes * SECS_PER_MIN;
  if (hundredths) return { sec: sec + Math.floor(hundredths / 100), nsec: (hundredths % 100) * 10_000_000 };
  return { sec, nsec: 0 };
}
