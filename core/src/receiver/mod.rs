//! The device-facing receiver, on a listener of its own: what terminals send to the core.
//!
//! - Monitor notifications (`POST <path>/<topic>`, JSON): `dao` access-log inserts become
//!   access events carrying the `acs_id`, de-duplicated by the device's log id (the
//!   terminal retries and may send the same row twice); `door`, `secbox`, `operation_mode`,
//!   `device_is_alive` and the other topics are acknowledged.
//! - Online mode (`POST /<command>.fcgi`, form-encoded): `new_card`, `new_qrcode`,
//!   `new_user_identified` (Pro), `new_user_id_and_password` are answered with the decision
//!   function – `{"result": {"event": 7, …, "actions": [door or sec_box]}}` on a grant,
//!   event 6 (or 3 when nobody was identified) with the reason as message otherwise – and
//!   recorded as access events; `device_is_alive` is acknowledged.
//!
//! Only registered terminals are heard: the `device_id` must belong to a terminal the sync
//! engine has met, and when the terminal's configured address is an IP literal the request
//! must come from it. Anything else is refused (403) and logged; malformed payloads get
//! 400; nothing panics.
//!
//! - [`server`] – the listener: the only part that knows HTTP; it reads the request and
//!   writes the [`Answer`] the other parts give.
//! - [`sender`] – which registered terminal a request comes from; [`monitor`] – monitor
//!   notifications; [`online`] – online-mode requests and their decisions;
//!   [`enrollment`] – asynchronous enrollment results. Access-log rows become access
//!   events in `crate::device_events`, shared with the sync engine.

mod enrollment;
mod monitor;
mod online;
mod sender;
mod server;

use serde_json::Value as Json;

pub use self::server::{MAX_BODY_BYTES, router, serve};

/// What the receiver answers a terminal, before it becomes an HTTP response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// 200 with a JSON body.
    Json(Json),
    /// 200 with a stored JSON text (a retried request's first answer).
    RawJson(String),
    /// 200 with no body.
    Empty,
    /// Refused with a status and `{"error": why}`.
    Refused {
        /// HTTP status.
        status: u16,
        /// Why.
        why: String,
    },
}

impl Answer {
    /// Refused with `status` and `why`.
    pub(crate) fn refused(status: u16, why: &str) -> Answer {
        Answer::Refused {
            status,
            why: why.to_owned(),
        }
    }
}
