//! The objects API (docs/device-api.md §3): create, load (both `where` forms, fields, order,
//! limit/offset, COUNT, joins), modify, destroy, create_or_modify, uniqueness, exact 64-bit
//! values – all on users in the reserved id range.

use serde_json::{Value as Json, json};

use super::{give_card, load, rid, users};
use crate::catalogue::{Case, case, fault};
use crate::context::{CaseOutcome, Ctx, check, ensure};
use crate::outcome::Layer::Protocol;

/// 123,45678 as a 64-bit `cards.value`.
pub(crate) const CARD: u64 = 528_281_023_086;

/// The object cases.
pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "OBJECTS-001",
            "create_objects answers the new ids in order",
            "docs/device-api.md §3.3",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(create(c)),
            fault("create_objects", 200, json!({"ids": [1]})),
        ),
        case(
            "OBJECTS-002",
            "load_objects finds a row by id",
            "docs/device-api.md §3.1",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(load_by_id(c)),
            fault("load_objects", 200, json!({"users": []})),
        ),
        case(
            "OBJECTS-003",
            "a 64-bit card value round-trips exactly",
            "docs/device-api.md §3.8",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(card_value(c)),
            fault(
                "load_objects",
                200,
                json!({"cards": [{"value": 528_281_023_000_u64}]}),
            ),
        ),
        case(
            "OBJECTS-004",
            "modify_objects answers the number of changed rows",
            "docs/device-api.md §3.4",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(modify(c)),
            fault("modify_objects", 200, json!({"changes": 0})),
        ),
        case(
            "OBJECTS-005",
            "destroy_objects removes the rows",
            "docs/device-api.md §3.5",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(destroy(c)),
            crate::catalogue::Fault {
                command: "destroy_objects",
                status: 200,
                body: json!({"changes": 1}),
                count: 2,
            },
        ),
        case(
            "OBJECTS-006",
            "a nested where with an array means IN",
            "docs/device-api.md §3.2",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(where_in(c)),
            fault("load_objects", 200, json!({"users": []})),
        ),
        case(
            "OBJECTS-007",
            "the array where form with LIKE",
            "docs/device-api.md §3.2",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(where_like(c)),
            fault("load_objects", 200, json!({"users": []})),
        ),
        case(
            "OBJECTS-008",
            "fields selects the columns returned",
            "docs/device-api.md §3.1",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(fields(c)),
            fault(
                "load_objects",
                200,
                json!({"users": [{"id": 1, "name": "x", "registration": "y"}]}),
            ),
        ),
        case(
            "OBJECTS-009",
            "limit and offset page through rows",
            "docs/device-api.md §3.1",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(paging(c)),
            fault("load_objects", 200, json!({"users": []})),
        ),
        case(
            "OBJECTS-010",
            "order sorts descending",
            "docs/device-api.md §3.1",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(order(c)),
            fault(
                "load_objects",
                200,
                json!({"users": [{"id": 1}, {"id": 2}]}),
            ),
        ),
        case(
            "OBJECTS-011",
            "COUNT(*) counts matching rows",
            "docs/device-api.md §3.1",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(count(c)),
            fault("load_objects", 200, json!({"users": [{"COUNT(*)": 0}]})),
        ),
        case(
            "OBJECTS-012",
            "a duplicate card value is refused",
            "docs/device-api.md §3.3",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(duplicate_card(c)),
            crate::catalogue::Fault {
                command: "create_objects",
                status: 200,
                body: json!({"ids": [1]}),
                count: 3,
            },
        ),
        case(
            "OBJECTS-013",
            "create_or_modify_objects updates an existing row",
            "docs/device-api.md §3.6",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(upsert(c)),
            fault("create_or_modify_objects", 200, json!({})),
        ),
        case(
            "OBJECTS-014",
            "user validity (begin_time/end_time) is stored exactly",
            "docs/device-api.md §3.8",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(validity(c)),
            fault(
                "load_objects",
                200,
                json!({"users": [{"begin_time": 0, "end_time": 0}]}),
            ),
        ),
        case(
            "OBJECTS-015",
            "load cards joined through the user's registration",
            "docs/device-api.md §3.2",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(join(c)),
            fault("load_objects", 200, json!({"cards": []})),
        ),
        case(
            "OBJECTS-016",
            "access_logs can be read",
            "docs/device-api.md §3.9",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(access_logs(c)),
            fault("load_objects", 400, json!({"error": "x", "code": 1})),
        ),
        case(
            "OBJECTS-017",
            "the core's driver creates, loads and destroys through the objects API",
            "docs/device-api.md §3",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(driver_round_trip(c)),
            fault("create_objects", 400, json!({"error": "x", "code": 1})),
        ),
        case(
            "OBJECTS-018",
            "destroy_objects with a list of ids removes them all",
            "docs/device-api.md §3.5",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(destroy_many(c)),
            crate::catalogue::Fault {
                command: "destroy_objects",
                status: 200,
                body: json!({"changes": 3}),
                count: 2,
            },
        ),
    ]
}

async fn create(ctx: Ctx) -> CaseOutcome {
    let ids = [rid(1), rid(2)];
    ctx.call(
        "destroy_objects",
        &json!({"object": "users", "where": {"users": {"id": ids}}}),
    )
    .await?;
    let r = ctx
        .call(
            "create_objects",
            &json!({"object": "users", "values": [
            {"id": ids[0], "name": "CF one", "registration": "CF-1"},
            {"id": ids[1], "name": "CF two", "registration": "CF-2"}]}),
        )
        .await?;
    check("ids", r.json["ids"].clone(), json!(ids))
}

async fn load_by_id(ctx: Ctx) -> CaseOutcome {
    users(&ctx, &[3]).await?;
    let rows = load(&ctx, "users", json!({"users": {"id": rid(3)}})).await?;
    check(
        "names",
        rows.iter().map(|r| r["name"].clone()).collect::<Vec<_>>(),
        vec![json!("conformance 3")],
    )
}

async fn card_value(ctx: Ctx) -> CaseOutcome {
    users(&ctx, &[4]).await?;
    give_card(&ctx, 4, CARD).await?;
    let rows = load(&ctx, "cards", json!({"cards": {"user_id": rid(4)}})).await?;
    check(
        "cards.value",
        rows.first().map(|r| r["value"].clone()),
        Some(json!(CARD)),
    )
}

async fn modify(ctx: Ctx) -> CaseOutcome {
    users(&ctx, &[5]).await?;
    let r = ctx
        .call("modify_objects", &json!({"object": "users", "values": {"name": "renamed"}, "where": {"users": {"id": rid(5)}}}))
        .await?;
    check("changes", r.json["changes"].clone(), json!(1))?;
    let rows = load(&ctx, "users", json!({"users": {"id": rid(5)}})).await?;
    check(
        "name",
        rows.first().map(|r| r["name"].clone()),
        Some(json!("renamed")),
    )
}

async fn destroy(ctx: Ctx) -> CaseOutcome {
    users(&ctx, &[6]).await?;
    ctx.call(
        "destroy_objects",
        &json!({"object": "users", "where": {"users": {"id": rid(6)}}}),
    )
    .await?;
    let rows = load(&ctx, "users", json!({"users": {"id": rid(6)}})).await?;
    check("rows left", rows.len(), 0)
}

async fn where_in(ctx: Ctx) -> CaseOutcome {
    users(&ctx, &[7, 8, 9]).await?;
    let rows = load(&ctx, "users", json!({"users": {"id": [rid(7), rid(9)]}})).await?;
    let mut ids: Vec<i64> = rows.iter().filter_map(|r| r["id"].as_i64()).collect();
    ids.sort_unstable();
    check("ids", ids, vec![rid(7), rid(9)])
}

async fn where_like(ctx: Ctx) -> CaseOutcome {
    users(&ctx, &[10]).await?;
    let r = ctx
        .call(
            "load_objects",
            &json!({"object": "users", "where": [
            {"field": "registration", "operator": "LIKE", "value": "CF-10"},
            {"field": "id", "operator": ">=", "value": rid(0)}]}),
        )
        .await?;
    let rows = r.json["users"].as_array().cloned().unwrap_or_default();
    check(
        "ids",
        rows.iter()
            .filter_map(|r| r["id"].as_i64())
            .collect::<Vec<_>>(),
        vec![rid(10)],
    )
}

async fn fields(ctx: Ctx) -> CaseOutcome {
    users(&ctx, &[11]).await?;
    let r = ctx
        .call("load_objects", &json!({"object": "users", "fields": ["id", "name"], "where": {"users": {"id": rid(11)}}}))
        .await?;
    let row = r.json["users"][0].clone();
    let mut keys: Vec<String> = row
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    check("columns", keys, vec!["id".to_owned(), "name".to_owned()])
}

async fn paging(ctx: Ctx) -> CaseOutcome {
    users(&ctx, &[12, 13, 14]).await?;
    let page = |offset: i64| {
        json!({"object": "users", "fields": ["id"], "limit": 2, "offset": offset, "order": ["id"],
               "where": {"users": {"id": [rid(12), rid(13), rid(14)]}}})
    };
    let first = ctx.call("load_objects", &page(0)).await?;
    let second = ctx.call("load_objects", &page(2)).await?;
    let ids = |r: &crate::context::Raw| -> Vec<i64> {
        r.json["users"]
            .as_array()
            .map(|a| a.iter().filter_map(|u| u["id"].as_i64()).collect())
            .unwrap_or_default()
    };
    check(
        "pages",
        (ids(&first), ids(&second)),
        (vec![rid(12), rid(13)], vec![rid(14)]),
    )
}

async fn order(ctx: Ctx) -> CaseOutcome {
    users(&ctx, &[15, 16]).await?;
    let r = ctx
        .call(
            "load_objects",
            &json!({"object": "users", "fields": ["id"], "order": ["descending", "id"],
               "where": {"users": {"id": [rid(15), rid(16)]}}}),
        )
        .await?;
    let ids: Vec<i64> = r.json["users"]
        .as_array()
        .map(|a| a.iter().filter_map(|u| u["id"].as_i64()).collect())
        .unwrap_or_default();
    check("order", ids, vec![rid(16), rid(15)])
}

async fn count(ctx: Ctx) -> CaseOutcome {
    users(&ctx, &[17, 18]).await?;
    let r = ctx
        .call("load_objects", &json!({"object": "users", "fields": ["COUNT(*)"], "where": {"users": {"id": [rid(17), rid(18)]}}}))
        .await?;
    check("COUNT(*)", r.json["users"][0]["COUNT(*)"].clone(), json!(2))
}

async fn duplicate_card(ctx: Ctx) -> CaseOutcome {
    users(&ctx, &[19]).await?;
    let value = CARD + 19;
    give_card(&ctx, 19, value).await?;
    let again = ctx
        .call(
            "create_objects",
            &json!({"object": "cards", "values": [{"value": value, "user_id": rid(19)}]}),
        )
        .await?;
    ensure(again.status == 400, "400 for the duplicate card", || {
        format!("{} {}", again.status, again.json)
    })
}

async fn upsert(ctx: Ctx) -> CaseOutcome {
    users(&ctx, &[20]).await?;
    ctx.call("create_or_modify_objects", &json!({"object": "users", "values": [{"id": rid(20), "name": "upserted", "registration": "CF-20"}]}))
        .await?;
    let rows = load(&ctx, "users", json!({"users": {"id": rid(20)}})).await?;
    check(
        "name",
        rows.first().map(|r| r["name"].clone()),
        Some(json!("upserted")),
    )
}

async fn validity(ctx: Ctx) -> CaseOutcome {
    let id = rid(21);
    ctx.call(
        "destroy_objects",
        &json!({"object": "users", "where": {"users": {"id": id}}}),
    )
    .await?;
    ctx.call("create_objects", &json!({"object": "users", "values": [{"id": id, "name": "CF", "registration": "CF-21", "begin_time": 1_762_000_000, "end_time": 1_893_456_000}]}))
        .await?;
    let rows = load(&ctx, "users", json!({"users": {"id": id}})).await?;
    let row = rows.first().cloned().unwrap_or(Json::Null);
    check(
        "validity",
        (row["begin_time"].clone(), row["end_time"].clone()),
        (json!(1_762_000_000), json!(1_893_456_000)),
    )
}

async fn join(ctx: Ctx) -> CaseOutcome {
    users(&ctx, &[22]).await?;
    let value = CARD + 22;
    give_card(&ctx, 22, value).await?;
    let rows = load(&ctx, "cards", json!({"users": {"registration": "CF-22"}})).await?;
    check(
        "joined card",
        rows.iter().map(|r| r["value"].clone()).collect::<Vec<_>>(),
        vec![json!(value)],
    )
}

async fn access_logs(ctx: Ctx) -> CaseOutcome {
    let r = ctx
        .call(
            "load_objects",
            &json!({"object": "access_logs", "limit": 5}),
        )
        .await?;
    ensure(
        r.status == 200 && r.json["access_logs"].is_array(),
        "200 {\"access_logs\": [...]}",
        || format!("{} {}", r.status, r.json),
    )
}

async fn driver_round_trip(ctx: Ctx) -> CaseOutcome {
    let d = ctx.driver();
    let id = rid(23);
    d.destroy_objects("users", json!({"users": {"id": id}}))
        .await
        .map_err(super::driver)?;
    let row = serde_json::Map::from_iter([
        ("id".into(), json!(id)),
        ("name".into(), json!("CF driver")),
        ("registration".into(), json!("CF-23")),
    ]);
    let ids = d
        .create_objects("users", vec![row])
        .await
        .map_err(super::driver)?;
    check("ids", ids, vec![id])?;
    let found = d
        .load_objects(
            "users",
            serde_json::Map::from_iter([("where".into(), json!({"users": {"id": id}}))]),
        )
        .await
        .map_err(super::driver)?;
    check("found", found.len(), 1)?;
    let gone = d
        .destroy_objects("users", json!({"users": {"id": id}}))
        .await
        .map_err(super::driver)?;
    check("destroyed", gone, 1)
}

async fn destroy_many(ctx: Ctx) -> CaseOutcome {
    users(&ctx, &[24, 25, 26]).await?;
    let r = ctx
        .call(
            "destroy_objects",
            &json!({"object": "users", "where": {"users": {"id": [rid(24), rid(25), rid(26)]}}}),
        )
        .await?;
    check("changes", r.json["changes"].clone(), json!(3))?;
    let rows = load(
        &ctx,
        "users",
        json!({"users": {"id": [rid(24), rid(25), rid(26)]}}),
    )
    .await?;
    check("rows left", rows.len(), 0)
}
