//! Following the log: a consumer that reads every activity appended to a tenant exactly once, in
//! the order the store committed them, whatever `created_at` the writers gave, and resumes from
//! the last `seq` it handled (which it would keep durably, next to what it did with them).
//!
//! `cargo run --example follow`

use std::sync::Arc;

use actlog::{
    Condition, Filter, NewActivity, ObjectRef, Options, Order, Query, Store, TenantSettings,
};

/// Reads everything after `after` in the log's order, page by page; returns the last `seq` seen.
fn drain(store: &Store, tenant: &str, filter: &Filter, mut after: u64) -> actlog::Result<u64> {
    loop {
        let q = Query::new()
            .filter(filter.clone().condition(Condition::after_seq(after)))
            .order(Order::Seq)
            .limit(100);
        let page = store.query(tenant, &q)?;
        for a in &page.items {
            println!(
                "seq {:>3}  recorded {}  created {}  {}",
                a.seq,
                a.recorded_at.format("%H:%M:%S%.6f"),
                a.created_at.format("%Y-%m-%d %H:%M"),
                a.action
            );
            after = a.seq;
        }
        if page.items.is_empty() {
            return Ok(after);
        }
    }
}

fn main() -> actlog::Result<()> {
    let dir = std::env::temp_dir().join(format!("actlog-follow-{}", std::process::id()));
    let store = Arc::new(Store::open(&dir, Options::new())?);
    store.create_tenant("acme", TenantSettings::default())?;

    // A writer appends in the background, with times out of order (imports, late events).
    let writer = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || -> actlog::Result<()> {
            let now = chrono::Utc::now();
            for n in 0..20i64 {
                let at = now - chrono::Duration::days((n * 7) % 5);
                store.append(
                    "acme",
                    NewActivity::new(
                        "invoice.sent",
                        ObjectRef::new("Invoice", format!("inv_{n}")),
                    )
                    .created_at(at),
                )?;
            }
            Ok(())
        })
    };

    // The consumer follows until the writer is done, then drains what is left.
    let filter = Filter::new();
    let mut last = 0;
    while !writer.is_finished() {
        last = drain(&store, "acme", &filter, last)?;
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    writer.join().expect("the writer thread")?;
    last = drain(&store, "acme", &filter, last)?;
    assert_eq!(last, store.last_seq("acme")?);
    println!("followed {last} activities, each once and in order");

    drop(store);
    std::fs::remove_dir_all(&dir).map_err(actlog::Error::Io)?;
    Ok(())
}
