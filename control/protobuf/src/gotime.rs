//! Go's text forms of times and durations, which Kubernetes JSON uses for `metav1.Time`,
//! `metav1.MicroTime` and `metav1.Duration`.

/// Nanoseconds per second.
const NANOS: i128 = 1_000_000_000;

/// Splits `seconds + nanos` (nanos may be out of range, as Go's `time.Unix` allows) into whole
/// seconds and a nanosecond remainder in `0..1e9`.
fn normalize(seconds: i64, nanos: i64) -> (i64, u32) {
    let total = i128::from(seconds) * NANOS + i128::from(nanos);
    let secs = total.div_euclid(NANOS);
    let rem = total.rem_euclid(NANOS);
    // `seconds` is an i64 and |nanos| < 2^63, so the quotient fits in an i64 except at the very
    // edge of the range, where the caller rejects the year anyway.
    (
        i64::try_from(secs).unwrap_or(i64::MAX),
        u32::try_from(rem).expect("remainder below 1e9"),
    )
}

/// `YYYY-MM-DDTHH:MM:SS` in UTC, or `None` outside the years 0..=9999 that Go's
/// `Time.MarshalJSON` accepts.
fn civil(seconds: i64) -> Option<String> {
    let ts = jiff::Timestamp::from_second(seconds).ok()?;
    let dt = ts.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    if !(0..=9999).contains(&dt.year()) {
        return None;
    }
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    ))
}

/// `metav1.Time` in JSON: RFC 3339 in UTC with whole seconds (`2026-01-02T03:04:05Z`). Kubernetes
/// drops the nanoseconds when it reads a protobuf `Time`, so they are ignored here too.
pub(crate) fn rfc3339_seconds(seconds: i64) -> Option<String> {
    Some(format!("{}Z", civil(seconds)?))
}

/// `metav1.MicroTime` in JSON: RFC 3339 in UTC with exactly six fractional digits, truncated as
/// Go's `2006-01-02T15:04:05.000000Z07:00` layout does.
pub(crate) fn rfc3339_micros(seconds: i64, nanos: i64) -> Option<String> {
    let (secs, nanos) = normalize(seconds, nanos);
    Some(format!("{}.{:06}Z", civil(secs)?, nanos / 1000))
}

/// The zero `time.Time` (January 1, year 1) as Unix seconds: Go renders it as `null`.
pub(crate) const GO_ZERO_TIME_UNIX: i64 = -62_135_596_800;

/// Whether `seconds + nanos` is Go's zero time.
pub(crate) fn is_go_zero(seconds: i64, nanos: i64) -> bool {
    normalize(seconds, nanos) == (GO_ZERO_TIME_UNIX, 0)
}

/// `value / scale` with the fraction's trailing zeros dropped (`1.5`, `2`), as Go prints the
/// leading unit of a duration.
fn fraction(value: u64, scale: u64, digits: usize) -> String {
    let (int, frac) = (value / scale, value % scale);
    if frac == 0 {
        return int.to_string();
    }
    let frac = format!("{frac:0digits$}");
    format!("{int}.{}", frac.trim_end_matches('0'))
}

/// Go's `time.Duration.String()`: `0s`, `1.5s`, `1m0s`, `1h2m3s`, `300ms`, `2µs`, `-5s`.
pub(crate) fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_owned();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    const SECOND: u64 = 1_000_000_000;
    if u < SECOND {
        let (scale, digits, unit) = if u < 1_000 {
            (1, 0, "ns")
        } else if u < 1_000_000 {
            (1_000, 3, "µs")
        } else {
            (1_000_000, 6, "ms")
        };
        return format!("{sign}{}{unit}", fraction(u, scale, digits));
    }
    let seconds = fraction(u % (60 * SECOND), SECOND, 9);
    let minutes = u / (60 * SECOND);
    if minutes == 0 {
        return format!("{sign}{seconds}s");
    }
    let hours = minutes / 60;
    if hours == 0 {
        return format!("{sign}{minutes}m{seconds}s");
    }
    format!("{sign}{hours}h{}m{seconds}s", minutes % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (2_000_000, "2ms"),
            (300_500_000, "300.5ms"),
            (1_000_000_000, "1s"),
            (1_500_000_000, "1.5s"),
            (60_000_000_000, "1m0s"),
            (61_000_000_000, "1m1s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_000_000_000, "1h2m3s"),
            (3_723_000_000_001, "1h2m3.000000001s"),
            (-5_000_000_000, "-5s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ];
        for (nanos, want) in cases {
            assert_eq!(go_duration(nanos), want, "{nanos}ns");
        }
    }

    #[test]
    fn times_print_like_kubernetes() {
        assert_eq!(rfc3339_seconds(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_seconds(1_767_323_045).unwrap(),
            "2026-01-02T03:04:05Z"
        );
        assert_eq!(
            rfc3339_micros(1_767_323_045, 123_456_789).unwrap(),
            "2026-01-02T03:04:05.123456Z"
        );
        assert_eq!(
            rfc3339_micros(1_767_323_045, -1).unwrap(),
            "2026-01-02T03:04:04.999999Z"
        );
        assert_eq!(
            rfc3339_seconds(GO_ZERO_TIME_UNIX).unwrap(),
            "0001-01-01T00:00:00Z"
        );
        // Year 0 is still printable; year -1 is not.
        assert_eq!(
            rfc3339_seconds(GO_ZERO_TIME_UNIX - 1).unwrap(),
            "0000-12-31T23:59:59Z"
        );
        assert!(rfc3339_seconds(GO_ZERO_TIME_UNIX - 367 * 86_400).is_none());
        assert!(rfc3339_seconds(i64::MAX).is_none());
        assert!(is_go_zero(GO_ZERO_TIME_UNIX, 0));
        assert!(!is_go_zero(0, 0));
    }
}
