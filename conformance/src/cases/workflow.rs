//! The workflow layer (docs/domain.md §8): the core end to end with the terminal under test –
//! an entitlement puts the person's credentials on the terminal, a presentation comes back
//! as an access event carrying the `acs_id`, revocation and expiry take them off again.

use serde_json::json;

use super::objects::CARD;
use crate::catalogue::{Case, Fault, case};
use crate::context::{CaseOutcome, Ctx, Problem, check, ensure};
use crate::operator::{Moment, Performed, Step};
use crate::outcome::Capability::{Card, Face};
use crate::outcome::Layer::Workflow;

fn many(command: &'static str, status: u16, body: serde_json::Value) -> Fault {
    Fault {
        command,
        status,
        body,
        count: 1_000,
    }
}

/// The workflow cases.
pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "WORKFLOW-001",
            "a member's card reaches the terminal with the acs_id as registration",
            "docs/domain.md §8.1 rule 2, 4",
            Workflow,
            &[Card],
            false,
            false,
            |c| Box::pin(member_on_terminal(c)),
            many(
                "create_or_modify_objects",
                400,
                json!({"error": "refused", "code": 1}),
            ),
        ),
        case(
            "WORKFLOW-002",
            "a card presented at the terminal becomes an access event carrying the acs_id",
            "docs/domain.md §8.2 rule 7, §9",
            Workflow,
            &[Card],
            true,
            false,
            |c| Box::pin(presentation_event(c)),
            many(
                "create_objects",
                400,
                json!({"error": "refused", "code": 1}),
            ),
        ),
        case(
            "WORKFLOW-003",
            "removing the member removes the person from the terminal",
            "docs/domain.md §8.1 rule 4, 6",
            Workflow,
            &[Card],
            false,
            false,
            |c| Box::pin(member_removed(c)),
            many("destroy_objects", 200, json!({"changes": 0})),
        ),
        case(
            "WORKFLOW-004",
            "an expired temporary access leaves the terminal",
            "docs/domain.md §8.1 rule 5",
            Workflow,
            &[Card],
            false,
            false,
            |c| Box::pin(temporary_expiry(c)),
            many("destroy_objects", 200, json!({"changes": 0})),
        ),
        case(
            "WORKFLOW-005",
            "an attendee is on the terminal only during the event",
            "docs/domain.md §8.1 rule 3",
            Workflow,
            &[Card],
            false,
            false,
            |c| Box::pin(attendee_window(c)),
            many(
                "create_or_modify_objects",
                400,
                json!({"error": "refused", "code": 1}),
            ),
        ),
        case(
            "WORKFLOW-006",
            "an enrolled selfie reaches the terminal once the person is entitled",
            "docs/domain.md §8.1 rule 1",
            Workflow,
            &[Face],
            false,
            false,
            |c| Box::pin(selfie_distributed(c)),
            many(
                "user_set_image",
                200,
                json!({"success": false, "errors": [{"message": "no face"}]}),
            ),
        ),
        case(
            "WORKFLOW-007",
            "a card enrolled on the terminal becomes the person's credential",
            "docs/domain.md §7.2; docs/device-api.md §5",
            Workflow,
            &[Card],
            true,
            false,
            |c| Box::pin(enrolled_on_terminal(c)),
            many(
                "remote_enroll",
                200,
                json!({"success": false, "error": "TIMEOUT"}),
            ),
        ),
    ]
}

fn err(e: String) -> Problem {
    Problem::Fail {
        expected: "the core's request succeeds".into(),
        actual: e,
    }
}

/// A person with a card (`fc 123`, number `45678 + n`), returning (person id, card value).
async fn person_with_card(ctx: &Ctx, acs_id: &str, n: u32) -> Result<(u64, u64), Problem> {
    let rig = ctx.core_rig().await?;
    let person = rig
        .create("/v1/people", json!({"acs_id": acs_id, "name": acs_id}))
        .await
        .map_err(err)?;
    rig.create(
        &format!("/v1/people/{person}/credentials"),
        json!({"kind": "card", "facility_code": 123, "card_number": 45678 + n}),
    )
    .await
    .map_err(err)?;
    Ok((person, CARD + u64::from(n)))
}

/// The registration of the device user with id `person`, if the terminal holds it.
async fn on_terminal(ctx: &Ctx, person: u64) -> Result<Option<String>, Problem> {
    let rows = super::load(ctx, "users", json!({"users": {"id": person}})).await?;
    Ok(rows
        .first()
        .and_then(|r| r["registration"].as_str().map(str::to_owned)))
}

async fn member_on_terminal(ctx: Ctx) -> CaseOutcome {
    let rig = ctx.core_rig().await?;
    let (person, card) = person_with_card(&ctx, "CF-W1", 101).await?;
    rig.create("/v1/members", json!({"person_id": person}))
        .await
        .map_err(err)?;
    rig.converged().await.map_err(err)?;
    check(
        "registration",
        on_terminal(&ctx, person).await?,
        Some("CF-W1".to_owned()),
    )?;
    let cards = super::load(&ctx, "cards", json!({"cards": {"user_id": person}})).await?;
    check(
        "card",
        cards.iter().map(|c| c["value"].clone()).collect::<Vec<_>>(),
        vec![json!(card)],
    )
}

async fn presentation_event(ctx: Ctx) -> CaseOutcome {
    let rig = ctx.core_rig().await?;
    let (person, card) = person_with_card(&ctx, "CF-W2", 102).await?;
    rig.create("/v1/members", json!({"person_id": person}))
        .await
        .map_err(err)?;
    rig.converged().await.map_err(err)?;
    let mut events = rig.core().subscribe();
    // Only an event of a log row newer than the prompt is this presentation's: the core
    // may import rows of earlier runs for the same card.
    let before = super::newest_log(&ctx).await?;
    match ctx
        .operator()
        .perform(&Step::Card(card), Moment::Identify)
        .await
    {
        Performed::Done => {}
        Performed::NotPerformed(why) => return Err(Problem::NotRun(why)),
    }
    let wait = ctx.evidence_wait();
    let event = tokio::time::timeout(wait, async {
        loop {
            match events.recv().await {
                Ok(e)
                    if e.event.data["source"] == "terminal"
                        && e.event.data["device_log_id"]
                            .as_i64()
                            .is_some_and(|id| id > before) =>
                {
                    return Some(e.event.data);
                }
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    })
    .await
    .ok()
    .flatten();
    let Some(event) = event else {
        // Whether anybody presented the card at all is the terminal's to say.
        return match super::fresh_log(&ctx, card, before, std::time::Duration::ZERO).await? {
            Some(row) => Err(Problem::Fail {
                expected: format!(
                    "an access event from the terminal within {} s",
                    wait.as_secs()
                ),
                actual: format!("none arrived, though the terminal logged the presentation: {row}"),
            }),
            None => Err(Problem::NotRun(crate::outcome::Reason::NoFreshEvidence(
                format!("the terminal logged no presentation of card {card} after log id {before}"),
            ))),
        };
    };
    ctx.note("access event".into(), event.to_string());
    check(
        "result, acs_id",
        (event["result"].clone(), event["acs_id"].clone()),
        (json!("granted"), json!("CF-W2")),
    )
}

async fn member_removed(ctx: Ctx) -> CaseOutcome {
    let rig = ctx.core_rig().await?;
    let (person, _) = person_with_card(&ctx, "CF-W3", 103).await?;
    let member = rig
        .create("/v1/members", json!({"person_id": person}))
        .await
        .map_err(err)?;
    rig.converged().await.map_err(err)?;
    ensure(
        on_terminal(&ctx, person).await?.is_some(),
        "the member on the terminal",
        || "absent".into(),
    )?;
    rig.delete(&format!("/v1/members/{member}"))
        .await
        .map_err(err)?;
    rig.converged().await.map_err(err)?;
    check(
        "on the terminal after removal",
        on_terminal(&ctx, person).await?,
        None,
    )
}

async fn temporary_expiry(ctx: Ctx) -> CaseOutcome {
    let rig = ctx.core_rig().await?;
    let (person, _) = person_with_card(&ctx, "CF-W4", 104).await?;
    rig.set_now(crate::core_rig::START).map_err(err)?;
    rig.create(
        "/v1/accesses",
        json!({"name": "visitor", "kind": "temporary", "valid_to": "2026-05-04T12:00:00Z",
        "doors": [{"door_id": rig.door, "in_auth_types": ["card"]}], "person_ids": [person]}),
    )
    .await
    .map_err(err)?;
    rig.converged().await.map_err(err)?;
    ensure(
        on_terminal(&ctx, person).await?.is_some(),
        "the visitor on the terminal",
        || "absent".into(),
    )?;
    // The terminal is read at the boundary, before the clock goes back: moving it back
    // first would let the engine put the visitor on the terminal again while the check
    // reads (a race a terminal in real time lost two runs in five).
    rig.set_now("2026-05-04T12:00:00Z").map_err(err)?;
    let converged = rig.converged().await.map_err(err);
    let after = match converged {
        Ok(_) => on_terminal(&ctx, person).await,
        Err(e) => Err(e),
    };
    rig.set_now(crate::core_rig::START).map_err(err)?;
    rig.converged().await.map_err(err)?;
    check("on the terminal after valid_to", after?, None)
}

async fn attendee_window(ctx: Ctx) -> CaseOutcome {
    let rig = ctx.core_rig().await?;
    let (person, _) = person_with_card(&ctx, "CF-W5", 105).await?;
    rig.set_now(crate::core_rig::START).map_err(err)?;
    let event = rig
        .create("/v1/events", json!({"facility_id": rig.facility, "starts_at": "2026-05-04T18:00:00Z", "ends_at": "2026-05-04T20:00:00Z"}))
        .await
        .map_err(err)?;
    rig.post(
        &format!("/v1/events/{event}/attendees"),
        json!({"person_id": person}),
    )
    .await
    .map_err(err)?;
    rig.converged().await.map_err(err)?;
    let before = on_terminal(&ctx, person).await?;
    rig.set_now("2026-05-04T18:00:00Z").map_err(err)?;
    rig.converged().await.map_err(err)?;
    let during = on_terminal(&ctx, person).await?;
    rig.set_now("2026-05-04T20:00:00Z").map_err(err)?;
    let result = rig.converged().await.map_err(err);
    let after = on_terminal(&ctx, person).await;
    rig.set_now(crate::core_rig::START).map_err(err)?;
    rig.converged().await.map_err(err)?;
    result?;
    let after = after?;
    check(
        "before / during / after",
        (before.is_some(), during.is_some(), after.is_some()),
        (false, true, false),
    )
}

async fn selfie_distributed(ctx: Ctx) -> CaseOutcome {
    use base64::Engine as _;
    let rig = ctx.core_rig().await?;
    let selfie = base64::engine::general_purpose::STANDARD.encode(super::images::FACE_A);
    let person = rig
        .create("/v1/people", json!({"acs_id": "CF-W6", "selfie": selfie}))
        .await
        .map_err(err)?;
    rig.create("/v1/members", json!({"person_id": person}))
        .await
        .map_err(err)?;
    rig.converged().await.map_err(err)?;
    let listed = ctx
        .driver()
        .list_user_images()
        .await
        .map_err(super::driver)?;
    let id = i64::try_from(person).unwrap_or(i64::MAX);
    ensure(
        listed.iter().any(|(u, _)| *u == id),
        "the person's photo on the terminal",
        || format!("{listed:?}"),
    )
}

async fn enrolled_on_terminal(ctx: Ctx) -> CaseOutcome {
    let rig = ctx.core_rig().await?;
    let person = rig
        .create("/v1/people", json!({"acs_id": "CF-W7"}))
        .await
        .map_err(err)?;
    rig.create("/v1/members", json!({"person_id": person}))
        .await
        .map_err(err)?;
    rig.converged().await.map_err(err)?;
    let card = CARD + 107;
    match ctx
        .operator()
        .perform(&Step::Card(card), Moment::Enrollment)
        .await
    {
        Performed::Done => {}
        Performed::NotPerformed(why) => return Err(Problem::NotRun(why)),
    }
    let (status, reply) = rig
        .post(
            &format!("/v1/terminals/{}/enrollments", rig.terminal),
            json!({"person_id": person, "kind": "card", "sync": true}),
        )
        .await
        .map_err(err)?;
    ctx.note(
        "POST /v1/terminals/{id}/enrollments".into(),
        format!("{status} {reply}"),
    );
    check(
        "enrollment",
        (status, reply["status"].clone()),
        (201, json!("succeeded")),
    )?;
    rig.converged().await.map_err(err)?;
    let cards = super::load(&ctx, "cards", json!({"cards": {"user_id": person}})).await?;
    check(
        "card on the terminal",
        cards.iter().map(|c| c["value"].clone()).collect::<Vec<_>>(),
        vec![json!(card)],
    )
}
