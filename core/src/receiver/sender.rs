//! Which registered terminal a request comes from: its `device_id` must belong to a
//! terminal the sync engine has met (here or, as stored, on another instance), and when the terminal's configured address is an IP
//! literal the request must come from it.

use std::net::{IpAddr, SocketAddr};

use super::Answer;
use crate::app::Core;
use crate::domain::{TenantId, TerminalId};

/// A terminal the request was matched to.
pub(super) struct Sender {
    pub(super) tenant: TenantId,
    pub(super) terminal: TerminalId,
}

pub(super) async fn sender(
    core: &Core,
    device_id: Option<i64>,
    peer: SocketAddr,
) -> Result<Sender, Answer> {
    let Some(device_id) = device_id else {
        tracing::warn!(%peer, "terminal request without device_id refused");
        return Err(Answer::refused(400, "device_id is required"));
    };
    let Some((tenant, terminal)) = core.device_owner_stored(device_id).await else {
        tracing::warn!(%peer, device_id, "request from an unregistered terminal refused");
        return Err(Answer::refused(403, "unknown terminal"));
    };
    let address = core
        .read(tenant, |s| {
            s.topology
                .terminals
                .get(&terminal)
                .map(|t| t.address.clone())
        })
        .await
        .ok()
        .flatten();
    let Some(address) = address else {
        return Err(Answer::refused(403, "unknown terminal"));
    };
    if let Some(ip) = address_ip(&address)
        && ip != peer.ip()
    {
        tracing::warn!(%peer, device_id, "terminal request from an address other than its own refused");
        return Err(Answer::refused(403, "unexpected source address"));
    }
    Ok(Sender { tenant, terminal })
}

/// The IP literal of a terminal address (`http://10.0.0.5:80`), if it is one.
fn address_ip(address: &str) -> Option<IpAddr> {
    let rest = address
        .trim()
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let host = rest.split('/').next().unwrap_or_default();
    if let Ok(addr) = host.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    host.parse().ok()
}
