//! `acs-core`: the access-control core – who may pass which door when, and keeping every
//! terminal's users and credentials in line with that.
//!
//! The core is hexagonal: a pure domain in the middle (tenants, sites, doors, terminals,
//! people with their `acs_id`, credentials, events, memberships, accesses, schedules, the
//! decision function and the desired state of each terminal) and I/O at the edges – the
//! store, the terminal driver, the sync engine that keeps terminals in line with the
//! desired state, enrollment, and the integrator API with the device-facing receiver.
//! It depends on no other workspace crate; the simulator is only ever a dev-dependency.
//!
//! What exists today:
//! - [`card`] – a Wiegand card (facility code + number) and its encoding in the terminal's
//!   64-bit `cards.value`;
//! - [`domain`] – the pure domain: topology, people, credentials, entitlements, schedules,
//!   the decision function and the desired state of each terminal.
//!
//! The store, driver, sync engine, enrollment and integrator API follow in later work (see
//! `ARCHITECTURE.md` for the roadmap of modules).

pub mod app;
pub mod card;
pub mod domain;
pub mod enroll;
pub mod http;
pub mod notify;
pub mod receiver;
pub mod records;
pub mod residency;
pub mod retry;
pub mod store;
pub mod sync;
pub mod terminal;

pub use app::{Caller, Clock, Core};

/// Serves the integrator API for `core` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    core: Core,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        http::router(core).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
