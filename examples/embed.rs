//! actlog embedded in a program: open a store, create a tenant, append activities, query them
//! with filters, and page through the answer with cursors, forwards and back.
//!
//! `cargo run --example embed`

use actlog::{Actor, Filter, NewActivity, ObjectRef, Options, Order, Query, Store, TenantSettings};

fn main() -> actlog::Result<()> {
    let dir = std::env::temp_dir().join(format!("actlog-embed-{}", std::process::id()));
    let store = Store::open(&dir, Options::new())?;
    store.create_tenant("acme", TenantSettings::default())?;

    // One append per call, or a batch that is written all or nothing.
    let alice = Actor {
        kind: "user".into(),
        id: Some("u_1".into()),
        name: Some("Alice".into()),
        email: None,
    };
    store.append(
        "acme",
        NewActivity::new("customer.created", ObjectRef::new("Customer", "c_1"))
            .actor(alice.clone())
            .summary("Alice created customer c_1"),
    )?;
    // Times given explicitly (else the store's clock stamps the whole batch with one time).
    let start = chrono::Utc::now() - chrono::Duration::hours(1);
    let batch: Vec<NewActivity> = (1..=12)
        .map(|n| {
            let action = if n % 3 == 0 {
                "invoice.paid"
            } else {
                "invoice.sent"
            };
            NewActivity::new(action, ObjectRef::new("Invoice", format!("inv_{n}")))
                .actor(alice.clone())
                .target(ObjectRef::new("Customer", "c_1"))
                .context("origin", if n % 2 == 0 { "api" } else { "ui" })
                .created_at(start + chrono::Duration::minutes(n))
        })
        .collect();
    store.append_batch("acme", batch)?;

    // Filters: every invoice action (a prefix) that came through the API, with the exact total.
    let filter = Filter::new()
        .actions(["invoice.*"])
        .context("origin", "api");
    let first = store.query(
        "acme",
        &Query::new()
            .filter(filter.clone())
            .limit(4)
            .include_total(true),
    )?;
    println!(
        "{} invoice activities from the API",
        first.total.unwrap_or(0)
    );

    // Page forwards with `next_cursor`, oldest first, then back with `prev_cursor`.
    let query = Query::new().filter(filter).order(Order::Asc).limit(2);
    let mut page = store.query("acme", &query)?;
    let mut pages = vec![page.items.clone()];
    while let Some(next) = page.next_cursor.clone() {
        page = store.query("acme", &query.clone().cursor(Some(next)))?;
        pages.push(page.items.clone());
    }
    for (i, items) in pages.iter().enumerate() {
        let ids: Vec<&str> = items
            .iter()
            .filter_map(|a| a.resource.id.as_deref())
            .collect();
        println!("page {}: {ids:?}", i + 1);
    }
    let mut back = pages.len();
    while let Some(prev) = page.prev_cursor.clone() {
        page = store.query("acme", &query.clone().cursor(Some(prev)))?;
        back -= 1;
        assert_eq!(
            page.items,
            pages[back - 1],
            "a page read backwards is the same page"
        );
    }
    println!("walked back to page {back}");

    drop(store);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
