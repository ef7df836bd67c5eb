//! The integrator API under `/v1` (axum): tenant API keys in `Authorization: Bearer`,
//! JSON in and out, problem+json errors naming the field at fault, cursor pagination on
//! every list (`?limit=&after=`), `Idempotency-Key` on creates, and server-sent events for
//! the access-event stream.
//!
//! Handlers only translate between HTTP and the domain; every change goes through
//! [`Core::write`]. Resources live in one module per area: [`topology`], [`people`],
//! [`entitlements`], [`access_events`], [`keys`], [`invitations`], [`outbox`] and
//! [`webhooks`].
//!
//! `/public` holds what people (not integrators) reach through the links they are sent:
//! the selfie upload of an invitation ([`invitations`]) and cloud keys ([`cloud_keys`]).
//! They need only the link's token and are rate-limited ([`rate_limit`]).

mod access_events;
mod accesses;
pub mod auth;
mod calendars;
mod cloud_keys;
mod credential_requests;
mod credentials;
mod enrollments;
mod events;
mod groups;
mod input;
mod invitations;
mod keys;
mod members;
mod outbox;
mod paging;
mod people;
mod phones;
pub mod problem;
pub mod rate_limit;
mod schedules;
mod terminals;
mod topology;
mod webhooks;

pub(crate) use paging::{
    MAX_PAGE, PageQuery, PageResult, list_page, list_query, page_query, snapshot_page,
};

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value as Json;

use crate::app::{Caller, Core, Idempotency, Plan};
use crate::domain::Snapshot;
use crate::error::AppError;

/// Largest request body accepted (a selfie in base64 fits comfortably).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// What the API's handlers share: the core, and the HTTP layer's own rate limiter of the
/// public endpoints. Handlers take the part they need (`State<Core>`,
/// `State<Arc<RateLimiter>>`).
#[derive(Debug, Clone)]
pub struct ApiState {
    core: Core,
    limits: std::sync::Arc<rate_limit::RateLimiter>,
}

impl axum::extract::FromRef<ApiState> for Core {
    fn from_ref(state: &ApiState) -> Core {
        state.core.clone()
    }
}

impl axum::extract::FromRef<ApiState> for std::sync::Arc<rate_limit::RateLimiter> {
    fn from_ref(state: &ApiState) -> Self {
        state.limits.clone()
    }
}

/// Serves the integrator API for `core` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    core: Core,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(core).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// The integrator API's router.
pub fn router(core: Core) -> Router {
    let v1 = Router::new()
        .route(
            "/sites",
            post(topology::create_site).get(topology::list_sites),
        )
        .route(
            "/sites/{id}",
            get(topology::get_site).delete(topology::delete_site),
        )
        .route(
            "/facilities",
            post(topology::create_facility).get(topology::list_facilities),
        )
        .route(
            "/facilities/{id}",
            get(topology::get_facility).delete(topology::delete_facility),
        )
        .route(
            "/doors",
            post(topology::create_door).get(topology::list_doors),
        )
        .route(
            "/doors/{id}",
            get(topology::get_door)
                .put(topology::replace_door)
                .patch(topology::patch_door)
                .delete(topology::delete_door),
        )
        .route(
            "/terminals",
            post(terminals::create_terminal).get(terminals::list_terminals),
        )
        .route(
            "/terminals/{id}",
            get(terminals::get_terminal)
                .put(terminals::replace_terminal)
                .patch(terminals::patch_terminal)
                .delete(terminals::delete_terminal),
        )
        .route(
            "/terminals/{id}/desired-state",
            get(access_events::desired_state),
        )
        .route("/terminals/{id}/sync", get(access_events::sync_status))
        .route("/terminals/{id}/enrollments", post(enrollments::start))
        .route(
            "/terminals/{id}/enrollments/{enrollment_id}",
            get(enrollments::get).delete(enrollments::cancel),
        )
        .route(
            "/schedules",
            post(schedules::create_schedule).get(schedules::list_schedules),
        )
        .route(
            "/schedules/{id}",
            get(schedules::get_schedule).delete(schedules::delete_schedule),
        )
        .route(
            "/holiday-calendars",
            post(calendars::create_calendar).get(calendars::list_calendars),
        )
        .route(
            "/holiday-calendars/{id}",
            get(calendars::get_calendar).delete(calendars::delete_calendar),
        )
        .route("/people", post(people::enroll).get(people::list_people))
        .route(
            "/people/{id}",
            get(people::get_person)
                .delete(people::delete_person)
                .patch(people::patch_person)
                .put(people::put_person),
        )
        .route(
            "/people/by-acs-id/{acs_id}",
            get(people::get_person_by_acs_id),
        )
        .route("/people/{id}/suspend", post(people::suspend_person))
        .route("/people/{id}/unsuspend", post(people::unsuspend_person))
        .route("/people/{id}/selfie", get(people::selfie))
        .route(
            "/people/{id}/credentials",
            post(credentials::issue_credential).get(credentials::list_credentials),
        )
        .route(
            "/people/{id}/phones",
            post(phones::add_phone).get(phones::list_phones),
        )
        .route(
            "/people/{id}/contact",
            axum::routing::put(people::set_contact),
        )
        .route(
            "/people/{id}/selfie-invitations",
            post(invitations::create_invitation).get(invitations::list_invitations),
        )
        .route("/selfie-invitations/{id}", get(invitations::get_invitation))
        .route(
            "/phones/{id}",
            get(phones::get_phone).patch(phones::patch_phone),
        )
        .route("/phones/{id}/deactivate", post(phones::deactivate_phone))
        .route(
            "/credentials/{id}",
            get(credentials::get_credential).delete(credentials::delete_credential),
        )
        .route(
            "/credentials/{id}/suspend",
            post(credentials::suspend_credential),
        )
        .route(
            "/credentials/{id}/unsuspend",
            post(credentials::unsuspend_credential),
        )
        .route(
            "/credentials/{id}/revoke",
            post(credentials::revoke_credential),
        )
        .route(
            "/credentials/{id}/clear-lockout",
            post(credentials::clear_credential_lockout),
        )
        .route("/outbox", get(outbox::list))
        .route("/outbox/{id}", get(outbox::get))
        .route(
            "/groups",
            post(groups::create_group).get(groups::list_groups),
        )
        .route(
            "/groups/{id}",
            get(groups::get_group).delete(groups::delete_group),
        )
        .route("/groups/{id}/members", post(groups::add_group_member))
        .route(
            "/groups/{id}/members/{person_id}",
            axum::routing::delete(groups::remove_group_member),
        )
        .route(
            "/events",
            post(events::create_event).get(events::list_events),
        )
        .route(
            "/events/{id}",
            get(events::get_event).delete(events::delete_event),
        )
        .route(
            "/events/{id}/attendees",
            post(events::add_attendee).get(events::list_attendees),
        )
        .route(
            "/events/{id}/attendees/{person_id}",
            axum::routing::delete(events::remove_attendee),
        )
        .route(
            "/members",
            post(members::create_member).get(members::list_members),
        )
        .route(
            "/members/{id}",
            get(members::get_member).delete(members::remove_member),
        )
        .route(
            "/accesses",
            post(accesses::create_access).get(accesses::list_accesses),
        )
        .route(
            "/accesses/{id}",
            get(accesses::get_access)
                .put(accesses::update_access)
                .delete(accesses::delete_access),
        )
        .route("/decisions", post(access_events::decide))
        .route("/access-events", get(access_events::list))
        .route("/access-events/stream", get(access_events::stream))
        .route("/api-keys", post(keys::issue).get(keys::list))
        .route("/api-keys/{id}", axum::routing::delete(keys::revoke))
        .route("/webhooks", post(webhooks::create).get(webhooks::list))
        .route(
            "/webhooks/{id}",
            get(webhooks::get)
                .patch(webhooks::patch)
                .delete(webhooks::delete),
        )
        .route(
            "/webhooks/{id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route("/webhooks/{id}/deliveries", get(webhooks::deliveries));
    let public = Router::new()
        .route(
            "/selfie-invitations/{token}",
            get(invitations::public_page).post(invitations::public_submit),
        )
        .route("/cloud-keys/{token}", get(cloud_keys::page))
        .route("/cloud-keys/{token}/doors", post(cloud_keys::doors))
        .route("/cloud-keys/{token}/open", post(cloud_keys::open));
    Router::new()
        .nest("/v1", v1)
        .nest("/public", public)
        .route("/openapi.json", get(openapi))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(ApiState {
            core,
            limits: std::sync::Arc::default(),
        })
}

/// The OpenAPI document of this API (kept in the repository, checked by a test).
pub const OPENAPI: &str = include_str!("../../openapi.json");

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI.to_owned(),
    )
        .into_response()
}

async fn no_route(uri: Uri) -> AppError {
    AppError::no_route(uri.path())
}

async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> AppError {
    AppError::method_not_allowed(method.as_str(), uri.path())
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let core = &state.core;
        let key = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(auth::bearer)
            .ok_or_else(AppError::unauthorized)?;
        core.authenticate(key)
            .await?
            .ok_or_else(AppError::unauthorized)
    }
}

/// The `GET` list and `GET {id}` handlers of a resource the snapshot keeps in a map by
/// id, e.g. `reads!(list_sites, get_site, "site", SiteId, |s| s.topology.sites, site_view);`.
macro_rules! reads {
    ($list:ident, $get:ident, $what:literal, $id:ident, |$s:ident| $map:expr, $view:path) => {
        #[doc = concat!("`GET` a page of the list (", $what, ").")]
        pub(crate) async fn $list(
            axum::extract::State(core): axum::extract::State<crate::app::Core>,
            caller: crate::app::Caller,
            query: super::PageResult,
        ) -> Result<axum::response::Response, crate::error::AppError> {
            super::list_page(&core, &caller, query, |$s| {
                Box::new($map.values().map(|x| (x.id.get(), $view(x))))
            })
            .await
        }

        #[doc = concat!("`GET` one ", $what, " by id.")]
        pub(crate) async fn $get(
            axum::extract::State(core): axum::extract::State<crate::app::Core>,
            caller: crate::app::Caller,
            axum::extract::Path(id): axum::extract::Path<String>,
        ) -> Result<axum::response::Response, crate::error::AppError> {
            super::get_one(&core, &caller, $what, &id, |$s, id| {
                $map.get(&$id::new(id)).map($view)
            })
            .await
        }
    };
}
pub(crate) use reads;

/// The `DELETE {id}` handler of a resource removed only when nothing uses it:
/// `deletes! { delete_site, Site, |s, id| exists, |s, id| what uses it }`.
macro_rules! deletes {
    ($name:ident, $ty:ty, $exists:expr, $used_by:expr $(,)?) => {
        #[doc = concat!("`DELETE` one ", stringify!($ty), " by id, unless something uses it.")]
        pub(crate) async fn $name(
            axum::extract::State(core): axum::extract::State<crate::app::Core>,
            caller: crate::app::Caller,
            axum::extract::Path(id): axum::extract::Path<String>,
        ) -> Result<axum::response::Response, crate::error::AppError> {
            super::delete_unused::<$ty>(&core, &caller, &id, $exists, $used_by).await
        }
    };
}
pub(crate) use deletes;

/// Runs a create: answers a repeated `Idempotency-Key` from the store, otherwise writes
/// (remembering the reply in the same transaction) and answers 201 with the view.
pub(crate) async fn create(
    core: &Core,
    caller: &Caller,
    idempotency: Option<Idempotency>,
    ids: usize,
    f: impl FnOnce(&Snapshot, &mut Plan) -> Result<Json, AppError> + Clone + Send + 'static,
) -> Result<Response, AppError> {
    create_about(core, caller, Vec::new(), idempotency, ids, f).await
}

/// [`create`] with the people `subjects` belong to in the snapshot `f` sees.
pub(crate) async fn create_about(
    core: &Core,
    caller: &Caller,
    subjects: Vec<crate::app::Subject>,
    idempotency: Option<Idempotency>,
    ids: usize,
    f: impl FnOnce(&Snapshot, &mut Plan) -> Result<Json, AppError> + Clone + Send + 'static,
) -> Result<Response, AppError> {
    if let Some(key) = &idempotency
        && let Some(reply) = stored_reply(core, caller, key).await?
    {
        return Ok(reply);
    }
    let remembered = idempotency.clone();
    let written = core
        .write_about(caller, subjects, ids, move |snapshot, plan| {
            let view = f(snapshot, plan)?;
            if let Some(key) = &remembered {
                plan.remember(key, StatusCode::CREATED.as_u16(), &view);
            }
            Ok(view)
        })
        .await;
    match (written, &idempotency) {
        (Ok(view), _) => Ok((StatusCode::CREATED, axum::Json(view)).into_response()),
        // An identical request with the same key got its turn first (writers of a tenant
        // take turns, so it has committed by now): every such retry gets the first answer.
        (Err(e), Some(key)) if e.kind == crate::error::ErrorKind::IdempotencyReused => {
            stored_reply(core, caller, key).await?.ok_or(e)
        }
        (Err(e), _) => Err(e),
    }
}

/// The stored reply of an earlier request with `key`, if there is one; a different request
/// under the same key is refused.
pub(crate) async fn stored_reply(
    core: &Core,
    caller: &Caller,
    key: &Idempotency,
) -> Result<Option<Response>, AppError> {
    let Some(reply) = core.idempotent_reply(caller.tenant, &key.key).await? else {
        return Ok(None);
    };
    if reply.fingerprint != key.fingerprint {
        return Err(AppError::idempotency_mismatch(&key.key));
    }
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::CREATED);
    Ok(Some(
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            reply.body,
        )
            .into_response(),
    ))
}

/// `GET …/{id}`: the view of the object with the path's id, or 404.
pub(crate) async fn get_one(
    core: &Core,
    caller: &Caller,
    what: &str,
    raw: &str,
    view: impl FnOnce(&Snapshot, u64) -> Option<Json>,
) -> Result<Response, AppError> {
    let id = input::path_id(what, raw)?;
    core.read(caller.tenant, |s| view(s, id))
        .await?
        .map(ok)
        .ok_or_else(|| AppError::not_found(what, id))
}

/// `DELETE …/{id}` of a `T` that nothing may still use: 404 when it does not exist, 409
/// naming what uses it, 204 once deleted (with an audit entry).
pub(crate) async fn delete_unused<T>(
    core: &Core,
    caller: &Caller,
    raw: &str,
    exists: fn(&Snapshot, u64) -> bool,
    used_by: fn(&Snapshot, u64) -> Option<String>,
) -> Result<Response, AppError>
where
    T: crate::records::Stored + crate::app::InSnapshot,
{
    let what = T::KIND.as_str().replace('_', " ");
    let id = input::path_id(&what, raw)?;
    core.write(caller, 0, move |s, plan| {
        if !exists(s, id) {
            return Err(AppError::not_found(&what, id));
        }
        if let Some(by) = used_by(s, id) {
            return Err(AppError::conflict(
                None,
                format!("{what} {id} is still used by {by}"),
            ));
        }
        plan.audit(&format!("{}.deleted", T::KIND.as_str()), T::KIND, Some(id));
        plan.delete::<T>(id);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// 200 with a JSON body.
pub(crate) fn ok(view: Json) -> Response {
    axum::Json(view).into_response()
}
