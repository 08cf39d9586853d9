//! Timestamps in the three formats a Gunicorn user sees: error-log lines, access-log
//! lines and the HTTP `Date` header. Written here to avoid a date crate for three lines.

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// Seconds since the Unix epoch, now. From the coarse clock (a few ms behind at
/// worst): every response's Date header asks.
pub fn unix_now() -> i64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME_COARSE)
        .map(|t| t.tv_sec())
        .unwrap_or(0)
}

fn offset(seconds: i64) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.abs() / 60;
    format!("{sign}{:02}{:02}", minutes / 60, minutes % 60)
}

/// `2026-11-23 21:09:48 +0000`, local time: the error log's stamp.
pub fn error_log_stamp(unix: i64) -> String {
    let t = crate::sys::local_time(unix);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} {}",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        offset(t.utc_offset)
    )
}

/// `23/Nov/2026:21:09:48 +0000`, local time: the access log's `%(t)s` without brackets.
pub fn access_log_stamp(unix: i64) -> String {
    let t = crate::sys::local_time(unix);
    format!(
        "{:02}/{}/{:04}:{:02}:{:02}:{:02} {}",
        t.day,
        MONTHS[(t.month - 1) as usize],
        t.year,
        t.hour,
        t.minute,
        t.second,
        offset(t.utc_offset)
    )
}

/// `Mon, 23 Nov 2026 21:09:48 GMT` (RFC 9110 IMF-fixdate), always UTC.
pub fn http_date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[days.rem_euclid(7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_date_matches_known_instants() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(1_795_468_188), "Mon, 23 Nov 2026 21:09:48 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn offsets_are_signed_hours_and_minutes() {
        assert_eq!(offset(0), "+0000");
        assert_eq!(offset(19_800), "+0530");
        assert_eq!(offset(-18_000), "-0500");
    }
}
