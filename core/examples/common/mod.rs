//! What the core's benchmark examples share: a core serving its API on loopback with a
//! tenant, one site, facility and card door ([`venue`]), `POST`s to that API ([`post`]),
//! and the tenant filled with members who each hold a card, written straight through the
//! application in batches of 1,000 ([`seed_members`], or [`seed_members_of`] with their
//! memberships limited to facilities).

// Each example compiles its own copy of this module and uses a part of it.
#![allow(dead_code)]

use acs_core::Core;
use acs_core::card::WiegandCard;
use acs_core::domain::{
    AcsId, Credential, CredentialId, CredentialValue, FacilityId, Membership, MembershipId, Person,
    PersonId, TenantId,
};
use serde_json::{Value as Json, json};

/// `POST url` with the API key; the new object's id, or what the API answered instead.
pub(crate) async fn post(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    body: Json,
) -> anyhow::Result<u64> {
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

/// A core's API on 127.0.0.1 with a fresh tenant and one site, facility and card door.
pub(crate) struct Venue {
    /// The tenant's id.
    pub(crate) tenant: u64,
    /// Its API key.
    pub(crate) key: String,
    /// `http://127.0.0.1:<port>/v1`.
    pub(crate) base: String,
    /// A client for it.
    pub(crate) client: reqwest::Client,
    /// The site.
    pub(crate) site: u64,
    /// The facility.
    pub(crate) facility: u64,
    /// The door, taking cards in.
    pub(crate) door: u64,
}

/// Serves `core`'s API on a free loopback port and creates the tenant `bench` with one
/// site (UTC), facility and card door.
pub(crate) async fn venue(core: &Core) -> anyhow::Result<Venue> {
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
    Ok(Venue {
        tenant: tenant.id,
        key,
        base,
        client,
        site,
        facility,
        door,
    })
}

/// Adds `members` people (`E-0`, `E-1`, …), each with card `1,i` and a membership, to the
/// tenant of API key `key`.
pub(crate) async fn seed_members(
    core: &Core,
    key: &str,
    tenant: u64,
    members: u32,
) -> anyhow::Result<()> {
    seed_members_of(core, key, tenant, members, &[None]).await
}

/// [`seed_members`] with member `i`'s membership limited to facility
/// `limited_to[i mod limited_to.len()]` (`None`: the whole tenant).
pub(crate) async fn seed_members_of(
    core: &Core,
    key: &str,
    tenant: u64,
    members: u32,
    limited_to: &[Option<u64>],
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !limited_to.is_empty(),
        "no facility to limit memberships to"
    );
    let limited_to: Vec<Option<FacilityId>> =
        limited_to.iter().map(|f| f.map(FacilityId::new)).collect();
    let caller = core
        .authenticate(key)
        .await
        .map_err(|e| anyhow::anyhow!(e.detail))?
        .ok_or_else(|| anyhow::anyhow!("key"))?;
    let tenant_id = TenantId::new(tenant);
    let now = core.now();
    for from in (0..members).step_by(1_000) {
        let to = (from + 1_000).min(members);
        let limited_to = limited_to.clone();
        core.write(&caller, 3 * (to - from) as usize, move |_, plan| {
            for i in from..to {
                let person = Person::new(
                    PersonId::new(plan.next_id()?),
                    tenant_id,
                    AcsId::parse(&format!("E-{i}"))?,
                    &format!("Member {i}"),
                );
                let card = Credential::issue(
                    CredentialId::new(plan.next_id()?),
                    tenant_id,
                    person.id,
                    CredentialValue::Card(WiegandCard::new(1, i)),
                    now,
                );
                let mut member = Membership::new(
                    MembershipId::new(plan.next_id()?),
                    tenant_id,
                    person.id,
                    now,
                );
                member.facility_id = limited_to[i as usize % limited_to.len()];
                plan.put(person, None);
                plan.put(card, None);
                plan.put(member, None);
            }
            Ok(())
        })
        .await
        .map_err(|e| anyhow::anyhow!(e.detail))?;
    }
    Ok(())
}
