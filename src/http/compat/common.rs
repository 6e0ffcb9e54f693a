//! What every profile shares: seed query-string access, cursor errors, timestamp formats and
//! date parsing. Every failure is an [`ApiError`]; Velt puts it in its own shape.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::json;

use crate::error::Error;
use crate::http::ApiError;

/// A store error, with a cursor error renamed to the profile's own cursor parameter.
pub(crate) fn cursor_error(e: Error, cursor_param: &str) -> ApiError {
    match e {
        Error::InvalidCursor => ApiError::invalid(
            cursor_param,
            "cursor is invalid, expired, or belongs to another query",
        ),
        e => ApiError::from(e),
    }
}

/// A query string as ordered pairs, with seed parameters read one at a time.
pub(crate) struct SeedParams<'a>(pub(crate) &'a [(String, String)]);

impl SeedParams<'_> {
    /// The value of a parameter given at most once; a repeated parameter is a 400.
    pub(crate) fn get(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut found = None;
        for (k, v) in self.0 {
            if k == name {
                if found.is_some() {
                    return Err(ApiError::invalid(name, "given more than once"));
                }
                found = Some(v.as_str());
            }
        }
        Ok(found)
    }

    /// Like `get`, with an empty value read as absent.
    pub(crate) fn non_empty(&self, name: &str) -> Result<Option<&str>, ApiError> {
        Ok(self.get(name)?.filter(|v| !v.is_empty()))
    }

    /// A whole number in `lo..=hi`, or `default` when absent.
    pub(crate) fn int_in(
        &self,
        name: &str,
        lo: i64,
        hi: i64,
        default: i64,
    ) -> Result<i64, ApiError> {
        match self.non_empty(name)? {
            None => Ok(default),
            Some(v) => {
                let n = parse_int(name, v)?;
                if n < lo || n > hi {
                    return Err(ApiError::invalid(
                        name,
                        format!("must be between {lo} and {hi}"),
                    ));
                }
                Ok(n)
            }
        }
    }
}

/// A whole number.
pub(crate) fn parse_int(name: &str, v: &str) -> Result<i64, ApiError> {
    v.trim()
        .parse::<i64>()
        .map_err(|_| ApiError::invalid(name, format!("{v:?} is not a whole number")))
}

/// `true` or `false`.
pub(crate) fn parse_bool(name: &str, v: &str) -> Result<bool, ApiError> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::invalid(name, "must be true or false")),
    }
}

/// A `yyyy-MM-dd` date.
pub(crate) fn parse_date(name: &str, v: &str) -> Result<NaiveDate, ApiError> {
    crate::calendar::parse_ymd(v)
        .ok_or_else(|| ApiError::invalid(name, format!("{v:?} is not a yyyy-MM-dd date")))
}

/// `2024-01-15T14:30:00.000Z`.
pub(crate) fn millis_z(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `2024-01-01T10:00:00Z`.
pub(crate) fn seconds_z(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `2024-01-15T14:30:00.123456Z`, the native format.
pub(crate) fn micros_z(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A JSON object value, or `{}`.
pub(crate) fn object_or_empty(v: &Option<serde_json::Value>) -> serde_json::Value {
    match v {
        Some(v @ serde_json::Value::Object(_)) => v.clone(),
        _ => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{day_end, day_start};

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect()
    }

    #[test]
    fn params_reject_repeats_and_check_bounds() {
        let p = pairs(&[("limit", "5"), ("x", "1"), ("x", "2"), ("e", "")]);
        let p = SeedParams(&p);
        assert_eq!(p.int_in("limit", 1, 10, 3).unwrap(), 5);
        assert_eq!(p.int_in("missing", 1, 10, 3).unwrap(), 3);
        assert_eq!(p.int_in("e", 1, 10, 3).unwrap(), 3);
        assert!(p.get("x").is_err());
        assert!(p.int_in("limit", 6, 10, 7).is_err());
        let bad = pairs(&[("limit", "1.5")]);
        assert!(SeedParams(&bad).int_in("limit", 1, 10, 3).is_err());
    }

    #[test]
    fn dates_and_formats() {
        assert!(parse_date("d", "2024-01-15").is_ok());
        for bad in [
            "2024-1-15",
            "2024-01-32",
            "15.01.2024",
            "",
            "2024-01-15T00:00:00Z",
        ] {
            assert!(parse_date("d", bad).is_err(), "{bad}");
        }
        let tz: chrono_tz::Tz = "Europe/Ljubljana".parse().unwrap();
        let d = NaiveDate::from_ymd_opt(2024, 1, 15).unwrap();
        assert_eq!(millis_z(day_start(d, tz)), "2024-01-14T23:00:00.000Z");
        assert_eq!(micros_z(day_end(d, tz)), "2024-01-15T22:59:59.999999Z");
        assert_eq!(seconds_z(day_start(d, tz)), "2024-01-14T23:00:00Z");
    }
}
