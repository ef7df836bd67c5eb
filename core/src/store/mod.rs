//! Persistence behind the [`Store`] trait: tenants and their API keys,
//! domain records, unique keys, selfies, idempotency replies and the append-only streams
//! (access events, audit). [`sqlite::SqliteStore`] is the embedded default;
//! [`postgres::PostgresStore`] keeps the same data in PostgreSQL (15 or newer) for
//! deployments past one machine. The trait is narrow and synchronous; both backends
//! behave the same (one test suite runs against both), and [`SealedStore`] wraps either.
//!
//! A write is a [`Change`]: every record it puts or deletes, the unique keys they claim, the
//! idempotency reply of the request, the audit entries, access events and outbox messages
//! ([`outbox`]), the webhook endpoints it changes, the webhook events it fans out to them
//! and the delivery attempts it records ([`webhooks`]), committed in one transaction – all
//! of it or nothing.

mod checkpoint;
mod columns;
pub mod coordination;
pub mod open;
pub mod outbox;
pub mod postgres;
pub mod seal;
pub mod sealed;
pub mod secrets;
pub mod sqlite;
pub mod webhooks;

use std::fmt;

use jiff::Timestamp;
use serde_json::Value as Json;

pub use coordination::{Lease, TenantRevision};
pub use outbox::{Channel, DeliveryOutcome, MessageRow, MessageStatus, NewMessage};
pub use postgres::PostgresStore;
pub use sealed::SealedStore;
pub use sqlite::SqliteStore;
pub use webhooks::{
    AttemptOutcome, DeliveryRow, NewDelivery, WebhookEvent, WebhookRow, WebhookWrite,
};

/// Kinds of records the store keeps for a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A site.
    Site,
    /// A facility, zone or area.
    Facility,
    /// A door (access point).
    Door,
    /// A terminal.
    Terminal,
    /// A person.
    Person,
    /// A credential.
    Credential,
    /// A phone.
    Phone,
    /// A group of people.
    Group,
    /// A schedule.
    Schedule,
    /// A holiday calendar.
    HolidayCalendar,
    /// A facility event with its attendees.
    Event,
    /// A membership.
    Membership,
    /// An access rule.
    Access,
    /// A selfie-enroll invitation.
    Invitation,
    /// An enrollment on a terminal (`app::enrollments`); not part of the tenant's
    /// snapshot, read by kind.
    Enrollment,
    /// A webhook endpoint (kept in a table of its own, [`webhooks`]; named in the audit
    /// trail).
    Webhook,
}

impl Kind {
    /// Every kind, in load order (what others refer to first).
    pub const ALL: [Kind; 16] = [
        Kind::Site,
        Kind::Facility,
        Kind::Door,
        Kind::Terminal,
        Kind::Schedule,
        Kind::HolidayCalendar,
        Kind::Person,
        Kind::Phone,
        Kind::Credential,
        Kind::Group,
        Kind::Event,
        Kind::Membership,
        Kind::Access,
        Kind::Invitation,
        Kind::Enrollment,
        Kind::Webhook,
    ];

    /// The name stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Site => "site",
            Kind::Facility => "facility",
            Kind::Door => "door",
            Kind::Terminal => "terminal",
            Kind::Person => "person",
            Kind::Credential => "credential",
            Kind::Phone => "phone",
            Kind::Group => "group",
            Kind::Schedule => "schedule",
            Kind::HolidayCalendar => "holiday_calendar",
            Kind::Event => "event",
            Kind::Membership => "membership",
            Kind::Access => "access",
            Kind::Invitation => "invitation",
            Kind::Enrollment => "enrollment",
            Kind::Webhook => "webhook",
        }
    }

    /// The kind stored as `name`.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tenant as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRow {
    /// Its id.
    pub id: u64,
    /// URL-safe unique name.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Whether it is active.
    pub active: bool,
}

/// An API key as stored: only a hash of the secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    /// Its id.
    pub id: u64,
    /// The tenant it acts for.
    pub tenant_id: u64,
    /// What the operator called it.
    pub label: String,
    /// The key's public prefix (shown in listings, identifies the key to humans).
    pub prefix: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// One record as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Its kind.
    pub kind: Kind,
    /// Its id (unique across kinds and tenants).
    pub id: u64,
    /// Its fields (the document `acs_core::records` reads).
    pub data: Json,
    /// Incremented on every put.
    pub version: u64,
}

/// A uniqueness claim within a tenant, e.g. `("acs_id", "E-1001")` or
/// `("card", "123,45678")`. Two live records can never hold the same claim.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UniqueKey {
    /// What is unique (`acs_id`, `card`, `pin`, `qr` …).
    pub scope: &'static str,
    /// The value.
    pub value: String,
}

/// Binary data attached to a record (a selfie).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// e.g. `image/jpeg`.
    pub media_type: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// One write of a [`Change`].
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Creates or replaces the record; its unique keys become exactly `unique`.
    Put {
        /// Kind.
        kind: Kind,
        /// Id (from [`Store::allocate_ids`] for new records).
        id: u64,
        /// Fields.
        data: Json,
        /// Uniqueness claims.
        unique: Vec<UniqueKey>,
        /// Binary data to attach (kept when `None`).
        blob: Option<Blob>,
    },
    /// Deletes the record, its unique keys and its blob.
    Delete {
        /// Kind.
        kind: Kind,
        /// Id.
        id: u64,
    },
}

/// The stored reply of a create made with an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentReply {
    /// The key the client sent.
    pub key: String,
    /// A digest of the request it came with (the same key with another request is refused).
    pub fingerprint: String,
    /// HTTP status of the reply.
    pub status: u16,
    /// Body of the reply.
    pub body: String,
}

/// An entry of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// What was done (`person.created` …).
    pub action: String,
    /// On which kind of record.
    pub kind: Kind,
    /// On which record.
    pub record_id: Option<u64>,
    /// Who did it (an API key's prefix, `system` …).
    pub actor: String,
}

/// An access event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAccessEvent {
    /// When it happened.
    pub occurred_at: Timestamp,
    /// Its fields.
    pub data: Json,
}

/// An access event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessEventRow {
    /// Increasing id (the stream's cursor).
    pub id: u64,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// Its fields.
    pub data: Json,
}

/// Everything one request writes, committed atomically.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    /// Records put or deleted, in order.
    pub writes: Vec<Write>,
    /// The reply to remember for an idempotent create.
    pub idempotency: Option<IdempotentReply>,
    /// Audit entries.
    pub audit: Vec<AuditEntry>,
    /// Access events to append.
    pub access_events: Vec<NewAccessEvent>,
    /// Messages to append to the outbox.
    pub messages: Vec<NewMessage>,
    /// Webhook endpoints created, replaced or deleted (before the events are fanned out).
    pub webhooks: Vec<WebhookWrite>,
    /// Events for the tenant's webhook endpoints: one outbox message per enabled endpoint
    /// subscribed to the event's type.
    pub webhook_events: Vec<WebhookEvent>,
    /// Webhook delivery attempts to record (each moves its endpoint's count of failed
    /// messages: reset by a delivery, one more for a message given up).
    pub webhook_deliveries: Vec<NewDelivery>,
    /// Commit only if the tenant's stored revision is this one (the revision the writer's
    /// snapshot was built at); otherwise [`StoreError::Stale`] and nothing is written.
    pub expected_revision: Option<u64>,
}

impl Change {
    /// Whether committing this change moves the tenant's revision: it puts or deletes
    /// records of the snapshot (enrollments are kept outside it).
    pub fn moves_revision(&self) -> bool {
        self.writes.iter().any(|w| match w {
            Write::Put { kind, .. } | Write::Delete { kind, .. } => *kind != Kind::Enrollment,
        })
    }

    /// Whether committing this change is news on the change feed: it moves the revision
    /// or changes webhook endpoints (which other instances' caches follow).
    pub fn moves_feed(&self) -> bool {
        self.moves_revision() || !self.webhooks.is_empty()
    }
}

/// The store failed; variants say what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key is already held by another record: the request conflicts.
    #[error("{scope} '{value}' is already in use")]
    Conflict {
        /// The key's scope.
        scope: &'static str,
        /// The value.
        value: String,
    },
    /// A record the change refers to does not exist (for this tenant).
    #[error("{kind} {id} does not exist")]
    Missing {
        /// Its kind.
        kind: Kind,
        /// Its id.
        id: u64,
    },
    /// The tenant changed since the revision the change was validated at
    /// ([`Change::expected_revision`]): read it again and retry.
    #[error("the tenant changed concurrently (revision {found}, expected {expected})")]
    Stale {
        /// The revision the change expected.
        expected: u64,
        /// The stored one.
        found: u64,
    },
    /// The idempotency key was used before with a different request.
    #[error("idempotency key '{0}' was already used with a different request")]
    IdempotencyMismatch(String),
    /// The database is newer than this program.
    #[error("the database is at schema version {found}, newer than this program's {supported}")]
    TooNew {
        /// Version found.
        found: i64,
        /// Newest version known here.
        supported: i64,
    },
    /// A sealed secret could not be opened (the key is missing or wrong).
    #[error("{0}")]
    Sealed(#[from] seal::SealError),
    /// Stored data could not be read back (corruption or a bug).
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// The SQLite database failed (disk, locking…): retry or give up.
    #[error("database: {0}")]
    Database(#[from] rusqlite::Error),
    /// PostgreSQL refused or failed a statement: retry or give up.
    #[error("database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No connection to PostgreSQL could be had (server down, pool exhausted, bad URL).
    #[error("database connection: {0}")]
    Connection(String),
    /// The database file could not be created or made private to its owner.
    #[error("cannot create or protect the database file: {0}")]
    File(std::io::Error),
    /// The store's background thread could not be started.
    #[error("could not start the store's checkpoint thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// The persistence the core needs. Implementations are synchronous and thread-safe; the
/// async layers call them through `spawn_blocking`.
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// The key this store keeps secrets under ([`SealedStore`]); `None` for a bare
    /// backend, which stores what it is given (tests, `:memory:`).
    fn secret_key(&self) -> Option<&seal::SecretKey> {
        None
    }
    /// Creates a tenant (the slug must be unused).
    fn create_tenant(&self, slug: &str, name: &str) -> Result<TenantRow, StoreError>;
    /// Every tenant.
    fn tenants(&self) -> Result<Vec<TenantRow>, StoreError>;
    /// Stores a new API key (only its hash).
    fn insert_api_key(
        &self,
        tenant_id: u64,
        label: &str,
        prefix: &str,
        hash: &str,
    ) -> Result<ApiKeyRow, StoreError>;
    /// The unrevoked key with this hash.
    fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKeyRow>, StoreError>;
    /// A tenant's keys, revoked ones included.
    fn api_keys(&self, tenant_id: u64) -> Result<Vec<ApiKeyRow>, StoreError>;
    /// Revokes a key; false when the tenant has no such unrevoked key.
    fn revoke_api_key(&self, tenant_id: u64, key_id: u64) -> Result<bool, StoreError>;
    /// Reserves `n` fresh record ids.
    fn allocate_ids(&self, n: usize) -> Result<Vec<u64>, StoreError>;
    /// Applies a change in one transaction; returns the ids of the appended access events.
    fn commit(&self, tenant_id: u64, change: Change) -> Result<Vec<u64>, StoreError>;
    /// Every record of a tenant (without blobs), by kind then id.
    fn records(&self, tenant_id: u64) -> Result<Vec<Record>, StoreError>;
    /// The tenant's records that belong to no person (topology, groups, schedules, events,
    /// memberships, accesses), by kind then id; enrollments, which are not part of the
    /// snapshot, are left out (read them by kind).
    fn unowned_records(&self, tenant_id: u64) -> Result<Vec<Record>, StoreError>;
    /// The records that belong to person `owner`: the person, their credentials, phones
    /// and invitations, by id.
    fn owned_records(&self, tenant_id: u64, owner: u64) -> Result<Vec<Record>, StoreError>;
    /// The person the record `record_id` belongs to (`None`: no such record, or it belongs
    /// to nobody).
    fn owner_of(&self, tenant_id: u64, record_id: u64) -> Result<Option<u64>, StoreError>;
    /// Up to `limit` records of `kind` with an id above `after`, by id.
    fn records_of_kind(
        &self,
        tenant_id: u64,
        kind: Kind,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError>;
    /// The record holding the claim `(scope, value)` in the tenant.
    fn claim(&self, tenant_id: u64, scope: &str, value: &str) -> Result<Option<u64>, StoreError>;
    /// The records holding a claim of `scope` whose value starts with `prefix`, in the
    /// tenant.
    fn claims_with_prefix(
        &self,
        tenant_id: u64,
        scope: &str,
        prefix: &str,
    ) -> Result<Vec<u64>, StoreError>;
    /// A record's blob.
    fn blob(&self, tenant_id: u64, record_id: u64) -> Result<Option<Blob>, StoreError>;
    /// The stored reply for an idempotency key.
    fn idempotent_reply(
        &self,
        tenant_id: u64,
        key: &str,
    ) -> Result<Option<IdempotentReply>, StoreError>;
    /// What the sync engine last applied to a terminal: `(subject, document)` pairs.
    fn applied(&self, tenant_id: u64, terminal_id: u64) -> Result<Vec<(String, Json)>, StoreError>;
    /// Records (or, with `None`, forgets) what was applied to a terminal for each subject,
    /// all in one transaction.
    fn set_applied(
        &self,
        tenant_id: u64,
        terminal_id: u64,
        subjects: &[(String, Option<Json>)],
    ) -> Result<(), StoreError>;
    /// Access events with an id above `after`, oldest first, at most `limit`.
    fn access_events(
        &self,
        tenant_id: u64,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AccessEventRow>, StoreError>;
    /// The tenant and record holding the claim `(scope, value)` in any tenant.
    fn claim_owner(&self, scope: &str, value: &str) -> Result<Option<(u64, u64)>, StoreError>;
    /// Claims and returns pending messages due at `now` (every tenant's) that nobody
    /// holds a running claim on, oldest first, at most `limit`: each is claimed by
    /// `claimer` for `claim_for` (database time) – no other claimer gets it until its
    /// delivery is recorded or the claim expires.
    fn due_messages(
        &self,
        now: Timestamp,
        limit: usize,
        claimer: &str,
        claim_for: std::time::Duration,
    ) -> Result<Vec<MessageRow>, StoreError>;
    /// When the earliest pending message is due (a claimed one not before its claim ends).
    fn next_message_due(&self) -> Result<Option<Timestamp>, StoreError>;
    /// Records the outcome of one delivery attempt of a pending message.
    fn record_delivery(&self, id: u64, outcome: &DeliveryOutcome) -> Result<(), StoreError>;
    /// A tenant's messages with an id above `after`, oldest first, at most `limit`.
    fn messages(
        &self,
        tenant_id: u64,
        after: u64,
        limit: usize,
    ) -> Result<Vec<MessageRow>, StoreError>;
    /// The tenant's stored revision (0 before its first change).
    fn tenant_revision(&self, tenant_id: u64) -> Result<u64, StoreError>;
    /// The tenants changed after the feed position `after`, by position (the highest
    /// position returned is the next cursor).
    fn changed_tenants(&self, after: u64) -> Result<Vec<TenantRevision>, StoreError>;
    /// Access events of every tenant with an id above `after`, by id, at most `limit`:
    /// `(tenant, event)`.
    fn access_events_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, AccessEventRow)>, StoreError>;
    /// The highest access event id (0 with none).
    fn last_access_event_id(&self) -> Result<u64, StoreError>;
    /// Records that `instance` is alive for `ttl`, forgets instances whose heartbeat
    /// expired, and returns how many instances are alive (this one included).
    fn heartbeat(&self, instance: &str, ttl: std::time::Duration) -> Result<usize, StoreError>;
    /// Takes the lease of `terminal_id` for `instance` for `ttl` if it is free, expired or
    /// already held by `instance`; whether `instance` holds it now.
    fn acquire_lease(
        &self,
        terminal_id: u64,
        instance: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError>;
    /// Extends every unexpired lease `instance` holds by `ttl`; the terminals it holds.
    fn renew_leases(
        &self,
        instance: &str,
        ttl: std::time::Duration,
    ) -> Result<Vec<u64>, StoreError>;
    /// Gives up `instance`'s leases of `terminals` (all of them with `None`).
    fn release_leases(&self, instance: &str, terminals: Option<&[u64]>) -> Result<(), StoreError>;
    /// Every lease, by terminal.
    fn leases(&self) -> Result<Vec<Lease>, StoreError>;
    /// Counts one hit of `key` in the fixed window starting at `window_ms` and returns the
    /// window's count so far; windows starting before `prune_before_ms` are forgotten.
    fn count_hit(&self, key: &str, window_ms: i64, prune_before_ms: i64)
    -> Result<u64, StoreError>;
    /// A tenant's webhook endpoints (secrets in clear), by id.
    fn webhooks(&self, tenant_id: u64) -> Result<Vec<WebhookRow>, StoreError>;
    /// The delivery attempts to a tenant's endpoint with an id above `after`, oldest
    /// first, at most `limit`.
    fn webhook_deliveries(
        &self,
        tenant_id: u64,
        webhook_id: u64,
        after: u64,
        limit: usize,
    ) -> Result<Vec<DeliveryRow>, StoreError>;
}
