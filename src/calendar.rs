//! Calendar days in a time zone: where a `yyyy-MM-dd` date starts and ends. The one definition
//! used by the store's time windows (`since`/`until` dates), `q`'s date operands and the profiles'
//! date parameters, so a date means the same instants wherever it is given.
//!
//! The rule: a day starts at its first local instant, local midnight (the earlier one when a
//! fall-back repeats it); when midnight falls in a gap (a DST spring-forward, or a zone skipping
//! a whole day, as Pacific/Apia did on 2011-12-30), it starts at the first minute that exists
//! after it. A day ends one microsecond before the next day starts.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// The longest a run of local times that do not exist can be, with margin: the widest gap in
/// the tz database is a whole skipped day.
const MAX_GAP_HOURS: i64 = 48;

/// A `yyyy-MM-dd` date, exactly that shape (four-digit year, two-digit month and day).
pub(crate) fn parse_ymd(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// The first instant of a calendar day in a time zone.
pub(crate) fn day_start(date: NaiveDate, tz: chrono_tz::Tz) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    if let Some(t) = first_at(tz, midnight) {
        return t;
    }
    // In a gap: find the first whole hour that exists, then step back to the first minute of
    // the run of existing minutes it ends (transitions fall on whole minutes).
    let hour = (1..=MAX_GAP_HOURS).find_map(|h| {
        let local = midnight.checked_add_signed(Duration::hours(h))?;
        first_at(tz, local).map(|_| local)
    });
    let Some(mut local) = hour else {
        // No zone has such a gap; the day's UTC midnight keeps the answer defined.
        return Utc.from_utc_datetime(&midnight);
    };
    for _ in 0..60 {
        match local.checked_sub_signed(Duration::minutes(1)) {
            Some(earlier) if earlier >= midnight && first_at(tz, earlier).is_some() => {
                local = earlier;
            }
            _ => break,
        }
    }
    first_at(tz, local).unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
}

/// The last microsecond of a calendar day in a time zone (the end of time for chrono's last
/// date).
pub(crate) fn day_end(date: NaiveDate, tz: chrono_tz::Tz) -> DateTime<Utc> {
    match date.succ_opt() {
        Some(next) => {
            let start = day_start(next, tz);
            start
                .checked_sub_signed(Duration::microseconds(1))
                .unwrap_or(start)
        }
        None => DateTime::<Utc>::MAX_UTC,
    }
}

/// The first instant a local time names, if it exists.
fn first_at(tz: chrono_tz::Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    tz.from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tz(name: &str) -> chrono_tz::Tz {
        name.parse().unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn days_in_ordinary_zones() {
        let lj = tz("Europe/Ljubljana");
        assert_eq!(
            day_start(date(2024, 1, 15), lj),
            utc("2024-01-14T23:00:00Z")
        );
        assert_eq!(
            day_end(date(2024, 1, 15), lj),
            utc("2024-01-15T22:59:59.999999Z")
        );
        // The spring-forward day is 23 hours long, the fall-back day 25.
        let spring = date(2024, 3, 31);
        assert_eq!(
            day_end(spring, lj) - day_start(spring, lj),
            Duration::hours(23) - Duration::microseconds(1)
        );
        let autumn = date(2024, 10, 27);
        assert_eq!(
            day_end(autumn, lj) - day_start(autumn, lj),
            Duration::hours(25) - Duration::microseconds(1)
        );
        assert_eq!(day_end(NaiveDate::MAX, lj), DateTime::<Utc>::MAX_UTC);
    }

    #[test]
    fn day_start_in_a_dst_gap() {
        // America/Santiago skipped 2022-09-11 00:00 → 01:00.
        let tz = tz("America/Santiago");
        let d = date(2022, 9, 11);
        assert_eq!(day_start(d, tz), utc("2022-09-11T04:00:00Z"));
    }

    /// Regression: the three copies this module replaced probed four or five hours past a
    /// midnight in a gap and then fell back to the date's UTC midnight, so the day Samoa skipped
    /// (Pacific/Apia went from 2011-12-29 23:59:59 at UTC-10 to 2011-12-31 00:00 at UTC+14) "started"
    /// at 2011-12-30T00:00Z, ten hours inside the day before it. It starts where the next
    /// existing local day starts, and so is empty.
    #[test]
    fn a_skipped_day_starts_where_the_next_one_does() {
        let apia = tz("Pacific/Apia");
        let skipped = date(2011, 12, 30);
        assert_eq!(day_start(skipped, apia), utc("2011-12-30T10:00:00Z"));
        assert_eq!(
            day_start(skipped, apia),
            day_start(date(2011, 12, 31), apia)
        );
        assert_eq!(
            day_end(date(2011, 12, 29), apia),
            utc("2011-12-30T09:59:59.999999Z")
        );
    }

    #[test]
    fn dates_are_exactly_yyyy_mm_dd() {
        assert_eq!(parse_ymd("2024-01-15"), Some(date(2024, 1, 15)));
        for bad in [
            "2024-1-15",
            "2024-01-32",
            "15.01.2024",
            "",
            "2024-01-15T00:00:00Z",
            "+262142-12-31",
        ] {
            assert_eq!(parse_ymd(bad), None, "{bad}");
        }
    }
}
