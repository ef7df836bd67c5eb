//! Errors in general (docs/device-api.md §2): the device's envelope and statuses for unknown
//! commands, malformed JSON, missing and mistyped members, unknown tables.

use serde_json::json;

use crate::catalogue::{Case, case, fault};
use crate::context::{CaseOutcome, Ctx, check, ensure, pct};
use crate::outcome::Layer::Protocol;

/// The error cases.
pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "ERRORS-001",
            "an unknown command answers 404",
            "docs/device-api.md §2",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(unknown_command(c)),
            fault("count_objects", 200, json!({})),
        ),
        case(
            "ERRORS-002",
            "malformed JSON answers 400 with the error envelope",
            "docs/device-api.md §2",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(malformed(c)),
            fault("load_objects", 200, json!({"users": []})),
        ),
        case(
            "ERRORS-003",
            "a missing member names it: Invalid member '<name>'",
            "docs/device-api.md §2",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(missing_member(c)),
            fault(
                "set_system_time",
                400,
                json!({"error": "Bad request", "code": 1}),
            ),
        ),
        case(
            "ERRORS-004",
            "a mistyped member says what was expected and got",
            "docs/device-api.md §2",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(wrong_type(c)),
            fault(
                "set_system_time",
                400,
                json!({"error": "Bad request", "code": 1}),
            ),
        ),
        case(
            "ERRORS-005",
            "an unknown table is refused with 400",
            "docs/device-api.md §3.8",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(unknown_table(c)),
            fault("load_objects", 200, json!({"no_such_table": []})),
        ),
        case(
            "ERRORS-006",
            "error replies are JSON",
            "docs/device-api.md §0",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(json_errors(c)),
            fault("load_objects", 400, json!("plain text")),
        ),
        case(
            "ERRORS-007",
            "create_objects with values not an array is refused",
            "docs/device-api.md §3.3",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(values_not_array(c)),
            fault("create_objects", 200, json!({"ids": [1]})),
        ),
        case(
            "ERRORS-008",
            "set_configuration refuses non-string values",
            "docs/device-api.md §9.2",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(config_not_string(c)),
            fault("set_configuration", 200, json!({})),
        ),
        case(
            "ERRORS-009",
            "a where on an unknown column is refused",
            "docs/device-api.md §3.2",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(unknown_column(c)),
            fault("load_objects", 200, json!({"users": []})),
        ),
    ]
}

async fn unknown_command(ctx: Ctx) -> CaseOutcome {
    let s = ctx.session().await?;
    let r = ctx
        .raw(
            "count_objects",
            &format!("session={}", pct(&s)),
            Some(&json!({"object": "users"})),
        )
        .await?;
    check("status", r.status, 404)
}

async fn malformed(ctx: Ctx) -> CaseOutcome {
    let s = ctx.session().await?;
    let r = ctx
        .raw_bytes(
            "load_objects",
            &format!("session={}", pct(&s)),
            Some(b"{\"object\": ".to_vec()),
            "application/json",
        )
        .await?;
    super::envelope(&r, 400)
}

async fn missing_member(ctx: Ctx) -> CaseOutcome {
    let r = ctx
        .call(
            "set_system_time",
            &json!({"day": 10, "month": 11, "year": 2025, "hour": 11, "second": 0}),
        )
        .await?;
    super::envelope(&r, 400)?;
    let text = r.json["error"].as_str().unwrap_or_default().to_owned();
    ensure(text.contains("minute"), "the error names 'minute'", || {
        text.clone()
    })
}

async fn wrong_type(ctx: Ctx) -> CaseOutcome {
    let r = ctx
        .call(
            "set_system_time",
            &json!({"day": 10, "month": 11, "year": 2025, "hour": 11, "minute": "15", "second": 0}),
        )
        .await?;
    super::envelope(&r, 400)?;
    let text = r.json["error"].as_str().unwrap_or_default().to_owned();
    ensure(
        text.contains("minute") && text.contains("string"),
        "Invalid member 'minute' (int expected, got string)",
        || text.clone(),
    )
}

async fn unknown_table(ctx: Ctx) -> CaseOutcome {
    let r = ctx
        .call("load_objects", &json!({"object": "no_such_table"}))
        .await?;
    super::envelope(&r, 400)
}

async fn json_errors(ctx: Ctx) -> CaseOutcome {
    let r = ctx.call("load_objects", &json!({"object": 7})).await?;
    ensure(
        r.status == 400 && r.json.is_object(),
        "400 with a JSON object",
        || format!("{} {}", r.status, String::from_utf8_lossy(&r.bytes)),
    )
}

async fn values_not_array(ctx: Ctx) -> CaseOutcome {
    let r = ctx
        .call(
            "create_objects",
            &json!({"object": "users", "values": {"id": super::rid(900), "name": "x", "registration": "CF-900"}}),
        )
        .await?;
    super::envelope(&r, 400)
}

async fn config_not_string(ctx: Ctx) -> CaseOutcome {
    let r = ctx
        .call("set_configuration", &json!({"monitor": {"port": 8000}}))
        .await?;
    super::envelope(&r, 400)
}

async fn unknown_column(ctx: Ctx) -> CaseOutcome {
    let r = ctx
        .call(
            "load_objects",
            &json!({"object": "users", "where": {"users": {"no_such_column": 1}}}),
        )
        .await?;
    super::envelope(&r, 400)
}
