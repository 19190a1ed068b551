//! HTTP-date (RFC 9110 5.6.7): IMF-fixdate, plus the obsolete RFC 850 and asctime formats that
//! recipients must still accept. Written here because `httpdate` is only a transitive
//! dependency of hyper, not one of ours.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::http::{HeaderMap, HeaderName};

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const DAYS_LONG: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

/// Parse an HTTP-date in any of the three formats; `None` if it is not one.
///
/// Only RFC 850 dates read the clock: their two-digit year is resolved against the current year
/// (see [`parse_http_date_at`]).
pub fn parse_http_date(value: &[u8]) -> Option<SystemTime> {
    parse_http_date_at(value, SystemTime::now())
}

/// [`parse_http_date`] with an explicit "now" for the RFC 850 two-digit year: a year that would
/// be more than 50 years in the future is the most recent past year with those digits (RFC 9110
/// 5.6.7). The layout is strict, one space between fields (so `18  Aug` or an RFC 850 date
/// behind a short day name is no date, as Varnish and ATS read them: an invalid `Expires`
/// means already expired); names are case-insensitive, `GMT` included, short and long day
/// names are both accepted in IMF-fixdate, and the weekday is not checked against the date.
pub fn parse_http_date_at(value: &[u8], now: SystemTime) -> Option<SystemTime> {
    let text = std::str::from_utf8(value).ok()?.trim_matches([' ', '\t']);
    // At most six fields (IMF-fixdate); no allocation, parsed on every cache hit.
    let mut fields = [""; 6];
    let mut count = 0;
    for field in text.split(' ') {
        *fields.get_mut(count)? = field;
        count += 1;
    }
    let gmt = |zone: &&str| zone.eq_ignore_ascii_case("GMT");
    let (year, month, day, time) = match &fields[..count] {
        // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
        [day_name, day, month, year, time, zone] if has_day_name(day_name, true) && gmt(zone) => (
            four_digit_year(year)?,
            month_number(month)?,
            number(day)?,
            *time,
        ),
        // rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT" (long day names only)
        [day_name, date, time, zone] if has_long_day_name(day_name) && gmt(zone) => {
            let mut parts = date.split('-');
            let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() {
                return None;
            }
            let year = match year.len() {
                2 => two_digit_year(number(year)?, now),
                _ => four_digit_year(year)?,
            };
            (year, month_number(month)?, number(day)?, *time)
        }
        // asctime-date: "Sun Nov  6 08:49:37 1994" (a one-digit day is padded with a space)
        [day_name, month, day, time, year] | [day_name, month, "", day, time, year]
            if has_day_name(day_name, false) =>
        {
            (
                four_digit_year(year)?,
                month_number(month)?,
                number(day)?,
                *time,
            )
        }
        _ => return None,
    };
    let (hour, minute, second) = time_of_day(time)?;
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    match u64::try_from(secs) {
        Ok(after) => UNIX_EPOCH.checked_add(Duration::from_secs(after)),
        Err(_) => UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs())),
    }
}

/// Format as IMF-fixdate, the only format a sender may generate. Times before 1970 are
/// formatted as the epoch (nothing this proxy sends is older).
pub fn format_http_date(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .min(253_402_300_799); // 9999-12-31T23:59:59: four-digit years only.
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let weekday = DAYS[((days + 4) % 7) as usize];
    let month = MONTHS[(month - 1) as usize];
    format!(
        "{}{}, {:02} {}{} {:04} {:02}:{:02}:{:02} GMT",
        weekday[..1].to_ascii_uppercase(),
        &weekday[1..],
        day,
        month[..1].to_ascii_uppercase(),
        &month[1..],
        year,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The date in the first field line of `name`, if it parses.
pub(crate) fn header_date(headers: &HeaderMap, name: &HeaderName) -> Option<SystemTime> {
    headers
        .get(name)
        .and_then(|v| parse_http_date(v.as_bytes()))
}

fn has_day_name(field: &str, with_comma: bool) -> bool {
    let name = if with_comma {
        match field.strip_suffix(',') {
            Some(name) => name,
            None => return false,
        }
    } else {
        field
    };
    let name = name.to_ascii_lowercase();
    DAYS.contains(&name.as_str()) || DAYS_LONG.contains(&name.as_str())
}

fn has_long_day_name(field: &str) -> bool {
    field
        .strip_suffix(',')
        .is_some_and(|name| DAYS_LONG.iter().any(|d| d.eq_ignore_ascii_case(name)))
}

fn month_number(field: &str) -> Option<u32> {
    let field = field.to_ascii_lowercase();
    MONTHS
        .iter()
        .position(|m| *m == field)
        .map(|i| i as u32 + 1)
}

/// One or two digits (asctime pads days with a space, which the split already removed).
fn number(field: &str) -> Option<u32> {
    if field.is_empty() || field.len() > 2 || !field.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    field.parse().ok()
}

fn four_digit_year(field: &str) -> Option<i64> {
    if field.len() != 4 || !field.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    field.parse().ok()
}

fn two_digit_year(yy: u32, now: SystemTime) -> i64 {
    let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (current, _, _) = civil_from_days((now_secs / 86_400) as i64);
    let century = current - current.rem_euclid(100);
    let year = century + i64::from(yy);
    if year > current + 50 {
        year - 100
    } else {
        year
    }
}

/// "HH:MM:SS", two digits each; second 60 (a leap second) is accepted.
fn time_of_day(field: &str) -> Option<(u32, u32, u32)> {
    let bytes = field.as_bytes();
    if bytes.len() != 8 || bytes[2] != b':' || bytes[5] != b':' {
        return None;
    }
    let two = |i: usize| -> Option<u32> {
        let (a, b) = (bytes[i], bytes[i + 1]);
        (a.is_ascii_digit() && b.is_ascii_digit())
            .then(|| u32::from(a - b'0') * 10 + u32::from(b - b'0'))
    };
    let (hour, minute, second) = (two(0)?, two(3)?, two(6)?);
    (hour < 24 && minute < 60 && second <= 60).then_some((hour, minute, second))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
