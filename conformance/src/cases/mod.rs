//! The cases, one module per area of docs/device-api.md (protocol layer) plus the workflow
//! layer (docs/domain.md §8, the core end to end), and the helpers they share.

pub mod config;
pub mod enroll;
pub mod errors;
pub mod images;
pub mod logs;
pub mod objects;
pub mod session;
pub mod workflow;

use serde_json::{Value as Json, json};

use crate::context::{Ctx, Problem, RESERVED_FROM};

/// The `n`-th reserved id.
pub(crate) fn rid(n: i64) -> i64 {
    RESERVED_FROM + n
}

/// Maps a driver error to a harness or terminal problem: anything the terminal refused
/// is a failure of the case, anything else an error of the harness.
pub(crate) fn driver(e: acs_core::terminal::DriverError) -> Problem {
    match e {
        acs_core::terminal::DriverError::Rejected { .. }
        | acs_core::terminal::DriverError::Protocol { .. } => Problem::Fail {
            expected: "the terminal accepts the request".into(),
            actual: e.to_string(),
        },
        other => Problem::Error(other.to_string()),
    }
}

/// Creates users in the reserved range (`ids` relative to it); replaces leftovers first.
pub(crate) async fn users(ctx: &Ctx, ids: &[i64]) -> Result<(), Problem> {
    let rows: Vec<Json> = ids
        .iter()
        .map(|n| json!({"id": rid(*n), "name": format!("conformance {n}"), "registration": format!("CF-{n}")}))
        .collect();
    let ids_abs: Vec<i64> = ids.iter().map(|n| rid(*n)).collect();
    ctx.call(
        "destroy_objects",
        &json!({"object": "users", "where": {"users": {"id": ids_abs}}}),
    )
    .await?;
    let r = ctx
        .call(
            "create_objects",
            &json!({"object": "users", "values": rows}),
        )
        .await?;
    if r.status != 200 {
        return Err(Problem::Fail {
            expected: "create_objects of users answers 200".into(),
            actual: format!("{} {}", r.status, r.json),
        });
    }
    Ok(())
}

/// Gives reserved user `n` the card `value` (taking it from whoever held it).
pub(crate) async fn give_card(ctx: &Ctx, n: i64, value: u64) -> Result<(), Problem> {
    ctx.call(
        "destroy_objects",
        &json!({"object": "cards", "where": {"cards": {"value": value}}}),
    )
    .await?;
    ctx.call(
        "create_objects",
        &json!({"object": "cards", "values": [{"value": value, "user_id": rid(n)}]}),
    )
    .await?;
    Ok(())
}

/// Loads rows of `table` with a nested `where`.
pub(crate) async fn load(ctx: &Ctx, table: &str, where_: Json) -> Result<Vec<Json>, Problem> {
    let r = ctx
        .call("load_objects", &json!({"object": table, "where": where_}))
        .await?;
    r.json[table]
        .as_array()
        .cloned()
        .ok_or_else(|| Problem::Fail {
            expected: format!("load_objects answers {{\"{table}\": [...]}}"),
            actual: format!("{} {}", r.status, r.json),
        })
}

/// The device's error envelope check: status and `{"error": <text>, "code": 1}`.
pub(crate) fn envelope(r: &crate::context::Raw, status: u16) -> Result<(), Problem> {
    crate::context::ensure(
        r.status == status && r.json["error"].is_string() && r.json["code"] == json!(1),
        &format!("{status} with {{\"error\": <text>, \"code\": 1}}"),
        || format!("{} {}", r.status, String::from_utf8_lossy(&r.bytes)),
    )
}

/// The highest `access_logs` id the terminal holds (0 when it has none): noted before a
/// physical step, so that only newer rows count as its evidence.
pub(crate) async fn newest_log(ctx: &Ctx) -> Result<i64, Problem> {
    let r = ctx
        .call(
            "load_objects",
            &json!({"object": "access_logs", "fields": ["id"], "order": ["descending", "id"], "limit": 1}),
        )
        .await?;
    Ok(r.json["access_logs"][0]["id"].as_i64().unwrap_or(0))
}

/// The first access-log row of `card` newer than log id `after`, waiting for it at most
/// `wait`.
pub(crate) async fn fresh_log(
    ctx: &Ctx,
    card: u64,
    after: i64,
    wait: std::time::Duration,
) -> Result<Option<Json>, Problem> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let r = ctx
            .call(
                "load_objects",
                &json!({"object": "access_logs", "where": [
                    {"field": "card_value", "operator": "=", "value": card},
                    {"field": "id", "operator": ">", "value": after}],
                "order": ["ascending", "id"], "limit": 1}),
            )
            .await?;
        if let Some(row) = r.json["access_logs"].get(0) {
            return Ok(Some(row.clone()));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}
