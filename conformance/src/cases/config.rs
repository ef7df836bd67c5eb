//! Configuration and system information (docs/device-api.md §9): values as strings, a
//! round trip that is restored afterwards, the device's identity.

use serde_json::json;

use crate::catalogue::{Case, case, fault};
use crate::context::{CaseOutcome, Ctx, check, ensure};
use crate::outcome::Layer::Protocol;

/// The configuration cases.
pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "CONFIG-001",
            "get_configuration answers values as strings",
            "docs/device-api.md §9.2",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(strings(c)),
            fault("get_configuration", 200, json!({"general": {"online": 0}})),
        ),
        case(
            "CONFIG-002",
            "a monitor address set is read back (and restored)",
            "docs/device-api.md §6.1",
            Protocol,
            &[],
            false,
            true,
            |c| Box::pin(monitor_round_trip(c)),
            fault("set_configuration", 200, json!({})),
        ),
        case(
            "CONFIG-003",
            "system_information names the device (device_id, serial, version)",
            "docs/device-api.md §9.1",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(identity(c)),
            fault("system_information", 200, json!({"serial": "x"})),
        ),
        case(
            "CONFIG-004",
            "the core's driver reads the device id exactly",
            "docs/device-api.md §9.1",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(driver_identity(c)),
            fault(
                "system_information",
                200,
                json!({"device_id": "not a number"}),
            ),
        ),
    ]
}

async fn strings(ctx: Ctx) -> CaseOutcome {
    let r = ctx
        .call("get_configuration", &json!({"general": ["online"]}))
        .await?;
    ensure(
        r.json["general"]["online"].is_string(),
        "general.online as a string",
        || r.json.to_string(),
    )
}

async fn monitor_round_trip(ctx: Ctx) -> CaseOutcome {
    let before = ctx
        .call(
            "get_configuration",
            &json!({"monitor": ["hostname", "port", "path"]}),
        )
        .await?;
    let wanted = json!({"hostname": "192.0.2.10", "port": "8123", "path": "conformance"});
    ctx.call("set_configuration", &json!({"monitor": wanted}))
        .await?;
    let after = ctx
        .call(
            "get_configuration",
            &json!({"monitor": ["hostname", "port", "path"]}),
        )
        .await?;
    // Restore what was there.
    if before.json["monitor"].is_object() {
        ctx.call(
            "set_configuration",
            &json!({"monitor": before.json["monitor"]}),
        )
        .await?;
    }
    check("monitor", after.json["monitor"].clone(), wanted)
}

async fn identity(ctx: Ctx) -> CaseOutcome {
    let r = ctx.raw("system_information", "", Some(&json!({}))).await?;
    let j = &r.json;
    ensure(
        (j["device_id"].is_number() || j["device_id"].is_string())
            && j["serial"].is_string()
            && j["version"].is_string(),
        "device_id, serial and version",
        || j.to_string(),
    )
}

async fn driver_identity(ctx: Ctx) -> CaseOutcome {
    let raw = ctx.raw("system_information", "", Some(&json!({}))).await?;
    let info = ctx
        .driver()
        .system_information()
        .await
        .map_err(super::driver)?;
    let expected = match &raw.json["device_id"] {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    };
    check("device_id", Some(info.device_id), expected)
}
