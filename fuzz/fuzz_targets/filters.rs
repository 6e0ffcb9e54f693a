//! The list filters: query-string pairs (`a=b&c=d`, `q` included) and `q` JSON text, parsed
//! as the HTTP layer parses them, then run against a small store. Parsing and planning never
//! panic, whatever the filter; a parse error is a 400 naming a field.
#![no_main]

use std::sync::OnceLock;

use actlog::{NewActivity, ObjectRef, Options, Store, TenantSettings};
use libfuzzer_sys::fuzz_target;

fn store() -> &'static Store {
    static STORE: OnceLock<(tempfile::TempDir, Store)> = OnceLock::new();
    &STORE
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = Store::open(
                dir.path(),
                Options::new()
                    .durability(actlog::Durability::Relaxed)
                    .cache_capacity(4 << 20),
            )
            .expect("store");
            store
                .create_tenant("t", TenantSettings::default())
                .expect("tenant");
            let batch = (0..40)
                .map(|i| {
                    NewActivity::new(
                        ["invoice.sent", "integration_x", "a.b"][i % 3],
                        ObjectRef {
                            kind: "Invoice".into(),
                            id: Some(format!("inv_{}", i % 4)),
                        },
                    )
                    .context("k", format!("v{}", i % 2))
                })
                .collect();
            store.append_batch("t", batch).expect("seed");
            (dir, store)
        })
        .1
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let tz = chrono_tz::Europe::Ljubljana;
    let parsed = if let Some(q) = text.strip_prefix('{') {
        actlog::http::filters::parse_q_str(&format!("{{{q}"), tz).map(|conditions| {
            let mut query = actlog::Query::default();
            query.filter.conditions = conditions;
            query
        })
    } else {
        let pairs: Vec<(String, String)> = text
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (p.to_owned(), String::new()),
            })
            .collect();
        actlog::http::filters::query_from_params(&pairs, tz)
    };
    match parsed {
        Ok(mut q) => {
            q.limit = q.limit.clamp(1, 20);
            let s = store();
            let _ = s.query("t", &q);
            let _ = s.count("t", &q.filter);
        }
        Err(e) => assert!(e.status.is_client_error(), "{e:?}"),
    }
});
