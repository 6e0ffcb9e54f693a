//! The data model: plain types and their validation. No I/O and no wire format lives here.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use crate::error::{Error, Result};

/// Longest `action`, type or id string, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// Longest actor name or email, in bytes.
pub const MAX_LABEL_LEN: usize = 512;
/// Longest `summary` or `reason`, in bytes.
pub const MAX_TEXT_LEN: usize = 4 * 1024;
/// Most `context` entries on one activity.
pub const MAX_CONTEXT_ENTRIES: usize = 16;
/// Longest context value, in bytes.
pub const MAX_CONTEXT_VALUE_LEN: usize = 1024;
/// Largest encoded `metadata`, `changes` or `display.data` object, in bytes.
pub const MAX_JSON_LEN: usize = 64 * 1024;
/// Most activities in one batch append.
pub const MAX_BATCH: usize = 1000;
/// Longest tenant id.
pub const MAX_TENANT_ID_LEN: usize = 64;
/// Longest retention a tenant may set, in days (about a hundred years). The cutoff is built in
/// i64 microseconds, which would overflow from about 106.8 million days.
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// The thing acted upon, or the target of an action.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ObjectRef {
    /// The type (`Invoice`, `User`); `type` on the wire.
    pub kind: String,
    /// The id, if the reference names one object.
    pub id: Option<String>,
}

impl ObjectRef {
    /// A reference with a type and an id.
    pub fn new(kind: impl Into<String>, id: impl Into<String>) -> ObjectRef {
        ObjectRef {
            kind: kind.into(),
            id: Some(id.into()),
        }
    }

    /// A reference with a type and no id.
    pub fn of_type(kind: impl Into<String>) -> ObjectRef {
        ObjectRef {
            kind: kind.into(),
            id: None,
        }
    }
}

/// Who did it. Absent on an activity means no actor was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Actor {
    /// The actor's type (`user`, `api_key`, `system`); `type` on the wire.
    pub kind: String,
    /// The actor's id.
    pub id: Option<String>,
    /// The actor's display name.
    pub name: Option<String>,
    /// The actor's email address.
    pub email: Option<String>,
}

/// A message template with the data to render it: an activity's `display` (its name on the
/// wire). Not named `Display`, which would shadow `std::fmt::Display` under `use actlog::*`.
#[derive(Debug, Clone, PartialEq)]
pub struct DisplayText {
    /// The message, with placeholders for `data`.
    pub template: String,
    /// A JSON object.
    pub data: serde_json::Value,
}

/// An activity as a caller submits it: `id` and `created_at` are optional. Built with
/// [`NewActivity::new`] and its setters (fields may be added, so it has no struct literal
/// outside this crate); its fields can be read and changed directly.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct NewActivity {
    /// The id; the store assigns a UUIDv7 when absent. An append with an id is idempotent.
    pub id: Option<Uuid>,
    /// When it happened; the store's clock when absent.
    pub created_at: Option<DateTime<Utc>>,
    /// What was done (`invoice.sent`).
    pub action: String,
    /// What it was done to.
    pub resource: ObjectRef,
    /// Who did it; absent when no actor is recorded.
    pub actor: Option<Actor>,
    /// What the action was aimed at, besides the resource.
    pub target: Option<ObjectRef>,
    /// Key → value, kept sorted by key with unique keys.
    pub context: Vec<(String, String)>,
    /// A line of text about it.
    pub summary: Option<String>,
    /// Why it was done.
    pub reason: Option<String>,
    /// A JSON object.
    pub changes: Option<serde_json::Value>,
    /// A JSON object.
    pub metadata: Option<serde_json::Value>,
    /// How to present it.
    pub display: Option<DisplayText>,
}

impl NewActivity {
    /// An activity with only its required fields: everything else is absent (the store assigns
    /// the id and the time). The other fields are set with the builder methods below.
    ///
    /// ```
    /// use actlog::{NewActivity, ObjectRef};
    /// let a = NewActivity::new("invoice.sent", ObjectRef::new("Invoice", "inv_1"))
    ///     .context("origin", "api")
    ///     .summary("Invoice sent to the customer");
    /// assert_eq!(a.context, vec![("origin".to_owned(), "api".to_owned())]);
    /// ```
    pub fn new(action: impl Into<String>, resource: ObjectRef) -> NewActivity {
        NewActivity {
            action: action.into(),
            resource,
            ..NewActivity::default()
        }
    }

    /// Sets the id (an id makes a retried append idempotent).
    #[must_use]
    pub fn id(mut self, id: Uuid) -> NewActivity {
        self.id = Some(id);
        self
    }

    /// Sets the time the activity happened (else the store's clock at the append).
    #[must_use]
    pub fn created_at(mut self, at: DateTime<Utc>) -> NewActivity {
        self.created_at = Some(at);
        self
    }

    /// Sets who did it.
    #[must_use]
    pub fn actor(mut self, actor: Actor) -> NewActivity {
        self.actor = Some(actor);
        self
    }

    /// Sets the target of the action.
    #[must_use]
    pub fn target(mut self, target: ObjectRef) -> NewActivity {
        self.target = Some(target);
        self
    }

    /// Adds a context entry (validation sorts entries by key and refuses repeated keys).
    #[must_use]
    pub fn context(mut self, key: impl Into<String>, value: impl Into<String>) -> NewActivity {
        self.context.push((key.into(), value.into()));
        self
    }

    /// Sets the summary.
    #[must_use]
    pub fn summary(mut self, summary: impl Into<String>) -> NewActivity {
        self.summary = Some(summary.into());
        self
    }

    /// Sets the reason.
    #[must_use]
    pub fn reason(mut self, reason: impl Into<String>) -> NewActivity {
        self.reason = Some(reason.into());
        self
    }

    /// Sets the field diff (a JSON object).
    #[must_use]
    pub fn changes(mut self, changes: serde_json::Value) -> NewActivity {
        self.changes = Some(changes);
        self
    }

    /// Sets the metadata (a JSON object).
    #[must_use]
    pub fn metadata(mut self, metadata: serde_json::Value) -> NewActivity {
        self.metadata = Some(metadata);
        self
    }

    /// Sets the display template and its data.
    #[must_use]
    pub fn display(mut self, display: DisplayText) -> NewActivity {
        self.display = Some(display);
        self
    }
}

/// One immutable, stored activity.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    /// The id.
    pub id: Uuid,
    /// Its place in its tenant's log, assigned by the store: dense from 1, strictly increasing
    /// in commit order, never reused.
    pub seq: u64,
    /// When it happened, as the writer said (or the store's clock if it did not); microsecond
    /// precision. The time order of every index.
    pub created_at: DateTime<Utc>,
    /// When the store committed it (its clock, microsecond precision), non-decreasing in `seq`
    /// order within a tenant.
    pub recorded_at: DateTime<Utc>,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub resource: ObjectRef,
    /// Who did it, if recorded.
    pub actor: Option<Actor>,
    /// What the action was aimed at, besides the resource.
    pub target: Option<ObjectRef>,
    /// Key → value, sorted by key, keys unique.
    pub context: Vec<(String, String)>,
    /// A line of text about it.
    pub summary: Option<String>,
    /// Why it was done.
    pub reason: Option<String>,
    /// The field diff (a JSON object).
    pub changes: Option<serde_json::Value>,
    /// Free-form data (a JSON object).
    pub metadata: Option<serde_json::Value>,
    /// How to present it.
    pub display: Option<DisplayText>,
}

impl Activity {
    /// The value of `context[key]`, if present.
    pub fn context_value(&self, key: &str) -> Option<&str> {
        self.context
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| self.context[i].1.as_str())
    }
}

/// What the store acknowledges for one appended activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The activity's id (the one given, or the one the store assigned).
    pub id: Uuid,
    /// The activity's time, as stored.
    pub created_at: DateTime<Utc>,
    /// The activity's `seq` (the original one for a replay).
    pub seq: u64,
    /// The activity's `recorded_at` (the original one for a replay).
    pub recorded_at: DateTime<Utc>,
    /// False when an identical activity with this id was there already (nothing was written).
    pub created: bool,
}

impl Appended {
    /// The acknowledgement of a write that found `a` already stored: its original times and
    /// `seq`, nothing created.
    pub(crate) fn replayed(a: &Activity) -> Appended {
        Appended {
            id: a.id,
            created_at: a.created_at,
            seq: a.seq,
            recorded_at: a.recorded_at,
            created: false,
        }
    }
}

/// A tenant's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSettings {
    /// An IANA time zone name; dates in filters are read in it.
    pub timezone: String,
    /// Activities older than this many days are removed by `purge_expired`.
    pub retention_days: Option<u32>,
}

impl Default for TenantSettings {
    fn default() -> Self {
        TenantSettings {
            timezone: "UTC".to_owned(),
            retention_days: None,
        }
    }
}

/// A tenant: one isolated log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// The tenant's id.
    pub id: String,
    /// Its settings.
    pub settings: TenantSettings,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A change to a tenant's settings; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantPatch {
    /// A new IANA time zone name.
    pub timezone: Option<String>,
    /// `Some(None)` removes the retention limit.
    pub retention_days: Option<Option<u32>>,
}

/// Checks a tenant id: 1–64 of `[A-Za-z0-9_.-]`.
pub fn validate_tenant_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_TENANT_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "tenant",
            "must be 1-64 characters of A-Z a-z 0-9 _ . -",
        ))
    }
}

/// Checks settings: a known IANA zone and a retention of 1–[`MAX_RETENTION_DAYS`] days.
pub fn validate_settings(s: &TenantSettings) -> Result<()> {
    parse_timezone(&s.timezone)?;
    if let Some(days) = s.retention_days {
        if !(1..=MAX_RETENTION_DAYS).contains(&days) {
            return Err(Error::invalid(
                "retention_days",
                format!("must be between 1 and {MAX_RETENTION_DAYS} days"),
            ));
        }
    }
    Ok(())
}

/// Parses an IANA time zone name.
pub fn parse_timezone(name: &str) -> Result<chrono_tz::Tz> {
    name.parse::<chrono_tz::Tz>()
        .map_err(|_| Error::invalid("timezone", format!("unknown IANA time zone {name:?}")))
}

/// Truncates a time to whole microseconds, the precision of the store.
pub fn truncate_to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    micros_to_time(t.timestamp_micros())
}

/// Microseconds since the Unix epoch to a time. Out-of-range values saturate to the first or
/// last whole microsecond chrono represents, so the result always reads back the same through
/// `timestamp_micros` (chrono's own maximum has nanoseconds).
pub fn micros_to_time(us: i64) -> DateTime<Utc> {
    match Utc.timestamp_micros(us) {
        chrono::LocalResult::Single(t) => t,
        _ if us < 0 => DateTime::<Utc>::MIN_UTC,
        _ => DateTime::<Utc>::MAX_UTC - chrono::Duration::nanoseconds(999),
    }
}

fn check_len(field: &str, value: &str, max: usize) -> Result<()> {
    if value.len() > max {
        return Err(Error::invalid(field, format!("longer than {max} bytes")));
    }
    Ok(())
}

/// Names and ids are single-line text: a control character (U+0000–U+001F, U+007F) in one is
/// refused, so no stored name can carry a NUL, a line break or a terminal escape into a log
/// viewer, a CSV cell or a client's UI.
fn check_printable(field: &str, value: &str) -> Result<()> {
    match value.chars().position(|c| c.is_ascii_control()) {
        Some(at) => Err(Error::invalid(
            field,
            format!("contains a control character (at character {at})"),
        )),
        None => Ok(()),
    }
}

fn check_name(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    check_len(field, value, MAX_NAME_LEN)?;
    check_printable(field, value)
}

fn check_label(field: &str, value: &str) -> Result<()> {
    check_len(field, value, MAX_LABEL_LEN)?;
    check_printable(field, value)
}

fn check_object(field: &str, v: &serde_json::Value) -> Result<()> {
    if !v.is_object() {
        return Err(Error::invalid(field, "must be a JSON object"));
    }
    let len = serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX);
    if len > MAX_JSON_LEN {
        return Err(Error::invalid(
            field,
            format!("encodes to more than {MAX_JSON_LEN} bytes"),
        ));
    }
    Ok(())
}

impl NewActivity {
    /// Checks every field against the limits of the data model and sorts `context` by key.
    /// `prefix` is prepended to field names in errors (`activities[3].`).
    pub fn validate(&mut self, prefix: &str) -> Result<()> {
        let f = |name: &str| format!("{prefix}{name}");
        check_name(&f("action"), &self.action)?;
        check_name(&f("resource.type"), &self.resource.kind)?;
        if let Some(id) = &self.resource.id {
            check_name(&f("resource.id"), id)?;
        }
        if let Some(a) = &self.actor {
            check_name(&f("actor.type"), &a.kind)?;
            if let Some(id) = &a.id {
                check_name(&f("actor.id"), id)?;
            }
            if let Some(n) = &a.name {
                check_label(&f("actor.name"), n)?;
            }
            if let Some(e) = &a.email {
                check_label(&f("actor.email"), e)?;
            }
        }
        if let Some(t) = &self.target {
            check_name(&f("target.type"), &t.kind)?;
            if let Some(id) = &t.id {
                check_name(&f("target.id"), id)?;
            }
        }
        if self.context.len() > MAX_CONTEXT_ENTRIES {
            return Err(Error::invalid(
                f("context"),
                format!("more than {MAX_CONTEXT_ENTRIES} entries"),
            ));
        }
        for (k, v) in &self.context {
            check_name(&f("context"), k)?;
            check_len(&f(&format!("context.{k}")), v, MAX_CONTEXT_VALUE_LEN)?;
        }
        self.context.sort_by(|a, b| a.0.cmp(&b.0));
        if self.context.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(Error::invalid(f("context"), "duplicate key"));
        }
        if let Some(s) = &self.summary {
            check_len(&f("summary"), s, MAX_TEXT_LEN)?;
        }
        if let Some(s) = &self.reason {
            check_len(&f("reason"), s, MAX_TEXT_LEN)?;
        }
        if let Some(v) = &self.changes {
            check_object(&f("changes"), v)?;
        }
        if let Some(v) = &self.metadata {
            check_object(&f("metadata"), v)?;
        }
        if let Some(d) = &self.display {
            check_len(&f("display.template"), &d.template, MAX_TEXT_LEN)?;
            check_object(&f("display.data"), &d.data)?;
        }
        if let Some(t) = self.created_at {
            // The key encodes microseconds in an i64; chrono's range fits, but keep years sane.
            let year = chrono::Datelike::year(&t);
            if !(1..=9999).contains(&year) {
                return Err(Error::invalid(f("created_at"), "year must be 1-9999"));
            }
            self.created_at = Some(truncate_to_micros(t));
        }
        Ok(())
    }

    /// The stored activity this becomes, given the id and time the store settled on.
    /// The activity as stored, but for its `seq` and `recorded_at`, which the store sets when it
    /// commits it (0 and `created_at` until then).
    pub(crate) fn into_activity(self, id: Uuid, created_at: DateTime<Utc>) -> Activity {
        Activity {
            id,
            seq: 0,
            created_at,
            recorded_at: created_at,
            action: self.action,
            resource: self.resource,
            actor: self.actor,
            target: self.target,
            context: self.context,
            summary: self.summary,
            reason: self.reason,
            changes: self.changes,
            metadata: self.metadata,
            display: self.display,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (fuzz target `record`, a V2 record whose `recorded_at` bytes are past chrono's
    /// range): saturating to chrono's maximum kept its nanoseconds, so the time changed once
    /// written back as microseconds and the record did not survive encode/decode.
    #[test]
    fn saturated_times_read_back_the_same() {
        for us in [
            i64::MAX,
            i64::MIN,
            0x7878_7878_7878_7878,
            -0x7878_7878_7878_7878,
        ] {
            let t = micros_to_time(us);
            assert_eq!(micros_to_time(t.timestamp_micros()), t, "{us}");
            assert_eq!(truncate_to_micros(t), t, "{us}");
        }
    }

    #[test]
    fn tenant_ids() {
        assert!(validate_tenant_id("acme-1.prod_eu").is_ok());
        assert!(validate_tenant_id("").is_err());
        assert!(validate_tenant_id(&"a".repeat(65)).is_err());
        assert!(validate_tenant_id("a/b").is_err());
        assert!(validate_tenant_id("a\0").is_err());
    }

    #[test]
    fn validation_names_the_field_and_sorts_context() {
        let mut a = NewActivity {
            action: "x".into(),
            resource: ObjectRef {
                kind: "Invoice".into(),
                id: None,
            },
            context: vec![("b".into(), "2".into()), ("a".into(), "1".into())],
            ..Default::default()
        };
        a.validate("").unwrap();
        assert_eq!(a.context[0].0, "a");
        a.action = "a".repeat(129);
        match a.validate("activities[2].") {
            Err(Error::InvalidArgument { field, .. }) => assert_eq!(field, "activities[2].action"),
            other => panic!("{other:?}"),
        }
        a.action = "ok".into();
        a.metadata = Some(serde_json::json!([1]));
        assert!(
            matches!(a.validate(""), Err(Error::InvalidArgument { field, .. }) if field == "metadata")
        );
    }

    /// Names and ids refuse control characters and name the field; free text keeps them.
    #[test]
    fn control_characters_in_names_are_refused() {
        let ok = || NewActivity {
            action: "a".into(),
            resource: ObjectRef {
                kind: "T".into(),
                id: None,
            },
            ..Default::default()
        };
        for bad in ["\0", "a\nb", "\t", "\u{1f}", "\u{7f}", "x\r"] {
            type Set<'a> = Box<dyn Fn(&mut NewActivity) + 'a>;
            let cases: Vec<(&str, Set)> = vec![
                ("action", Box::new(|a| a.action = bad.into())),
                ("resource.type", Box::new(|a| a.resource.kind = bad.into())),
                (
                    "resource.id",
                    Box::new(|a| a.resource.id = Some(bad.into())),
                ),
                (
                    "actor.name",
                    Box::new(|a| {
                        a.actor = Some(Actor {
                            kind: "u".into(),
                            name: Some(bad.into()),
                            ..Default::default()
                        })
                    }),
                ),
                (
                    "context",
                    Box::new(|a| a.context = vec![(bad.into(), "v".into())]),
                ),
            ];
            for (field, set) in cases {
                let mut a = ok();
                set(&mut a);
                match a.validate("") {
                    Err(Error::InvalidArgument { field: f, .. }) => assert_eq!(f, field, "{bad:?}"),
                    other => panic!("{field} {bad:?}: {other:?}"),
                }
            }
        }
        let mut a = ok();
        a.action = "invoice.sent ü €".into();
        a.summary = Some("two\nlines\tand a tab".into());
        a.context = vec![("note".into(), "a\nb".into())];
        a.validate("").unwrap();
    }

    #[test]
    fn retention_is_bounded() {
        let with = |d| TenantSettings {
            retention_days: Some(d),
            ..Default::default()
        };
        assert!(validate_settings(&with(1)).is_ok());
        assert!(validate_settings(&with(MAX_RETENTION_DAYS)).is_ok());
        for bad in [0, MAX_RETENTION_DAYS + 1, u32::MAX] {
            assert!(
                matches!(validate_settings(&with(bad)), Err(Error::InvalidArgument { field, .. }) if field == "retention_days")
            );
        }
    }

    #[test]
    fn timezones() {
        assert!(parse_timezone("Europe/Ljubljana").is_ok());
        assert!(parse_timezone("Mars/Olympus").is_err());
    }
}
