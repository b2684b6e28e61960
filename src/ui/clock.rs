//! Times as the terminal shows them: `HH:MM` beside a message, `YYYY-MM-DD HH:MM` where a
//! message may be old (search results), in local time or UTC.
//!
//! Formatting only: never reads the clock (times come in, as milliseconds since the epoch).

/// A time broken down: year, month (1–12), day (1–31), hour, minute.
type Parts = (i64, u32, u32, u32, u32);

/// `HH:MM` of `ts_ms` (milliseconds since the Unix epoch), in local time or UTC.
pub fn clock(ts_ms: u64, local: bool) -> String {
    let (_, _, _, hour, minute) = parts(ts_ms, local);
    format!("{hour:02}:{minute:02}")
}

/// `YYYY-MM-DD HH:MM` of `ts_ms`, in local time or UTC.
pub fn date_and_clock(ts_ms: u64, local: bool) -> String {
    let (year, month, day, hour, minute) = parts(ts_ms, local);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}")
}

fn parts(ts_ms: u64, local: bool) -> Parts {
    let secs = ts_ms / 1000;
    if local && let Some(parts) = local_parts(secs) {
        return parts;
    }
    utc_parts(secs)
}

fn local_parts(secs: u64) -> Option<Parts> {
    let time = libc::time_t::try_from(secs).ok()?;
    // SAFETY: localtime_r reads `time` and writes into the zeroed `tm` we own; it is thread-safe.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&time, &mut tm) }.is_null() {
        return None;
    }
    let unsigned = |n: libc::c_int| u32::try_from(n).unwrap_or(0);
    Some((
        i64::from(tm.tm_year) + 1900,
        unsigned(tm.tm_mon) + 1,
        unsigned(tm.tm_mday),
        unsigned(tm.tm_hour),
        unsigned(tm.tm_min),
    ))
}

/// The civil date and time of `secs` in UTC (the days-to-date conversion of the proleptic
/// Gregorian calendar, as in H. Hinnant's `civil_from_days`).
fn utc_parts(secs: u64) -> Parts {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let in_day = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let small = |n: i64| u32::try_from(n).unwrap_or(0);
    let small_secs = |n: u64| u32::try_from(n).unwrap_or(0);
    (year, small(month), small(day), small_secs(in_day / 3600), small_secs(in_day / 60 % 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_clock() {
        assert_eq!(clock((23 * 3600 + 59 * 60 + 59) * 1000, false), "23:59");
        assert_eq!(clock(86_400_000 + 61_000, false), "00:01");
        assert_eq!(clock(0, true).len(), 5);
    }

    #[test]
    fn utc_dates() {
        assert_eq!(date_and_clock(0, false), "1970-01-01 00:00");
        // 2000-02-29 12:34 UTC (a leap day) and 2026-12-06 01:30 UTC.
        assert_eq!(date_and_clock(951_827_640_000, false), "2000-02-29 12:34");
        assert_eq!(date_and_clock(1_796_520_600_000, false), "2026-12-06 01:30");
        assert_eq!(date_and_clock(1_796_520_600_000, true).len(), 16);
    }
}
