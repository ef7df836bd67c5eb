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

use tokio::sync::OwnedRwLockWriteGuard;

use crate::domain::{
    CredentialId, InvitationId, Lookup, PersonId, PhoneId, PresentedFactor, Snapshot, TenantId,
};
use crate::error::AppError;
use crate::records;
use crate::store::{Kind, Record, Store, UniqueKey, Write};

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
    /// payload or cloud-key token about to be issued.
    Claim(&'static str, String),
    /// Whoever holds a value presented at a door (card, PIN, QR code, cloud-key token),
    /// unless a live credential the snapshot holds carries it (the decision picks a live
    /// credential first, and no other live one can share its value).
    Presented(PresentedFactor),
}

impl Subject {
    /// The subjects of issuing `value` to `person`: the person, and whoever holds a claim
    /// the value would make, so that the issuing rules see the credential it would clash
    /// with.
    pub(crate) fn of_issuing(
        value: &crate::domain::CredentialValue,
        person: PersonId,
    ) -> Vec<Subject> {
        std::iter::once(Subject::Person(person))
            .chain(
                records::credential::live_claims(value, person)
                    .into_iter()
                    .map(|k| Subject::Claim(k.scope, k.value)),
            )
            .collect()
    }

    /// The subjects of a decision on `factors`: the credentials a matcher named, and the
    /// holders of the values presented.
    pub(crate) fn of_presented(factors: &[PresentedFactor]) -> Vec<Subject> {
        factors
            .iter()
            .map(|factor| match factor {
                PresentedFactor::Face { credential_id, .. }
                | PresentedFactor::Fingerprint { credential_id }
                | PresentedFactor::MobileKey { credential_id } => {
                    Subject::Credential(*credential_id)
                }
                other => Subject::Presented(other.clone()),
            })
            .collect()
    }

    /// Whether the snapshot holds the subject without asking the store (a claim is only
    /// known to the store; a presented value is held when `lookup`, the snapshot's decision
    /// indexes, finds a live credential for it).
    pub(crate) fn is_held(&self, s: &Snapshot, lookup: Option<&Lookup>) -> bool {
        match self {
            Subject::Person(id) => s.people.contains_key(id),
            Subject::Credential(id) => s.credentials.contains_key(id),
            Subject::Phone(id) => s.phones.contains_key(id),
            Subject::Invitation(id) => s.invitations.contains_key(id),
            Subject::Claim(..) => false,
            Subject::Presented(factor) => {
                lookup.is_some_and(|l| l.candidates(s, factor).iter().any(|c| c.is_live()))
            }
        }
    }
}

/// The records a visit brought in, to take out again when a read ends.
#[derive(Debug, Default)]
pub(crate) struct Visit {
    people: BTreeSet<PersonId>,
    records: Vec<(Kind, u64)>,
}

fn unreadable(e: records::CodecError) -> AppError {
    tracing::error!(error = %e, "stored record unreadable");
    AppError::internal()
}

/// The people `subject` belongs to when the snapshot does not hold them.
fn owners(
    store: &dyn Store,
    tenant: TenantId,
    s: &Snapshot,
    lookup: Option<&Lookup>,
    subject: &Subject,
) -> Result<Vec<PersonId>, AppError> {
    if subject.is_held(s, lookup) {
        return Ok(Vec::new());
    }
    let claims = match subject {
        Subject::Person(id) => return Ok(vec![*id]),
        Subject::Credential(id) => return owner_of(store, tenant, id.get()),
        Subject::Phone(id) => return owner_of(store, tenant, id.get()),
        Subject::Invitation(id) => return owner_of(store, tenant, id.get()),
        Subject::Claim(scope, value) => vec![UniqueKey {
            scope,
            value: value.clone(),
        }],
        Subject::Presented(factor) => records::credential::presented_claims(factor),
    };
    let mut records = Vec::new();
    for claim in claims {
        records.extend(store.claim(tenant.get(), claim.scope, &claim.value)?);
    }
    if let Subject::Presented(factor) = subject {
        for prefix in records::credential::presented_traces(factor) {
            records.extend(store.claims_with_prefix(
                tenant.get(),
                records::credential::REVOKED,
                &prefix,
            )?);
        }
    }
    let mut people = Vec::new();
    for id in records {
        if !s.credentials.contains_key(&CredentialId::new(id)) {
            people.extend(owner_of(store, tenant, id)?);
        }
    }
    Ok(people)
}

fn owner_of(store: &dyn Store, tenant: TenantId, record: u64) -> Result<Vec<PersonId>, AppError> {
    Ok(store
        .owner_of(tenant.get(), record)?
        .map(PersonId::new)
        .into_iter()
        .collect())
}

/// What person `person` owns in the store, the person included; nothing when the person
/// is gone (records left by a deleted person stay filed).
fn owned(store: &dyn Store, tenant: TenantId, person: PersonId) -> Result<Vec<Record>, AppError> {
    let records = store.owned_records(tenant.get(), person.get())?;
    let exists = records
        .iter()
        .any(|r| r.kind == Kind::Person && r.id == person.get());
    Ok(if exists { records } else { Vec::new() })
}

/// Reads the filed people `subjects` belong to into `s` as visitors (all or nothing: a
/// failure leaves `s` as it was).
/// `lookup`, the snapshot's decision indexes, spares the store a question about a
/// presented value a held credential carries.
pub(crate) fn summon(
    store: &dyn Store,
    tenant: TenantId,
    s: &mut Snapshot,
    lookup: Option<&Lookup>,
    subjects: &[Subject],
) -> Result<Visit, AppError> {
    let mut people = BTreeSet::new();
    for subject in subjects {
        for person in owners(store, tenant, s, lookup, subject)? {
            if !s.people.contains_key(&person) {
                people.insert(person);
            }
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

/// A tenant's snapshot under its write lock while filed people may visit it. However the
/// call ends (done, failed, panicked, or cancelled while it waited for the blocking pool),
/// dropping the host takes the visitors out again: exactly what `visit` brought in for a
/// read; every visitor left, for a write (whose settling normally leaves none).
#[derive(Debug)]
pub(crate) struct Host {
    snapshot: OwnedRwLockWriteGuard<Snapshot>,
    visit: Option<Visit>,
}

impl Host {
    /// Hosts visitors in `snapshot`.
    pub(crate) fn new(snapshot: OwnedRwLockWriteGuard<Snapshot>) -> Host {
        Host {
            snapshot,
            visit: None,
        }
    }

    /// Summons the filed people of `subjects` for a read, to be taken out when the host
    /// is dropped.
    pub(crate) fn visit(
        &mut self,
        store: &dyn Store,
        subjects: &[Subject],
    ) -> Result<(), AppError> {
        let tenant = self.snapshot.tenant.id;
        self.visit = Some(summon(store, tenant, &mut self.snapshot, None, subjects)?);
        Ok(())
    }
}

impl std::ops::Deref for Host {
    type Target = Snapshot;
    fn deref(&self) -> &Snapshot {
        &self.snapshot
    }
}

impl std::ops::DerefMut for Host {
    fn deref_mut(&mut self) -> &mut Snapshot {
        &mut self.snapshot
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        match self.visit.take() {
            Some(visit) => leave(&mut self.snapshot, visit),
            None => dismiss(&mut self.snapshot),
        }
    }
}

/// Takes a read's visitors out again (a read changes nothing, so what the visit brought
/// in is exactly what leaves).
fn leave(s: &mut Snapshot, visit: Visit) {
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
) -> Result<(), AppError> {
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
        summon(store, tenant, s, None, &missing)?;
        s.visitors.clear();
    }
    Ok(())
}

/// Files the visitors still in the snapshot (a write that failed before settling).
fn dismiss(s: &mut Snapshot) {
    if s.visitors.is_empty() {
        return;
    }
    let visitors = std::mem::take(&mut s.visitors);
    s.file(&visitors);
}

/// Reads a tenant's snapshot from the store with only its entitled people: the records
/// that belong to nobody first, then those of each person an entitlement names.
pub(crate) fn load(store: &dyn Store, s: &mut Snapshot) -> Result<(), AppError> {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::{AcsId, Credential, CredentialValue, Person, Pin, Tenant};
    use crate::records::Stored;
    use crate::store::{Change, SqliteStore};

    fn put<T: Stored>(entity: &T) -> Write {
        Write::Put {
            kind: T::KIND,
            id: entity.record_id(),
            data: entity.to_document(),
            unique: entity.unique_keys(),
            blob: None,
        }
    }

    /// A store with one person (id 1) holding a PIN (id 2), and an empty snapshot of the
    /// tenant behind a lock.
    fn world() -> (SqliteStore, Arc<tokio::sync::RwLock<Snapshot>>) {
        let store = SqliteStore::in_memory().expect("store");
        let tenant = store.create_tenant("t", "T").expect("tenant");
        let id = TenantId::new(tenant.id);
        let ids = store.allocate_ids(2).expect("ids");
        let person = Person::new(PersonId::new(ids[0]), id, AcsId::parse("P-1").unwrap(), "");
        let pin = Credential::issue(
            CredentialId::new(ids[1]),
            id,
            person.id,
            CredentialValue::Pin(Pin::parse("4321").unwrap()),
            jiff::Timestamp::UNIX_EPOCH,
        );
        let change = Change {
            writes: vec![put(&person), put(&pin)],
            ..Change::default()
        };
        store.commit(tenant.id, change).expect("commit");
        let snapshot = Snapshot::new(Tenant::new(id, "T").unwrap());
        (store, Arc::new(tokio::sync::RwLock::new(snapshot)))
    }

    #[test]
    fn a_host_dropped_however_the_call_ends_takes_its_visitors_out() {
        let (store, cell) = world();
        let person = PersonId::new(1);
        let pin = Subject::Presented(PresentedFactor::Pin(" 4321 ".into()));

        // A read: what the visit brought in leaves with the host.
        let mut host = Host::new(cell.clone().try_write_owned().expect("lock"));
        host.visit(&store, std::slice::from_ref(&pin))
            .expect("visit");
        assert!(host.people.contains_key(&person), "the PIN's holder visits");
        assert_eq!(host.credentials.len(), 1);
        drop(host);
        let s = cell.try_read().expect("lock");
        assert!(s.people.is_empty() && s.credentials.is_empty() && s.visitors.is_empty());
        drop(s);

        // A write that never settles (it failed, panicked or was cancelled): its visitors
        // are filed when the host goes.
        let mut host = Host::new(cell.clone().try_write_owned().expect("lock"));
        let tenant = host.tenant.id;
        summon(&store, tenant, &mut host, None, &[Subject::Person(person)]).expect("summon");
        assert_eq!(host.visitors, BTreeSet::from([person]));
        drop(host);
        let s = cell.try_read().expect("lock");
        assert!(s.people.is_empty() && s.credentials.is_empty() && s.visitors.is_empty());
    }

    #[test]
    fn nobody_visits_for_what_does_not_exist_or_belongs_to_nobody() {
        let (store, cell) = world();
        let mut host = Host::new(cell.try_write_owned().expect("lock"));
        let subjects = [
            Subject::Person(PersonId::new(99)),
            Subject::Credential(CredentialId::new(99)),
            Subject::Presented(PresentedFactor::Pin("9999".into())),
        ];
        host.visit(&store, &subjects).expect("visit");
        assert!(host.people.is_empty() && host.credentials.is_empty());
    }
}
