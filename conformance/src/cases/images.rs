//! Face images (docs/device-api.md §4): set, list with timestamps, get, refuse non-JPEGs,
//! duplicate detection, destroy – on reserved users, on terminals with a camera.

use serde_json::json;

use super::{rid, users};
use crate::catalogue::{Case, Fault, case, fault};
use crate::context::{CaseOutcome, Ctx, check, ensure, pct};
use crate::outcome::Capability::Face;
use crate::outcome::Layer::Protocol;

/// A 320×320 face photo.
pub(crate) const FACE_A: &[u8] = include_bytes!("../../../fixtures/images/face-a.jpg");
/// Another person's face.
pub(crate) const FACE_B: &[u8] = include_bytes!("../../../fixtures/images/face-b.jpg");
const NOT_AN_IMAGE: &[u8] = include_bytes!("../../../fixtures/images/not-an-image.bin");

/// The image cases.
pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "IMAGES-001",
            "user_set_image accepts a face JPEG",
            "docs/device-api.md §4.1",
            Protocol,
            &[Face],
            false,
            false,
            |c| Box::pin(set(c)),
            fault(
                "user_set_image",
                200,
                json!({"success": false, "errors": [{"code": 1, "message": "x"}]}),
            ),
        ),
        case(
            "IMAGES-002",
            "user_list_images lists the user with its timestamp",
            "docs/device-api.md §4.2",
            Protocol,
            &[Face],
            false,
            false,
            |c| Box::pin(list(c)),
            fault("user_list_images", 200, json!({"image_info": []})),
        ),
        case(
            "IMAGES-003",
            "user_get_image returns the JPEG",
            "docs/device-api.md §4.2",
            Protocol,
            &[Face],
            false,
            false,
            |c| Box::pin(get(c)),
            fault("user_get_image", 200, json!({})),
        ),
        case(
            "IMAGES-004",
            "a body that is not a JPEG is refused",
            "docs/device-api.md §4.1",
            Protocol,
            &[Face],
            false,
            false,
            |c| Box::pin(not_jpeg(c)),
            fault(
                "user_set_image",
                200,
                json!({"user_id": 1, "success": true}),
            ),
        ),
        case(
            "IMAGES-005",
            "the same face on a second user is reported as a duplicate",
            "docs/device-api.md §4.1",
            Protocol,
            &[Face],
            false,
            false,
            |c| Box::pin(duplicate(c)),
            Fault {
                command: "user_set_image",
                status: 200,
                body: json!({"success": true}),
                count: 2,
            },
        ),
        case(
            "IMAGES-006",
            "user_destroy_image removes the photo",
            "docs/device-api.md §4.2",
            Protocol,
            &[Face],
            false,
            false,
            |c| Box::pin(destroy(c)),
            fault("user_destroy_image", 200, json!({})),
        ),
    ]
}

async fn with_photo(
    ctx: &Ctx,
    n: i64,
    jpeg: &[u8],
) -> Result<acs_core::terminal::ImageOutcome, crate::context::Problem> {
    users(ctx, &[n]).await?;
    ctx.driver()
        .set_user_image(rid(n), jpeg, 1_700_000_000 + n, false)
        .await
        .map_err(super::driver)
}

async fn set(ctx: Ctx) -> CaseOutcome {
    let outcome = with_photo(&ctx, 30, FACE_A).await?;
    ensure(outcome.success, "success: true", || format!("{outcome:?}"))
}

async fn list(ctx: Ctx) -> CaseOutcome {
    with_photo(&ctx, 31, FACE_A).await?;
    let listed = ctx
        .driver()
        .list_user_images()
        .await
        .map_err(super::driver)?;
    check(
        "listed",
        listed.iter().find(|(u, _)| *u == rid(31)).copied(),
        Some((rid(31), 1_700_000_031)),
    )
}

async fn get(ctx: Ctx) -> CaseOutcome {
    with_photo(&ctx, 32, FACE_A).await?;
    let s = ctx.session().await?;
    let r = ctx
        .raw(
            "user_get_image",
            &format!("session={}&user_id={}", pct(&s), rid(32)),
            None,
        )
        .await?;
    ensure(
        r.status == 200
            && r.content_type.starts_with("image/jpeg")
            && r.bytes.starts_with(&[0xFF, 0xD8]),
        "200 image/jpeg with the JPEG bytes",
        || format!("{} {} ({} bytes)", r.status, r.content_type, r.bytes.len()),
    )
}

async fn not_jpeg(ctx: Ctx) -> CaseOutcome {
    users(&ctx, &[33]).await?;
    let s = ctx.session().await?;
    let r = ctx
        .raw_bytes(
            "user_set_image",
            &format!(
                "session={}&user_id={}&timestamp=1700000000&match=0",
                pct(&s),
                rid(33)
            ),
            Some(NOT_AN_IMAGE.to_vec()),
            "application/octet-stream",
        )
        .await?;
    ensure(
        r.status == 400 || r.json["success"] == json!(false),
        "refused (400, or success: false)",
        || format!("{} {}", r.status, r.json),
    )
}

async fn duplicate(ctx: Ctx) -> CaseOutcome {
    with_photo(&ctx, 34, FACE_B).await?;
    users(&ctx, &[35]).await?;
    let outcome = ctx
        .driver()
        .set_user_image(rid(35), FACE_B, 1_700_000_035, true)
        .await
        .map_err(super::driver)?;
    ensure(
        !outcome.success,
        "success: false with the matching user",
        || format!("{outcome:?}"),
    )
}

async fn destroy(ctx: Ctx) -> CaseOutcome {
    with_photo(&ctx, 36, FACE_A).await?;
    ctx.driver()
        .destroy_user_image(rid(36))
        .await
        .map_err(super::driver)?;
    let listed = ctx
        .driver()
        .list_user_images()
        .await
        .map_err(super::driver)?;
    check(
        "still listed",
        listed.iter().any(|(u, _)| *u == rid(36)),
        false,
    )
}
