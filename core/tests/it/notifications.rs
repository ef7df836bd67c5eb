//! Invitations, cloud keys, phones and the notifications outbox: the selfie
//! invitation lifecycle through the public link, a full self-enrollment ending with the
//! face on a terminal, cloud keys opening a door (one-time use, PIN lockout), a phone added
//! later receiving an existing mobile key, welcome messages, and the outbox delivering
//! every message exactly once across a restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use acs_core::notify::delivery::{MAX_ATTEMPTS, deliver_due};
use acs_core::notify::file::FileSender;
use acs_core::notify::{SendError, Sender, Senders};
use acs_core::store::{MessageRow, SqliteStore, Store};
use acs_core::sync::{SyncEngine, SyncOptions};
use acs_core::{Clock, Core};
use acs_simulator::{Fleet, RunningFleet, Simulator, TimeMode};
use serde_json::{Value as Json, json};

use crate::api_support::{Api, FACE, Reply, START, face_b64, venue, venue_at};

/// The path part (`/public/…`) of a link.
fn path_of(link: &Json) -> String {
    let link = link.as_str().expect("a link");
    let at = link.find("/public/").expect("a public link");
    link[at..].to_owned()
}

/// A request without an API key, as a person following a link sends it.
async fn public(api: &Api, method: &str, path: &str, body: Option<Json>) -> Reply {
    api.send_as(None, method, path, body.as_ref(), None).await
}

async fn person(api: &Api, acs_id: &str) -> u64 {
    api.post(
        "/v1/people",
        json!({"acs_id": acs_id, "name": "Ana Lima", "email": "ana@example.com",
               "phone_number": "+34 600 123 456"}),
    )
    .await
    .id()
}

/// Asks for a selfie invitation of `person`.
async fn invite(api: &Api, person: u64, body: Json) -> Reply {
    api.post(&format!("/v1/people/{person}/selfie-invitations"), body)
        .await
}

/// The public link (path part) of a new selfie invitation of `person`, sent by e-mail.
async fn invitation_link(api: &Api, person: u64) -> String {
    path_of(
        &invite(api, person, json!({"send_by_email": true}))
            .await
            .json["link"],
    )
}

/// Sends a selfie (base64) to an invitation's public `link`, as the invited person does.
async fn post_selfie(api: &Api, link: &str, selfie: &str) -> Reply {
    public(api, "POST", link, Some(json!({"selfie": selfie}))).await
}

/// Opens `door` with the cloud key whose public page is `base`.
async fn open_door(api: &Api, base: &str, pin: &str, door: u64) -> Reply {
    public(
        api,
        "POST",
        &format!("{base}/open"),
        Some(json!({"pin": pin, "door_id": door})),
    )
    .await
}

async fn outbox(api: &Api) -> Vec<Json> {
    let reply = api.get("/v1/outbox?limit=500").await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    reply.json["items"].as_array().expect("items").clone()
}

/// The messages in the outbox that `cause` caused.
async fn outbox_of(api: &Api, cause: &str) -> Vec<Json> {
    outbox(api)
        .await
        .into_iter()
        .filter(|m| m["cause"] == cause)
        .collect()
}

/// The access events (first page).
async fn access_events(api: &Api) -> Json {
    api.get("/v1/access-events").await.json["items"].clone()
}

/// Every message in the store (bodies included), for checks the API does not show.
fn stored_messages(core: &Core) -> Vec<MessageRow> {
    let tenant = core
        .store()
        .tenants()
        .expect("tenants")
        .first()
        .expect("a tenant")
        .id;
    core.store().messages(tenant, 0, 10_000).expect("messages")
}

#[tokio::test]
async fn an_invitation_is_superseded_used_or_expired_and_says_so() {
    let api = Api::start().await;
    let ana = person(&api, "E-1").await;
    assert_eq!(
        api.get(&format!("/v1/people/{ana}")).await.json["email"],
        "ana@example.com"
    );

    // Bad requests change nothing.
    for (body, field) in [
        (json!({}), "send_by_email"),
        (
            json!({"send_by_text": true, "expires_at": "2026-05-01T00:00:00Z"}),
            "expires_at",
        ),
        (
            json!({"send_by_email": true, "email": "not-an-address"}),
            "email",
        ),
    ] {
        invite(&api, ana, body).await.problem(422, Some(field));
    }
    assert!(outbox(&api).await.is_empty());

    let first = invite(
        &api,
        ana,
        json!({"send_by_email": true, "send_by_text": true}),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.json);
    assert_eq!(first.json["status"], "active");
    assert_eq!(
        first.json["expires_at"], "2026-05-05T08:00:00Z",
        "24 h by default"
    );
    let first_link = path_of(&first.json["link"]);
    let messages = outbox(&api).await;
    assert_eq!(messages.len(), 2, "one e-mail, one text");
    assert_eq!(messages[0]["channel"], "email");
    assert_eq!(messages[0]["recipient"], "ana@example.com");
    assert_eq!(messages[1]["channel"], "text");
    assert_eq!(messages[1]["recipient"], "+34600123456");
    assert!(messages[0].get("body").is_none(), "bodies are not listed");
    let token = first_link.rsplit('/').next().expect("token");
    assert!(
        stored_messages(&api.core)[0].message.body.contains(token),
        "the message carries the link"
    );

    // The page opens, and says what the link is.
    let page = public(&api, "GET", &first_link, None).await;
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"));

    // A second invitation supersedes the first.
    let second = invite(&api, ana, json!({"send_by_email": true})).await;
    let second_link = path_of(&second.json["link"]);
    let old = post_selfie(&api, &first_link, &face_b64()).await;
    old.problem(410, None);
    assert_eq!(old.json["type"], "urn:acs:problem:invitation-superseded");
    assert_eq!(
        api.get(&format!("/v1/selfie-invitations/{}", first.id()))
            .await
            .json["status"],
        "superseded"
    );

    // A bad selfie is refused and the link still works.
    post_selfie(&api, &second_link, "bm90IGEganBlZw==")
        .await
        .problem(422, Some("selfie"));

    // The selfie, as raw JPEG bytes, becomes the face: issued, not distributed.
    let used = api.post_raw(&second_link, "image/jpeg", FACE).await;
    assert_eq!(used.status, 201, "{}", used.json);
    assert_eq!(used.json["status"], "used");
    let face = api
        .get(&format!("/v1/credentials/{}", used.json["credential_id"]))
        .await;
    assert_eq!(face.json["kind"], "face");
    assert_eq!(face.json["disable_reasons"], json!(["needs_provisioning"]));
    let selfie = api.get(&format!("/v1/people/{ana}/selfie")).await;
    assert_eq!(selfie.status, 200);

    // Used once: refused again; a new invitation for someone with a face is refused.
    let again = post_selfie(&api, &second_link, &face_b64()).await;
    assert_eq!(again.json["type"], "urn:acs:problem:invitation-used");
    invite(&api, ana, json!({"send_by_email": true}))
        .await
        .problem(409, Some("kind"));

    // Expiry.
    let bea = person(&api, "E-2").await;
    let short = invite(
        &api,
        bea,
        json!({"send_by_text": true, "expires_at": "2026-05-04T09:00:00Z"}),
    )
    .await;
    let short_link = path_of(&short.json["link"]);
    api.set_now("2026-05-04T09:00:00Z");
    let late = post_selfie(&api, &short_link, &face_b64()).await;
    assert_eq!(late.json["type"], "urn:acs:problem:invitation-expired");
    assert_eq!(
        api.get(&format!("/v1/people/{bea}")).await.json["credentials"],
        json!([])
    );

    // An unknown token is a plain 404.
    public(&api, "GET", "/public/selfie-invitations/nope", None)
        .await
        .problem(404, None);
}

#[tokio::test]
async fn the_public_link_is_rate_limited_on_the_clock() {
    let api = Api::start().await;
    let ana = person(&api, "E-1").await;
    let link = invitation_link(&api, ana).await;
    for _ in 0..10 {
        let page = public(&api, "GET", &link, None).await;
        assert_eq!(page.status, 200);
    }
    let limited = public(&api, "GET", &link, None).await;
    limited.problem(429, None);
    assert_eq!(limited.json["type"], "urn:acs:problem:rate-limited");
    api.set_now("2026-05-04T08:01:00Z");
    assert_eq!(public(&api, "GET", &link, None).await.status, 200);
}

/// One terminal serving one door, with the receiver and the sync engine.
struct Site {
    api: Api,
    fleet: RunningFleet,
    engine: SyncEngine,
    door: u64,
    terminal: u64,
}

async fn site() -> Site {
    let api = Api::start().await;
    let fleet = Fleet::builder(1)
        .template(Simulator::builder().time_mode(TimeMode::Scaled(0.0)))
        .seed(31)
        .spawn()
        .await
        .expect("fleet");
    let (_, _, door, terminal) =
        venue_at(&api, &fleet.device(0).expect("device").base_url(), "admin").await;
    let engine = SyncEngine::spawn(
        api.core.clone(),
        SyncOptions {
            retry_initial: Duration::from_millis(20),
            retry_max: Duration::from_millis(200),
            ..SyncOptions::default()
        },
    );
    Site {
        api,
        fleet,
        engine,
        door,
        terminal,
    }
}

#[tokio::test]
async fn a_person_enrolls_their_own_face_and_it_reaches_the_terminal_once_a_member() {
    let Site {
        api,
        fleet,
        engine,
        terminal,
        ..
    } = site().await;
    let ana = person(&api, "E-7").await;
    let link = invitation_link(&api, ana).await;
    let used = post_selfie(&api, &link, &face_b64()).await;
    assert_eq!(used.status, 201, "{}", used.json);
    let device = fleet.device(0).expect("device");
    assert!(
        device.device().list_images().is_empty(),
        "issued, not distributed"
    );

    api.post("/v1/members", json!({"person_id": ana}))
        .await
        .id();
    // The engine reports as soon as the terminal is in line; the bound only stops a broken
    // build from hanging CI.
    let synced = engine.board().wait_until(|board| {
        board
            .iter()
            .any(|((_, id), s)| id.get() == terminal && s.in_sync && s.people == 1)
    });
    tokio::time::timeout(Duration::from_secs(120), synced)
        .await
        .expect("the terminal converges");
    assert_eq!(
        device.device().list_images().len(),
        1,
        "the face is on the terminal"
    );
    let events = access_events(&api).await;
    assert!(
        events
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["type"] == "enrollment.finished" && e["acs_id"] == "E-7"),
        "{events}"
    );
    engine.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_cloud_key_opens_the_door_once_and_locks_after_wrong_pins() {
    let Site {
        api,
        fleet,
        engine,
        door,
        ..
    } = site().await;
    let ana = person(&api, "E-9").await;
    api.post("/v1/members", json!({"person_id": ana}))
        .await
        .id();
    let issued = api
        .post(
            &format!("/v1/people/{ana}/credentials"),
            json!({"kind": "cloud_key", "pin": "4321", "one_time": true,
                   "starts_at": START, "ends_at": "2026-05-05T08:00:00Z",
                   "send_by_email": true}),
        )
        .await;
    assert_eq!(issued.status, 201, "{}", issued.json);
    let key_id = issued.id();
    let token = issued.json["token"].as_str().expect("token").to_owned();
    let stored = stored_messages(&api.core);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].message.cause, "cloud_key.issued");
    assert!(stored[0].message.body.contains(&token), "the link");
    assert!(
        stored[0].message.body.contains("4321"),
        "the PIN, to its owner"
    );
    let base = format!("/public/cloud-keys/{token}");

    // The page, and the doors the key opens now.
    assert_eq!(public(&api, "GET", &base, None).await.status, 200);
    let doors = public(
        &api,
        "POST",
        &format!("{base}/doors"),
        Some(json!({"pin": "4321"})),
    )
    .await;
    assert_eq!(doors.json["doors"][0]["door_id"], door, "{}", doors.json);

    // Open: the terminal's relay fires and access.granted carries the acs_id.
    let device = fleet.device(0).expect("device");
    let before = device.device().actuations().len();
    let opened = open_door(&api, &base, "4321", door).await;
    assert_eq!(opened.status, 200, "{}", opened.json);
    assert_eq!(opened.json["type"], "access.granted");
    assert_eq!(opened.json["acs_id"], "E-9");
    assert_eq!(
        device.device().actuations().len(),
        before + 1,
        "the door opened"
    );

    // One-time: a second use is refused and recorded.
    let again = open_door(&api, &base, "4321", door).await;
    again.problem(403, None);
    assert_eq!(again.json["reason_code"], "credential_expired");
    assert_eq!(device.device().actuations().len(), before + 1);
    let events = access_events(&api).await;
    let kinds: Vec<&str> = events
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["source"] == "cloud_key")
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(kinds, ["access.granted", "access.denied"]);

    // Another key: wrong PINs are counted and the fifth locks it, right PIN or not.
    let key = api
        .post(
            &format!("/v1/people/{ana}/credentials"),
            json!({"kind": "cloud_key", "pin": "1111"}),
        )
        .await;
    let locked_id = key.id();
    let base = format!(
        "/public/cloud-keys/{}",
        key.json["token"].as_str().expect("token")
    );
    for left in (1..5).rev() {
        let wrong = open_door(&api, &base, "9999", door).await;
        wrong.problem(403, None);
        assert_eq!(wrong.json["type"], "urn:acs:problem:wrong-pin");
        assert!(
            wrong.json["detail"]
                .as_str()
                .expect("detail")
                .contains(&format!("{left} attempts"))
        );
    }
    let fifth = open_door(&api, &base, "9999", door).await;
    fifth.problem(423, None);
    let right = open_door(&api, &base, "1111", door).await;
    right.problem(423, None);
    let status = api.get(&format!("/v1/credentials/{locked_id}")).await;
    assert!(
        status.json["disable_reasons"]
            .as_array()
            .expect("reasons")
            .contains(&json!("lockout")),
        "{}",
        status.json
    );
    // The operator lifts the lockout; the right PIN works again.
    let cleared = api
        .post(
            &format!("/v1/credentials/{locked_id}/clear-lockout"),
            json!({}),
        )
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.json);
    let works = open_door(&api, &base, "1111", door).await;
    assert_eq!(works.status, 200, "{}", works.json);
    assert_ne!(key_id, locked_id);
    engine.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_phone_added_later_receives_the_mobile_key_and_deactivating_revokes_it() {
    let api = Api::start().await;
    let ana = person(&api, "E-3").await;
    let first = api
        .post(&format!("/v1/people/{ana}/phones"), json!({}))
        .await
        .id();
    let parent = api
        .post(
            &format!("/v1/people/{ana}/credentials"),
            json!({"kind": "mobile_key"}),
        )
        .await
        .id();
    let welcome: Vec<Json> = outbox_of(&api, "welcome.mobile_key").await;
    assert_eq!(welcome.len(), 1, "a welcome for the mobile key");
    assert_eq!(welcome[0]["recipient"], "ana@example.com");

    let second = api
        .post(&format!("/v1/people/{ana}/phones"), json!({}))
        .await
        .id();
    let credentials = api.get(&format!("/v1/people/{ana}/credentials")).await.json["items"].clone();
    let copies: Vec<&Json> = credentials
        .as_array()
        .expect("credentials")
        .iter()
        .filter(|c| c["kind"] == "mobile_key" && c["id"] != parent)
        .collect();
    assert_eq!(copies.len(), 2, "one copy per phone: {credentials}");
    assert!(copies.iter().any(|c| c["phone_id"] == second));

    assert_eq!(
        api.post(&format!("/v1/phones/{second}/deactivate"), json!({}))
            .await
            .status,
        200
    );
    let events = access_events(&api).await;
    let steps: Vec<(String, Json)> = events
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["type"].as_str().expect("type").to_owned(),
                e["phone_id"].clone(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("phone.enrolled".to_owned(), json!(first)),
            ("credential.issued".to_owned(), json!(first)),
            ("phone.enrolled".to_owned(), json!(second)),
            ("credential.issued".to_owned(), json!(second)),
            ("phone.deactivated".to_owned(), json!(second)),
            ("credential.revoked".to_owned(), json!(second)),
        ]
    );
}

#[tokio::test]
async fn accesses_asking_for_it_welcome_each_new_person_once() {
    let api = Api::start().await;
    let ana = person(&api, "E-4").await;
    let bea = person(&api, "E-5").await;
    let (_, _, door, _) = venue(&api).await;
    let access = json!({"name": "Lab", "kind": "permanent", "welcome_email_required": true,
                        "doors": [{"door_id": door, "in_auth_types": ["card"]}],
                        "person_ids": [ana]});
    let id = api.post("/v1/accesses", access.clone()).await.id();
    let mut with_bea = access.clone();
    with_bea["person_ids"] = json!([ana, bea]);
    assert_eq!(
        api.put(&format!("/v1/accesses/{id}"), with_bea)
            .await
            .status,
        200
    );
    let welcomes: Vec<Json> = outbox_of(&api, "welcome.access").await;
    assert_eq!(welcomes.len(), 2, "ana once, bea once: {welcomes:?}");
    assert!(welcomes.iter().all(|m| m["subject"] == "Welcome: Lab"));
}

/// A sender that fails with a temporary error a number of times, then writes files.
#[derive(Debug)]
struct Flaky {
    failures_left: AtomicUsize,
    files: FileSender,
}

impl Sender for Flaky {
    fn send(&self, message: &MessageRow) -> Result<(), SendError> {
        if self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(SendError::Temporary("server busy".into()));
        }
        self.files.send(message)
    }
}

/// Every channel to a [`Flaky`] sender failing `failures` times, then writing to `dir`.
fn flaky(failures: usize, dir: &std::path::Path) -> Senders {
    Senders::all(Arc::new(Flaky {
        failures_left: AtomicUsize::new(failures),
        files: FileSender::new(dir),
    }))
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn the_outbox_survives_a_restart_without_losing_or_repeating_a_message() {
    let dir = std::env::temp_dir().join(format!("acs-core-outbox-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join("acs.db");
    let sent = dir.join("sent");
    let clock = || Clock::manual(START.parse().expect("instant"));

    // First life: three invitations' messages are committed, nothing is delivered.
    let ids = {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).expect("db"));
        let core = Core::with_clock(store, clock());
        let (_, key) = core.create_tenant("acme", "Acme").await.expect("tenant");
        let api = Api::serve(core, key.secret).await;
        for i in 0..3 {
            let p = person(&api, &format!("E-{i}")).await;
            invite(&api, p, json!({"send_by_email": true})).await.id();
        }
        let messages = stored_messages(&api.core);
        assert_eq!(messages.len(), 3);
        // One message was handed to the sender just before the crash, but not marked.
        FileSender::new(&sent)
            .send(&messages[0])
            .expect("delivered");
        messages.iter().map(|m| m.id).collect::<Vec<_>>()
    };

    // Second life over the same database: a flaky sender, retried on the clock.
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).expect("db"));
    let core = Core::with_clock(store, clock());
    let senders = flaky(1, &sent);
    assert_eq!(deliver_due(&core, &senders).await.expect("delivery"), 3);
    let rows = stored_messages(&core);
    assert_eq!(
        rows.iter().filter(|m| m.status.as_str() == "sent").count(),
        2
    );
    let pending: Vec<&MessageRow> = rows
        .iter()
        .filter(|m| m.status.as_str() == "pending")
        .collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].attempts, 1);
    assert_eq!(
        pending[0].last_error.as_deref(),
        Some("temporary failure: server busy")
    );
    // Not due yet; due after the backoff.
    assert_eq!(deliver_due(&core, &senders).await.expect("delivery"), 0);
    core.clock().set(pending[0].next_attempt_at);
    assert_eq!(deliver_due(&core, &senders).await.expect("delivery"), 1);
    assert_eq!(deliver_due(&core, &senders).await.expect("delivery"), 0);

    let expected: Vec<String> = ids.iter().map(|id| format!("message-{id}.txt")).collect();
    assert_eq!(files_in(&sent), expected, "each message once, none lost");
    assert!(
        stored_messages(&core)
            .iter()
            .all(|m| m.status.as_str() == "sent")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_message_that_keeps_failing_is_given_up_and_shown_as_failed() {
    let api = Api::start().await;
    let ana = person(&api, "E-1").await;
    invite(&api, ana, json!({"send_by_text": true})).await.id();
    let dir = std::env::temp_dir().join(format!("acs-core-outbox-fail-{}", std::process::id()));
    let senders = flaky(usize::MAX, &dir);
    for _ in 0..MAX_ATTEMPTS {
        assert_eq!(deliver_due(&api.core, &senders).await.expect("delivery"), 1);
        if let Some(next) = stored_messages(&api.core)
            .iter()
            .find(|m| m.status.as_str() == "pending")
        {
            api.core.clock().set(next.next_attempt_at);
        }
    }
    let shown = outbox(&api).await;
    assert_eq!(shown[0]["status"], "failed", "{shown:?}");
    assert_eq!(shown[0]["attempts"], MAX_ATTEMPTS);
    assert!(files_in(&dir).is_empty());
}

/// A file sender that reports each delivery on a channel.
#[derive(Debug)]
struct Reporting {
    files: FileSender,
    delivered: tokio::sync::mpsc::UnboundedSender<u64>,
}

impl Sender for Reporting {
    fn send(&self, message: &MessageRow) -> Result<(), SendError> {
        self.files.send(message)?;
        let _ = self.delivered.send(message.id);
        Ok(())
    }
}

#[tokio::test]
async fn the_delivery_task_wakes_when_a_write_appends_a_message() {
    let api = Api::start().await;
    let dir = std::env::temp_dir().join(format!("acs-core-outbox-wake-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let files = FileSender::new(&dir);
    let (tx, mut delivered) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(acs_core::notify::delivery::run(
        api.core.clone(),
        Senders::all(Arc::new(Reporting {
            files: files.clone(),
            delivered: tx,
        })),
    ));
    let ana = person(&api, "E-1").await;
    invite(&api, ana, json!({"send_by_email": true})).await.id();
    // The clock never moves: only the write's wake-up can start the delivery.
    let id = tokio::time::timeout(Duration::from_secs(30), delivered.recv())
        .await
        .expect("delivered in time")
        .expect("a delivery");
    task.abort();
    assert_eq!(id, stored_messages(&api.core)[0].id);
    let text = std::fs::read_to_string(files.path_of(id)).expect("file");
    assert!(text.contains("To: ana@example.com"));
    assert!(!text.contains(&face_b64()[..40]), "no selfie in messages");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A minimal SMTP server on 127.0.0.1 that accepts one message and returns what it got.
fn smtp_server() -> (u16, std::thread::JoinHandle<String>) {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("a client");
        // A client that stops talking ends the session (and the test) instead of hanging.
        stream
            .set_read_timeout(Some(crate::bounded::PATIENCE))
            .expect("read timeout");
        let mut out = stream.try_clone().expect("clone");
        let mut lines = BufReader::new(stream);
        let mut say = |text: &str| {
            out.write_all(format!("{text}\r\n").as_bytes())
                .expect("write")
        };
        say("220 test ESMTP");
        let mut received = String::new();
        let mut in_data = false;
        loop {
            let mut line = String::new();
            if lines.read_line(&mut line).expect("read") == 0 {
                break;
            }
            received.push_str(&line);
            if in_data {
                if line == ".\r\n" {
                    in_data = false;
                    say("250 queued");
                }
                continue;
            }
            let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
            match verb.as_str() {
                "EHLO" | "HELO" => say("250 test"),
                "DATA" => {
                    in_data = true;
                    say("354 go on");
                }
                "QUIT" => {
                    say("221 bye");
                    break;
                }
                _ => say("250 ok"),
            }
        }
        received
    });
    (port, handle)
}

#[tokio::test]
async fn the_smtp_sender_delivers_an_e_mail_with_the_outbox_id_as_message_id() {
    let api = Api::start().await;
    let ana = person(&api, "E-1").await;
    invite(&api, ana, json!({"send_by_email": true})).await.id();
    let (port, server) = smtp_server();
    let smtp = acs_core::notify::smtp::SmtpSender::new(
        &format!("smtp://127.0.0.1:{port}"),
        "ACS <acs@example.com>",
    )
    .expect("smtp sender");
    let senders = Senders::all(Arc::new(smtp));
    assert_eq!(deliver_due(&api.core, &senders).await.expect("delivery"), 1);
    let message = &stored_messages(&api.core)[0];
    assert_eq!(message.status.as_str(), "sent", "{message:?}");
    let received = crate::bounded::bounded(
        "the SMTP server to end its session",
        tokio::task::spawn_blocking(move || server.join().expect("server")),
    )
    .await
    .expect("join");
    assert!(received.contains("RCPT TO:<ana@example.com>"), "{received}");
    assert!(
        received.contains(&format!("<acs-outbox-{}@example.com>", message.id)),
        "{received}"
    );
    assert!(received.contains("Subject: Enroll your face for door access"));
}
