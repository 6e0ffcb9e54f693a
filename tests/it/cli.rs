//! The command line: import, export, verify, tenants, keys, against a temporary data directory.

use std::io::Write;
use std::process::Output;

use crate::support;

fn actlog(data: &std::path::Path, args: &[&str]) -> Output {
    support::process::actlog(
        data,
        args,
        &[("ACTLOG_DURABILITY", "relaxed"), ("ACTLOG_LOG", "warn")],
    )
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn import_export_verify_tenants_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = actlog(
        &data,
        &[
            "tenants",
            "create",
            "acme",
            "--timezone",
            "Europe/Ljubljana",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = actlog(&data, &["tenants", "list"]);
    assert!(text(&out.stdout).contains(r#""id":"acme""#));

    let file = dir.path().join("in.ndjson");
    let mut f = std::fs::File::create(&file).unwrap();
    for i in 0..25 {
        // With ids, a re-run import acknowledges what is there instead of writing it twice.
        writeln!(
            f,
            r#"{{"id":"00000000-0000-4000-8000-0000000000{i:02}","action":"imp.{}","resource":{{"type":"T","id":"r{i}"}},"created_at":{}}}"#,
            i % 3,
            1_700_000_000_000i64 + i
        )
        .unwrap();
        if i == 10 {
            writeln!(f, r#"{{"action":"bad"}}"#).unwrap();
        }
        if i == 20 {
            writeln!(f, "not json").unwrap();
        }
    }
    drop(f);
    // Fail mode stops at the first bad line (line 12) and says so; the lines before it stay.
    let out = actlog(
        &data,
        &["import", file.to_str().unwrap(), "--batch-size", "4"],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("line 12: resource"), "{err}");
    // Skip mode reports both bad lines and imports the rest; re-imports are acknowledged.
    let out = actlog(
        &data,
        &[
            "import",
            file.to_str().unwrap(),
            "--batch-size",
            "4",
            "--on-error",
            "skip",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("line 12:") && err.contains("line 23:"),
        "{err}"
    );
    assert!(err.contains("2 bad lines"), "{err}");
    assert!(
        err.contains("imported 14 activities into \"acme\" (11 already present"),
        "{err}"
    );

    let out = actlog(&data, &["export", "--filter", "action=imp.0"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 9);
    assert_eq!(lines[0]["resource"]["id"], "r0", "oldest first");
    // An export is importable as is: importing it again writes nothing new.
    let again = dir.path().join("again.ndjson");
    std::fs::write(&again, &out.stdout).unwrap();
    let out = actlog(&data, &["import", again.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("imported 0 activities"),
        "{}",
        text(&out.stderr)
    );

    let out = actlog(&data, &["export", "--format", "csv"]);
    assert_eq!(text(&out.stdout).lines().count(), 26);

    let out = actlog(&data, &["verify"]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("25 records"),
        "{}",
        text(&out.stdout)
    );

    let out = actlog(&data, &["keys", "create", "--scope", "read"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let k: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(k["tenant"], "acme");
    assert!(k["key"].as_str().unwrap().starts_with("actlog_"));
    let out = actlog(&data, &["keys", "list"]);
    assert!(
        !text(&out.stdout).contains(k["key"].as_str().unwrap()),
        "list shows no secrets"
    );
    let out = actlog(&data, &["keys", "revoke", k["key_id"].as_str().unwrap()]);
    assert!(out.status.success());
    let out = actlog(&data, &["keys", "list"]);
    assert!(text(&out.stdout).contains(r#""revoked":true"#));
    let out = actlog(&data, &["--help"]);
    assert!(text(&out.stdout).contains("serve"));
}

/// Regression (issue 11): `tenants create/update --retention-days` took any u32, and 999,999,999
/// days overflowed the purge's cutoff arithmetic and wiped the tenant's log at the next purge.
/// The CLI goes through the store's validation: 1–36,500 days, an error naming the field.
#[test]
fn tenants_refuse_a_retention_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for days in ["0", "36501", "999999999"] {
        let out = actlog(
            &data,
            &["tenants", "create", "acme", "--retention-days", days],
        );
        assert!(!out.status.success(), "{days} accepted");
        assert!(
            text(&out.stderr).contains("retention_days"),
            "{}",
            text(&out.stderr)
        );
    }
    let out = actlog(
        &data,
        &["tenants", "create", "acme", "--retention-days", "36500"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = actlog(
        &data,
        &["tenants", "update", "acme", "--retention-days", "999999999"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("retention_days"),
        "{}",
        text(&out.stderr)
    );
    let out = actlog(&data, &["tenants", "list"]);
    assert!(
        text(&out.stdout).contains(r#""retention_days":36500"#),
        "{}",
        text(&out.stdout)
    );
}
