//! Sessions (docs/device-api.md §1): login, passing the token, invalid sessions, logout,
//! re-login by the core's driver.

use serde_json::json;

use crate::catalogue::{Case, case, fault};
use crate::context::{CaseOutcome, Ctx, check, ensure, pct};
use crate::outcome::Layer::Protocol;

/// The session cases.
pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "SESSION-001",
            "login answers a session token",
            "docs/device-api.md §1.1",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(login(c)),
            fault("login", 500, json!({})),
        ),
        case(
            "SESSION-002",
            "a wrong password is refused with 401 and the device's error",
            "docs/device-api.md §1.1",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(wrong_password(c)),
            fault("login", 200, json!({"session": "x"})),
        ),
        case(
            "SESSION-003",
            "session_is_valid is true for a fresh token",
            "docs/device-api.md §1.4",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(is_valid(c)),
            fault("session_is_valid", 200, json!({"session_is_valid": false})),
        ),
        case(
            "SESSION-004",
            "a command without a session is refused with 401",
            "docs/device-api.md §1.6",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(missing(c)),
            fault("load_objects", 200, json!({"users": []})),
        ),
        case(
            "SESSION-005",
            "a garbage token is refused with 401",
            "docs/device-api.md §1.6",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(garbage(c)),
            fault("load_objects", 200, json!({"users": []})),
        ),
        case(
            "SESSION-006",
            "logout invalidates the token",
            "docs/device-api.md §1.5",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(logout(c)),
            fault("session_is_valid", 200, json!({"session_is_valid": true})),
        ),
        case(
            "SESSION-007",
            "a percent-encoded token is accepted",
            "docs/device-api.md §1.2",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(percent(c)),
            fault(
                "load_objects",
                401,
                json!({"error": "Invalid session", "code": 1}),
            ),
        ),
        case(
            "SESSION-008",
            "the token is accepted in a session cookie",
            "docs/device-api.md §1.2",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(cookie(c)),
            fault(
                "load_objects",
                401,
                json!({"error": "Invalid session", "code": 1}),
            ),
        ),
        case(
            "SESSION-009",
            "the core's driver logs in again after a 401",
            "docs/device-api.md §1.6",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(relogin(c)),
            crate::catalogue::Fault {
                command: "load_objects",
                status: 401,
                body: json!({"error": "Invalid session", "code": 1}),
                count: 2,
            },
        ),
        case(
            "SESSION-010",
            "system_information needs no session",
            "docs/device-api.md §1.3",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(public(c)),
            fault(
                "system_information",
                401,
                json!({"error": "Invalid session", "code": 1}),
            ),
        ),
    ]
}

async fn login(ctx: Ctx) -> CaseOutcome {
    let r = ctx
        .raw(
            "login",
            "",
            Some(&json!({"login": ctx.login_name(), "password": ctx.password()})),
        )
        .await?;
    ensure(
        r.status == 200 && r.json["session"].as_str().is_some_and(|s| !s.is_empty()),
        "200 {\"session\": <non-empty token>}",
        || format!("{} {}", r.status, r.json),
    )
}

async fn wrong_password(ctx: Ctx) -> CaseOutcome {
    let r = ctx
        .raw(
            "login",
            "",
            Some(&json!({"login": ctx.login_name(), "password": "certainly-not-the-password"})),
        )
        .await?;
    super::envelope(&r, 401)
}

async fn is_valid(ctx: Ctx) -> CaseOutcome {
    let s = ctx.session().await?;
    let r = ctx
        .raw("session_is_valid", &format!("session={}", pct(&s)), None)
        .await?;
    check(
        "session_is_valid",
        r.json["session_is_valid"].clone(),
        json!(true),
    )
}

async fn missing(ctx: Ctx) -> CaseOutcome {
    let r = ctx
        .raw(
            "load_objects",
            "",
            Some(&json!({"object": "users", "limit": 1})),
        )
        .await?;
    super::envelope(&r, 401)
}

async fn garbage(ctx: Ctx) -> CaseOutcome {
    let r = ctx
        .raw(
            "load_objects",
            "session=NotARealToken123",
            Some(&json!({"object": "users", "limit": 1})),
        )
        .await?;
    super::envelope(&r, 401)
}

async fn logout(ctx: Ctx) -> CaseOutcome {
    let r = ctx
        .raw(
            "login",
            "",
            Some(&json!({"login": ctx.login_name(), "password": ctx.password()})),
        )
        .await?;
    let token = r.json["session"].as_str().unwrap_or_default().to_owned();
    let q = format!("session={}", pct(&token));
    ctx.raw("logout", &q, None).await?;
    let v = ctx.raw("session_is_valid", &q, None).await?;
    check(
        "session_is_valid after logout",
        v.json["session_is_valid"].clone(),
        json!(false),
    )
}

async fn percent(ctx: Ctx) -> CaseOutcome {
    let s = ctx.session().await?;
    let r = ctx
        .raw(
            "load_objects",
            &format!("session={}", pct(&s)),
            Some(&json!({"object": "users", "limit": 1})),
        )
        .await?;
    check("status", r.status, 200)
}

async fn cookie(ctx: Ctx) -> CaseOutcome {
    let s = ctx.session().await?;
    let r = reqwest::Client::new()
        .post(format!("{}/load_objects.fcgi", ctx.base_url()))
        .header("Cookie", format!("session={s}"))
        .json(&json!({"object": "users", "limit": 1}))
        .send()
        .await
        .map_err(|e| crate::context::Problem::Error(e.to_string()))?;
    let status = r.status().as_u16();
    ctx.note(
        "POST /load_objects.fcgi (Cookie: session=***)".into(),
        format!("{status}"),
    );
    check("status", status, 200)
}

async fn relogin(ctx: Ctx) -> CaseOutcome {
    // The driver's first call logs in; the terminal then forgets the session (a fault or
    // a reboot on hardware): the driver must log in again and succeed.
    ctx.driver()
        .load_objects(
            "users",
            serde_json::Map::from_iter([("limit".into(), json!(1))]),
        )
        .await
        .map_err(super::driver)?;
    Ok(())
}

async fn public(ctx: Ctx) -> CaseOutcome {
    let r = ctx.raw("system_information", "", Some(&json!({}))).await?;
    ensure(
        r.status == 200 && (r.json["device_id"].is_number() || r.json["device_id"].is_string()),
        "200 with device_id",
        || format!("{} {}", r.status, r.json),
    )
}
