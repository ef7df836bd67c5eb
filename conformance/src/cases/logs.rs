//! Identification at the terminal and its access logs (docs/device-api.md §3.9): a user with
//! a rule is let in (event 7), an unknown card is not identified (event 3), a user outside
//! their validity is denied (event 6). The rule and its time zone are the case's own, in
//! the reserved range.
//!
//! Only fresh evidence counts: the highest `access_logs` id is noted before the operator
//! is asked to present the card, and only a newer row for that card is read. An operator
//! who confirms without presenting anything leaves no such row, and the case is not run –
//! never passed on a row of an earlier run.

use serde_json::{Value as Json, json};

use super::objects::CARD;
use super::{give_card, rid, users};
use crate::catalogue::{Case, Fault, case};
use crate::context::{CaseOutcome, Ctx, Problem, check};
use crate::operator::{Moment, Performed, Step};
use crate::outcome::Capability::Card;
use crate::outcome::Layer::Protocol;
use crate::outcome::Reason;

/// The access-log cases.
pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "LOGS-001",
            "a card of a user with a rule is let in and logged (event 7)",
            "docs/device-api.md §3.9",
            Protocol,
            &[Card],
            true,
            false,
            |c| Box::pin(granted(c)),
            Fault {
                command: "load_objects",
                status: 200,
                body: json!({"access_logs": [{"id": 1_000_000_000, "event": 6}]}),
                // The newest id before the prompt, then the fresh row.
                count: 2,
            },
        ),
        case(
            "LOGS-002",
            "an unknown card is logged as not identified (event 3)",
            "docs/device-api.md §3.9",
            Protocol,
            &[Card],
            true,
            false,
            |c| Box::pin(unknown(c)),
            Fault {
                command: "load_objects",
                status: 200,
                body: json!({"access_logs": [{"id": 1_000_000_000, "event": 7}]}),
                // The newest id before the prompt, then the fresh row.
                count: 2,
            },
        ),
        case(
            "LOGS-003",
            "a user past their end_time is denied (event 6)",
            "docs/device-api.md §3.9",
            Protocol,
            &[Card],
            true,
            false,
            |c| Box::pin(expired(c)),
            Fault {
                command: "load_objects",
                status: 200,
                body: json!({"access_logs": [{"id": 1_000_000_000, "event": 7}]}),
                // The newest id before the prompt, then the fresh row.
                count: 2,
            },
        ),
    ]
}

/// Gives reserved user `n` card `CARD + n` and the case's own always-allowed rule.
async fn entitled(ctx: &Ctx, n: i64) -> Result<(), Problem> {
    users(ctx, &[n]).await?;
    let rule = rid(500);
    give_card(ctx, n, CARD + n as u64).await?;
    ctx.call(
        "create_or_modify_objects",
        &json!({"object": "time_zones", "values": [{"id": rule, "name": "conformance"}]}),
    )
    .await?;
    ctx.call(
        "destroy_objects",
        &json!({"object": "time_spans", "where": {"time_spans": {"time_zone_id": rule}}}),
    )
    .await?;
    ctx.call("create_objects", &json!({"object": "time_spans", "values": [{"time_zone_id": rule, "start": 0, "end": 86399,
        "sun": 1, "mon": 1, "tue": 1, "wed": 1, "thu": 1, "fri": 1, "sat": 1, "hol1": 1, "hol2": 1, "hol3": 1}]})).await?;
    ctx.call("create_or_modify_objects", &json!({"object": "access_rules", "values": [{"id": rule, "name": "conformance", "type": 1, "priority": 0}]})).await?;
    ctx.call("create_or_modify_objects", &json!({"object": "access_rule_time_zones", "values": [{"access_rule_id": rule, "time_zone_id": rule}]})).await?;
    ctx.call("create_or_modify_objects", &json!({"object": "user_access_rules", "values": [{"user_id": rid(n), "access_rule_id": rule}]})).await?;
    Ok(())
}

/// Presents `card` and answers the first access-log row carrying it that is newer than the
/// prompt, waiting for it at most the evidence wait; none is `NotRun`.
async fn present_and_read(ctx: &Ctx, card: u64) -> Result<Json, Problem> {
    let before = super::newest_log(ctx).await?;
    match ctx
        .operator()
        .perform(&Step::Card(card), Moment::Identify)
        .await
    {
        Performed::Done => {}
        Performed::NotPerformed(why) => return Err(Problem::NotRun(why)),
    }
    super::fresh_log(ctx, card, before, ctx.evidence_wait())
        .await?
        .ok_or_else(|| {
            Problem::NotRun(Reason::NoFreshEvidence(format!(
                "the terminal logged no presentation of card {card} after log id {before} within {} s",
                ctx.evidence_wait().as_secs()
            )))
        })
}

async fn granted(ctx: Ctx) -> CaseOutcome {
    entitled(&ctx, 51).await?;
    let log = present_and_read(&ctx, CARD + 51).await?;
    check(
        "event, user_id",
        (log["event"].clone(), log["user_id"].clone()),
        (json!(7), json!(rid(51))),
    )
}

async fn unknown(ctx: Ctx) -> CaseOutcome {
    let card = CARD + 777;
    ctx.call(
        "destroy_objects",
        &json!({"object": "cards", "where": {"cards": {"value": card}}}),
    )
    .await?;
    let log = present_and_read(&ctx, card).await?;
    check("event", log["event"].clone(), json!(3))
}

async fn expired(ctx: Ctx) -> CaseOutcome {
    entitled(&ctx, 52).await?;
    ctx.call("modify_objects", &json!({"object": "users", "values": {"end_time": 1_000_000_000}, "where": {"users": {"id": rid(52)}}}))
        .await?;
    let log = present_and_read(&ctx, CARD + 52).await?;
    check("event", log["event"].clone(), json!(6))
}
