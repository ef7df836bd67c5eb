//! The server `bench/online.sh` loads with wrk (BENCHMARKS.md, figure 6): a core over a SQLite
//! file with N people (default 10,000) who each hold a card and are members, one Enterprise
//! terminal registered at 127.0.0.1 with device id 7, and the device-facing receiver.
//!
//! Prints `CEILING <url>` (a bare axum handler answering a fixed small JSON, the ceiling the
//! figure is read against) and `RECEIVER <url>`, and serves until killed.
//! `cargo run --release -p acs-core --example online_server -- 10000`

use std::sync::Arc;

use acs_core::Core;
use acs_core::card::WiegandCard;
use acs_core::domain::{
    AcsId, Credential, CredentialId, CredentialValue, Membership, MembershipId, Person, PersonId,
    TenantId, TerminalId,
};
use acs_core::store::{SqliteStore, Store};
use serde_json::{Value as Json, json};

async fn post(client: &reqwest::Client, url: &str, key: &str, body: Json) -> anyhow::Result<u64> {
    let reply: Json = client
        .post(url)
        .bearer_auth(key)
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    reply["id"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("refused: {reply}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let people: u32 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let dir = std::env::temp_dir().join(format!("acs-online-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("acs.db"))?);
    let core = Core::new(store);
    let (tenant, key) = core
        .create_tenant("bench", "Bench")
        .await
        .map_err(|e| anyhow::anyhow!(e.detail))?;
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/v1", api.local_addr()?);
    tokio::spawn(acs_core::serve(api, core.clone(), std::future::pending()));
    let client = reqwest::Client::new();
    let key = key.secret;
    let site = post(
        &client,
        &format!("{base}/sites"),
        &key,
        json!({"name": "S", "timezone": "UTC"}),
    )
    .await?;
    let facility = post(
        &client,
        &format!("{base}/facilities"),
        &key,
        json!({"site_id": site, "name": "F"}),
    )
    .await?;
    let door = post(
        &client,
        &format!("{base}/doors"),
        &key,
        json!({"facility_id": facility, "name": "D", "supported_auth_types": {"in": ["card"]}}),
    )
    .await?;
    let terminal = post(&client, &format!("{base}/terminals"), &key,
        json!({"facility_id": facility, "model": "idface", "address": "http://127.0.0.1:1",
               "login": "admin", "password": "admin", "operating_mode": "enterprise", "door_ids": [door]}))
        .await?;
    // People, cards and memberships in batches of 1,000 per write (the API's own path is
    // measured elsewhere; here only the online answer is).
    let caller = core
        .authenticate(&key)
        .await
        .map_err(|e| anyhow::anyhow!(e.detail))?
        .ok_or_else(|| anyhow::anyhow!("key"))?;
    let tenant_id = TenantId::new(tenant.id);
    let now = core.now();
    for start in (0..people).step_by(1_000) {
        let end = (start + 1_000).min(people);
        core.write(&caller, 3 * (end - start) as usize, move |_, plan| {
            for i in start..end {
                let person = Person::new(
                    PersonId::new(plan.next_id()?),
                    tenant_id,
                    AcsId::parse(&format!("E-{i}"))?,
                    "",
                );
                let card = Credential::issue(
                    CredentialId::new(plan.next_id()?),
                    tenant_id,
                    person.id,
                    CredentialValue::Card(WiegandCard::new(1, i)),
                    now,
                );
                let member = Membership::new(
                    MembershipId::new(plan.next_id()?),
                    tenant_id,
                    person.id,
                    now,
                );
                plan.put(person, None);
                plan.put(card, None);
                plan.put(member, None);
            }
            Ok(())
        })
        .await
        .map_err(|e| anyhow::anyhow!(e.detail))?;
    }
    core.register_device(7, tenant_id, TerminalId::new(terminal));
    // The ceiling the figure is read against: a bare axum handler answering a fixed small
    // JSON, in the same process, loaded by the same generator in the same run.
    let ceiling = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("CEILING http://{}", ceiling.local_addr()?);
    let bare = axum::Router::new().fallback(|| async { axum::Json(json!({"result": {}})) });
    tokio::spawn(async move { axum::serve(ceiling, bare).await });
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("RECEIVER http://{}", receiver.local_addr()?);
    acs_core::receiver::serve(receiver, core, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
