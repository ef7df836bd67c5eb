//! Filed people in and out of a tenant's snapshot (the rule of who stays is in
//! [`crate::domain::residency`]).
//!
//! A call about particular people names them as [`Subject`]s. Those the snapshot does not
//! hold are read from the store (the person with their credentials, phones and
//! invitations, found through the records' owner) and join the snapshot as visitors for
//! that call only. After a write, [`settle`] keeps the snapshot holding exactly the
//! entitled people: visitors the write entitled stay, people it left without an
//! entitlement are filed, and anyone an entitlement now names is read in.

use std::collections::BTreeSet;

use crate::domain::{CredentialId, InvitationId, PersonId, PhoneId, Snapshot, TenantId};
use crate::http::problem::ApiProblem;
use crate::records;
use crate::store::{Kind, Record, Store, Write};

/// What a call is about, so that the people it needs are in the snapshot when it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A person.
    Person(PersonId),
    /// A credential's person.
    Credential(CredentialId),
    /// A phone's person.
    Phone(PhoneId),
    /// An invitation's person.
    Invitation(InvitationId),
    /// The person of the record holding a unique claim `(scope, value)`: a card, PIN, QR
    /// payload or cloud-key token presented at a door, or a value about to be issued.
    Claim(&'static str, String),
}

impl Subject {
    /// Whether the snapshot holds the subject without asking the store (a claim is only
    /// known to the store).
    pub(crate) fn is_held(&self, s: &Snapshot) -> bool {
        match self {
            Subject::Person(id) => s.people.contains_key(id),
            Subject::Credential(id) => s.credentials.contains_key(id),
            Subject::Phone(id) => s.phones.contains_key(id),
            Subject::Invitation(id) => s.invitations.contains_key(id),
            Subject::Claim(..) => false,
        }
    }
}

/// The records a visit brought in, to take out again when a read ends.
#[derive(Debug, Default)]
pub(crate) struct Visit {
    people: BTreeSet<PersonId>,
    records: Vec<(Kind, u64)>,
}

fn unreadable(e: records::CodecError) -> ApiProblem {
    tracing::error!(error = %e, "stored record unreadable");
    ApiProblem::internal()
}

/// The person `subject` belongs to when the snapshot does not hold them.
fn owner(
    store: &dyn Store,
    tenant: TenantId,
    s: &Snapshot,
    subject: &Subject,
) -> Result<Option<PersonId>, ApiProblem> {
    if subject.is_held(s) {
        return Ok(None);
    }
    let record = match subject {
        Subject::Person(id) => return Ok(Some(*id)),
        Subject::Credential(id) => id.get(),
        Subject::Phone(id) => id.get(),
        Subject::Invitation(id) => id.get(),
        Subject::Claim(scope, value) => match store.claim(tenant.get(), scope, value)? {
            Some(id) if !s.credentials.contains_key(&CredentialId::new(id)) => id,
            _ => return Ok(None),
        },
    };
    Ok(store.owner_of(tenant.get(), record)?.map(PersonId::new))
}

/// What person `person` owns in the store, the person included; nothing when the person
/// is gone (records left by a deleted person stay filed).
fn owned(store: &dyn Store, tenant: TenantId, person: PersonId) -> Result<Vec<Record>, ApiProblem> {
    let records = store.owned_records(tenant.get(), person.get())?;
    let exists = records
        .iter()
        .any(|r| r.kind == Kind::Person && r.id == person.get());
    Ok(if exists { records } else { Vec::new() })
}

/// Reads the filed people `subjects` belong to into `s` as visitors (all or nothing: a
/// failure leaves `s` as it was).
pub(crate) fn summon(
    store: &dyn Store,
    tenant: TenantId,
    s: &mut Snapshot,
    subjects: &[Subject],
) -> Result<Visit, ApiProblem> {
    let mut people = BTreeSet::new();
    for subject in subjects {
        if let Some(person) = owner(store, tenant, s, subject)?
            && !s.people.contains_key(&person)
        {
            people.insert(person);
        }
    }
    let mut loaded: Vec<Record> = Vec::new();
    for person in &people {
        loaded.extend(owned(store, tenant, *person)?);
    }
    let mut visitor = Snapshot::new(s.tenant.clone());
    for record in &loaded {
        records::insert(&mut visitor, record).map_err(unreadable)?;
    }
    s.people.append(&mut visitor.people);
    s.credentials.append(&mut visitor.credentials);
    s.phones.append(&mut visitor.phones);
    s.invitations.append(&mut visitor.invitations);
    s.visitors.extend(people.iter().copied());
    Ok(Visit {
        people,
        records: loaded.iter().map(|r| (r.kind, r.id)).collect(),
    })
}

/// Takes a read's visitors out again (a read changes nothing, so what the visit brought
/// in is exactly what leaves).
pub(crate) fn leave(s: &mut Snapshot, visit: Visit) {
    for (kind, id) in visit.records {
        match kind {
            Kind::Person => {
                s.people.remove(&PersonId::new(id));
            }
            Kind::Credential => {
                s.credentials.remove(&CredentialId::new(id));
            }
            Kind::Phone => {
                s.phones.remove(&PhoneId::new(id));
            }
            Kind::Invitation => {
                s.invitations.remove(&InvitationId::new(id));
            }
            _ => {}
        }
    }
    for person in &visit.people {
        s.visitors.remove(person);
    }
}

/// The people the entitlement record `kind`/`id` names in `s`.
fn named_by(s: &Snapshot, kind: Kind, id: u64) -> Vec<PersonId> {
    match kind {
        Kind::Membership => s
            .memberships
            .get(&crate::domain::MembershipId::new(id))
            .map(|m| vec![m.person_id])
            .unwrap_or_default(),
        Kind::Event => s
            .events
            .get(&crate::domain::EventId::new(id))
            .map(|e| e.attendees().keys().copied().collect())
            .unwrap_or_default(),
        Kind::Access => s
            .accesses
            .get(&crate::domain::AccessId::new(id))
            .map(|a| a.person_ids.iter().copied().collect())
            .unwrap_or_default(),
        Kind::Group => s
            .groups
            .get(&crate::domain::GroupId::new(id))
            .map(|g| g.members.iter().copied().collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn written(write: &Write) -> (Kind, u64) {
    match write {
        Write::Put { kind, id, .. } | Write::Delete { kind, id } => (*kind, *id),
    }
}

/// The kind and id of every record a change puts or deletes.
pub(crate) fn written_records(writes: &[Write]) -> Vec<(Kind, u64)> {
    writes.iter().map(written).collect()
}

/// The people the entitlement records a change puts or deletes name before it is applied:
/// those it may leave without an entitlement.
pub(crate) fn named_before(s: &Snapshot, writes: &[Write]) -> BTreeSet<PersonId> {
    writes
        .iter()
        .flat_map(|w| {
            let (kind, id) = written(w);
            named_by(s, kind, id)
        })
        .collect()
}

/// Brings the snapshot back to holding exactly the entitled people once a change is
/// applied: visitors the change entitled become residents, anyone named before (or
/// owning a record put) who is no longer entitled is filed with the other visitors, and
/// people an entitlement now names who are not held yet are read from the store.
pub(crate) fn settle(
    store: &dyn Store,
    tenant: TenantId,
    s: &mut Snapshot,
    before: BTreeSet<PersonId>,
    writes: &[(Kind, u64)],
) -> Result<(), ApiProblem> {
    let mut candidates = before;
    candidates.append(&mut s.visitors);
    let mut named = BTreeSet::new();
    for &(kind, id) in writes {
        let person = match kind {
            Kind::Person => Some(PersonId::new(id)),
            Kind::Credential => s
                .credentials
                .get(&CredentialId::new(id))
                .map(|c| c.person_id),
            Kind::Phone => s.phones.get(&PhoneId::new(id)).map(|p| p.person_id),
            Kind::Invitation => s
                .invitations
                .get(&InvitationId::new(id))
                .map(|i| i.person_id),
            _ => {
                named.extend(named_by(s, kind, id));
                None
            }
        };
        candidates.extend(person);
    }
    let entitled = s.entitled_among(&candidates);
    let filed: BTreeSet<PersonId> = candidates.difference(&entitled).copied().collect();
    s.file(&filed);
    let missing: Vec<Subject> = named
        .into_iter()
        .filter(|p| !s.people.contains_key(p))
        .map(Subject::Person)
        .collect();
    if !missing.is_empty() {
        summon(store, tenant, s, &missing)?;
        s.visitors.clear();
    }
    Ok(())
}

/// Files the visitors a failed write brought in.
pub(crate) fn dismiss(s: &mut Snapshot) {
    let visitors = std::mem::take(&mut s.visitors);
    s.file(&visitors);
}

/// Reads a tenant's snapshot from the store with only its entitled people: the records
/// that belong to nobody first, then those of each person an entitlement names.
pub(crate) fn load(store: &dyn Store, s: &mut Snapshot) -> Result<(), ApiProblem> {
    let tenant = s.tenant.id;
    for record in store.unowned_records(tenant.get())? {
        records::insert(s, &record).map_err(unreadable)?;
    }
    for person in s.entitled_people() {
        for record in owned(store, tenant, person)? {
            records::insert(s, &record).map_err(unreadable)?;
        }
    }
    Ok(())
}
