//! What the core's benchmark examples share: a tenant filled with members who each hold a
//! card, written straight through the application in batches of 1,000.

use acs_core::Core;
use acs_core::card::WiegandCard;
use acs_core::domain::{
    AcsId, Credential, CredentialId, CredentialValue, Membership, MembershipId, Person, PersonId,
    TenantId,
};

/// Adds `members` people (`E-0`, `E-1`, …), each with card `1,i` and a membership, to the
/// tenant of API key `key`.
pub(crate) async fn seed_members(
    core: &Core,
    key: &str,
    tenant: u64,
    members: u32,
) -> anyhow::Result<()> {
    let caller = core
        .authenticate(key)
        .await
        .map_err(|e| anyhow::anyhow!(e.detail))?
        .ok_or_else(|| anyhow::anyhow!("key"))?;
    let tenant_id = TenantId::new(tenant);
    let now = core.now();
    for from in (0..members).step_by(1_000) {
        let to = (from + 1_000).min(members);
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
    Ok(())
}
