//! The `Date` header (RFC 9110 §5.6.7), which an origin server with a clock
//! must send on its responses.

use std::time::{SystemTime, UNIX_EPOCH};

/// Appends `t` as an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
///
/// A clock set before 1970 is written as the epoch rather than failing the
/// response over a header no client depends on.
pub(crate) fn push_http_date(buf: &mut Vec<u8>, t: SystemTime) {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let in_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    buf.extend_from_slice(WEEKDAYS[(days % 7) as usize].as_bytes());
    buf.extend_from_slice(b", ");
    two_digits(buf, day);
    buf.push(b' ');
    buf.extend_from_slice(MONTHS[(month - 1) as usize].as_bytes());
    buf.push(b' ');
    super::syntax::push_decimal(buf, u128::from(year));
    buf.push(b' ');
    two_digits(buf, in_day / 3600);
    buf.push(b':');
    two_digits(buf, in_day / 60 % 60);
    buf.push(b':');
    two_digits(buf, in_day % 60);
    buf.extend_from_slice(b" GMT");
}

fn two_digits(buf: &mut Vec<u8>, n: u64) {
    buf.push(b'0' + (n / 10 % 10) as u8);
    buf.push(b'0' + (n % 10) as u8);
}

/// Year, month (1–12) and day (1–31) of a count of days since 1970-01-01,
/// by Howard Hinnant's `civil_from_days` (proleptic Gregorian calendar).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn date(secs: u64) -> String {
        let mut buf = Vec::new();
        push_http_date(&mut buf, UNIX_EPOCH + Duration::from_secs(secs));
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn known_dates() {
        assert_eq!(date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        // The example of RFC 9110 §5.6.7.
        assert_eq!(date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        // 2100 is not a leap year.
        assert_eq!(date(4_107_542_399), "Sun, 28 Feb 2100 23:59:59 GMT");
        assert_eq!(date(1_798_761_600), "Fri, 01 Jan 2027 00:00:00 GMT");
    }

    #[test]
    fn before_the_epoch_is_the_epoch() {
        let mut buf = Vec::new();
        push_http_date(&mut buf, UNIX_EPOCH - Duration::from_secs(5));
        assert_eq!(buf, b"Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
