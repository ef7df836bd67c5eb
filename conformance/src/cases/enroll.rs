//! Remote enrollment (docs/device-api.md §5): synchronous card and face captures through the
//! core's driver (the operator presents the credential), saving on the terminal, cancel.

use base64::Engine as _;
use serde_json::json;

use super::objects::CARD;
use super::{load, rid, users};
use crate::catalogue::{Case, Fault, case, fault};
use crate::context::{CaseOutcome, Ctx, Problem, check, ensure};
use crate::operator::{Moment, Performed, Step};
use crate::outcome::Capability::{Card, Face};
use crate::outcome::Layer::Protocol;
use acs_core::terminal::{EnrollKind, RemoteEnroll};

/// The enrollment cases.
pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "ENROLL-001",
            "a synchronous card enrollment answers the card value",
            "docs/device-api.md §5.1",
            Protocol,
            &[Card],
            true,
            false,
            |c| Box::pin(card_sync(c)),
            fault(
                "remote_enroll",
                200,
                json!({"success": false, "error": "TIMEOUT"}),
            ),
        ),
        case(
            "ENROLL-002",
            "with save the captured card is stored on the terminal",
            "docs/device-api.md §5.1",
            Protocol,
            &[Card],
            true,
            false,
            |c| Box::pin(card_save(c)),
            fault(
                "remote_enroll",
                200,
                json!({"success": true, "card_value": CARD + 41}),
            ),
        ),
        case(
            "ENROLL-003",
            "a synchronous face enrollment answers the photo",
            "docs/device-api.md §5.1",
            Protocol,
            &[Face],
            true,
            false,
            |c| Box::pin(face_sync(c)),
            fault("remote_enroll", 200, json!({"success": true})),
        ),
        case(
            "ENROLL-004",
            "cancel_remote_enroll ends a running enrollment",
            "docs/device-api.md §5.2",
            Protocol,
            &[],
            false,
            false,
            |c| Box::pin(cancel(c)),
            Fault {
                command: "cancel_remote_enroll",
                status: 404,
                body: json!({"error": "Unknown command", "code": 1}),
                count: 1,
            },
        ),
    ]
}

async fn present(ctx: &Ctx, step: Step) -> Result<(), Problem> {
    match ctx.operator().perform(&step, Moment::Enrollment).await {
        Performed::Done => Ok(()),
        Performed::NotPerformed(why) => Err(Problem::NotRun(why)),
    }
}

fn request(kind: EnrollKind, n: i64, save: bool) -> RemoteEnroll {
    RemoteEnroll {
        kind,
        user_id: rid(n),
        save,
        sync: true,
        auto: true,
        countdown: Some(3),
        message: Some("Conformance test".into()),
        ..RemoteEnroll::default()
    }
}

async fn card_sync(ctx: Ctx) -> CaseOutcome {
    users(&ctx, &[40]).await?;
    present(&ctx, Step::Card(CARD + 40)).await?;
    let reply = ctx
        .driver()
        .remote_enroll(request(EnrollKind::Card, 40, false))
        .await
        .map_err(super::driver)?;
    ctx.note("remote_enroll card sync".into(), reply.to_string());
    check("card_value", reply["card_value"].clone(), json!(CARD + 40))
}

async fn card_save(ctx: Ctx) -> CaseOutcome {
    users(&ctx, &[41]).await?;
    ctx.call(
        "destroy_objects",
        &json!({"object": "cards", "where": {"cards": {"value": CARD + 41}}}),
    )
    .await?;
    present(&ctx, Step::Card(CARD + 41)).await?;
    let reply = ctx
        .driver()
        .remote_enroll(request(EnrollKind::Card, 41, true))
        .await
        .map_err(super::driver)?;
    ctx.note("remote_enroll card sync save".into(), reply.to_string());
    let cards = load(&ctx, "cards", json!({"cards": {"user_id": rid(41)}})).await?;
    check(
        "stored cards",
        cards.iter().map(|c| c["value"].clone()).collect::<Vec<_>>(),
        vec![json!(CARD + 41)],
    )
}

async fn face_sync(ctx: Ctx) -> CaseOutcome {
    users(&ctx, &[42]).await?;
    // The test face must not already belong to a reserved user (duplicate detection).
    let listed = ctx
        .driver()
        .list_user_images()
        .await
        .map_err(super::driver)?;
    for (user, _) in listed
        .into_iter()
        .filter(|(u, _)| (crate::context::RESERVED_FROM..crate::context::RESERVED_TO).contains(u))
    {
        ctx.driver()
            .destroy_user_image(user)
            .await
            .map_err(super::driver)?;
    }
    present(&ctx, Step::Face(super::images::FACE_A.to_vec())).await?;
    let reply = ctx
        .driver()
        .remote_enroll(request(EnrollKind::Face, 42, false))
        .await
        .map_err(super::driver)?;
    ctx.note(
        "remote_enroll face sync".into(),
        reply.to_string().chars().take(200).collect(),
    );
    let jpeg = reply["user_image"]
        .as_str()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_default();
    ensure(
        reply["success"] == json!(true) && jpeg.starts_with(&[0xFF, 0xD8]),
        "success with a base64 JPEG in user_image",
        || {
            format!(
                "success {} and {} image bytes",
                reply["success"],
                jpeg.len()
            )
        },
    )
}

async fn cancel(ctx: Ctx) -> CaseOutcome {
    users(&ctx, &[43]).await?;
    // Nobody presents anything: the enrollment waits until it is cancelled.
    let mut asynchronous = request(EnrollKind::Card, 43, false);
    asynchronous.sync = false;
    ctx.driver()
        .remote_enroll(asynchronous)
        .await
        .map_err(super::driver)?;
    let r = ctx.call("cancel_remote_enroll", &json!({})).await?;
    check("cancel status", r.status, 200)
}
