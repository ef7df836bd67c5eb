//! Secrets at rest: after a full workflow (a member with a PIN, a QR code and a cloud key
//! with a PIN, a revoked PIN, a selfie invitation, messages delivered to the file outbox,
//! sync to a simulated terminal) the database file, its log and the outbox hold none of the
//! secrets in clear, and the files are private; a database an earlier version wrote in
//! clear is converted by `acs-core migrate` (twice, the second time changing nothing) and
//! then still decides with the PIN, opens the cloud key with token and PIN and pushes the
//! PIN to a terminal.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use acs_core::notify::Senders;
use acs_core::notify::delivery::deliver_due;
use acs_core::notify::file::{FileSender, open_body};
use acs_core::store::seal::SecretKey;
use acs_core::store::{SealedStore, SqliteStore, Store};
use acs_core::sync::{SyncEngine, SyncOptions};
use acs_core::{Clock, Core};
use acs_simulator::{RunningSimulator, Simulator, TimeMode};
use serde_json::{Value as Json, json};

use crate::api_support::{Api, START, venue_at};
use crate::bounded::board_until;

/// Secrets chosen so that they cannot occur by chance in a database or a message file.
const PIN: &str = "73829164";
const REVOKED_PIN: &str = "61937402";
/// The revoked PIN of a person no entitlement names (found only by its revoked trace).
const FILED_PIN: &str = "50718293";
const QR: &str = "QR-7fK2pX9vLq4ZtW";
const CLOUD_PIN: &str = "58204917";
const DEVICE_PASSWORD: &str = "dev-pw-Hq83ZkT5";
/// What is not secret, and must be found by the same scan (so the scan reads the files).
const ACS_ID: &str = "SAR-PERSON-9Q7";

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("acs-core-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

/// A simulated terminal (`seed` gives it its own device id) with the distinctive password.
async fn simulator(seed: u64) -> RunningSimulator {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    Simulator::builder()
        .time_mode(TimeMode::Scaled(0.0))
        .credentials("admin", DEVICE_PASSWORD)
        .seed(seed)
        .spawn(listener)
        .await
        .expect("simulator")
}

fn engine(core: &Core) -> SyncEngine {
    SyncEngine::spawn(
        core.clone(),
        SyncOptions {
            retry_initial: Duration::from_millis(20),
            retry_max: Duration::from_millis(200),
            ..SyncOptions::default()
        },
    )
}

/// Waits until `terminal` is in sync with `people` people on it.
async fn in_sync(engine: &SyncEngine, terminal: u64, people: usize) {
    board_until(
        engine.board(),
        format_args!("terminal {terminal} in sync with {people} people"),
        |board| {
            board.iter().any(|((_, t), s)| {
                t.get() == terminal && s.in_sync && s.pending == 0 && s.people == people
            })
        },
    )
    .await;
}

/// The PINs the simulated terminal holds.
fn pins_on(sim: &RunningSimulator) -> Vec<String> {
    sim.device()
        .rows("pins")
        .expect("pins")
        .iter()
        .filter_map(|r| r.get("value").and_then(Json::as_str).map(str::to_owned))
        .collect()
}

/// Everything a person needs, issued through the API: `(person, cloud-key token)`.
async fn member_with_secrets(api: &Api) -> (u64, String) {
    let person = api
        .post(
            "/v1/people",
            json!({"acs_id": ACS_ID, "name": "Ana Lima", "email": "ana@example.com",
                   "phone_number": "+34 600 123 456"}),
        )
        .await
        .id();
    let credentials = format!("/v1/people/{person}/credentials");
    let pin = api
        .post(&credentials, json!({"kind": "pin", "pin": PIN}))
        .await;
    assert_eq!(pin.status, 201, "{}", pin.json);
    let qr = api
        .post(&credentials, json!({"kind": "qr", "qr": QR}))
        .await;
    assert_eq!(qr.status, 201, "{}", qr.json);
    let revoked = api
        .post(&credentials, json!({"kind": "pin", "pin": REVOKED_PIN}))
        .await
        .id();
    let revoke = api
        .post(
            &format!("/v1/credentials/{revoked}/revoke"),
            json!({"reason": "damaged"}),
        )
        .await;
    assert!(revoke.status < 300, "{}", revoke.json);
    // With an idempotency key: the reply showing the token once is stored for a repeat.
    let cloud = api
        .send_as(
            Some(&api.key),
            "POST",
            &credentials,
            Some(
                &json!({"kind": "cloud_key", "pin": CLOUD_PIN, "send_by_email": true,
                   "send_by_text": true}),
            ),
            Some("issue-cloud-key-1"),
        )
        .await;
    assert_eq!(cloud.status, 201, "{}", cloud.json);
    let token = cloud.json["token"].as_str().expect("token").to_owned();
    let repeated = api
        .send_as(
            Some(&api.key),
            "POST",
            &credentials,
            Some(
                &json!({"kind": "cloud_key", "pin": CLOUD_PIN, "send_by_email": true,
                   "send_by_text": true}),
            ),
            Some("issue-cloud-key-1"),
        )
        .await;
    assert_eq!(
        repeated.json["token"],
        json!(token),
        "the stored reply opens"
    );
    api.post("/v1/members", json!({"person_id": person}))
        .await
        .id();
    let filed = api
        .post(
            "/v1/people",
            json!({"acs_id": "SAR-FILED-3", "name": "Rui"}),
        )
        .await
        .id();
    let filed_pin = api
        .post(
            &format!("/v1/people/{filed}/credentials"),
            json!({"kind": "pin", "pin": FILED_PIN}),
        )
        .await
        .id();
    let revoke = api
        .post(
            &format!("/v1/credentials/{filed_pin}/revoke"),
            json!({"reason": "damaged"}),
        )
        .await;
    assert!(revoke.status < 300, "{}", revoke.json);
    (person, token)
}

/// The reason a filed person's revoked PIN is refused with: found by its revoked trace (a
/// keyed digest at rest), so `credential_revoked` rather than an unknown credential.
async fn filed_pin_reason(api: &Api, door: u64) -> Json {
    let reply = api
        .post(
            "/v1/decisions",
            json!({"door_id": door, "factors": [{"pin": FILED_PIN}]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    reply.json["reason_code"].clone()
}

/// Every secret of the workflow still does its work, read through its sealed or digested
/// form: the PIN and QR grant, the revoked PIN is denied and its holder still found, the
/// cloud key lists its door, the invitation is found by its token.
async fn every_secret_still_works(api: &Api, door: u64, token: &str, invitation_token: &str) {
    assert_eq!(decide(api, door, json!({"pin": PIN})).await, "granted");
    assert_eq!(decide(api, door, json!({"qr": QR})).await, "granted");
    assert_eq!(
        decide(api, door, json!({"pin": REVOKED_PIN})).await,
        "denied"
    );
    assert_eq!(filed_pin_reason(api, door).await, "credential_revoked");
    assert_eq!(
        cloud_key_doors(api, token, CLOUD_PIN).await[0]["door_id"],
        door
    );
    let page = api
        .send_as(
            None,
            "GET",
            &format!("/public/selfie-invitations/{invitation_token}"),
            None,
            None,
        )
        .await;
    assert_eq!(page.status, 200, "the invitation is found by its token");
}

/// Decides at `door` with `factor` through the API: the result.
async fn decide(api: &Api, door: u64, factor: Json) -> String {
    let reply = api
        .post(
            "/v1/decisions",
            json!({"door_id": door, "factors": [factor]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    reply.json["result"].as_str().expect("result").to_owned()
}

/// The doors the cloud key opens now, asked as its holder does.
async fn cloud_key_doors(api: &Api, token: &str, pin: &str) -> Json {
    let reply = api
        .send_as(
            None,
            "POST",
            &format!("/public/cloud-keys/{token}/doors"),
            Some(&json!({"pin": pin})),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    reply.json["doors"].clone()
}

/// The database file, its log and index, and every file of the outbox directory.
fn files_to_scan(db: &Path, outbox: Option<&Path>) -> Vec<PathBuf> {
    let mut files = vec![db.to_owned()];
    for suffix in ["-wal", "-shm"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        files.push(PathBuf::from(path));
    }
    if let Some(dir) = outbox {
        for entry in std::fs::read_dir(dir).expect("outbox dir") {
            files.push(entry.expect("entry").path());
        }
    }
    files.into_iter().filter(|f| f.exists()).collect()
}

/// The files (of `files`) whose bytes contain `needle`.
fn holding(files: &[PathBuf], needle: &str) -> Vec<PathBuf> {
    files
        .iter()
        .filter(|f| {
            let bytes = std::fs::read(f).expect("readable");
            bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        })
        .cloned()
        .collect()
}

/// Copies the log back into the database file (as the checkpoint thread does).
fn checkpoint(db: &Path) {
    let conn = rusqlite::Connection::open(db).expect("open");
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn a_full_workflow_leaves_no_secret_in_the_database_log_or_outbox() {
    let dir = temp_dir("secrets-at-rest");
    let db = dir.join("acs.db");
    let outbox = dir.join("acs.db.outbox");
    let key = SecretKey::generate();
    let sqlite = SqliteStore::open(&db).expect("db");
    sqlite.convert_secrets(&key).expect("nothing to convert");
    let store: Arc<dyn Store> = Arc::new(SealedStore::new(sqlite, key.clone()));
    let core = Core::with_clock(store, Clock::manual(START.parse().expect("instant")));
    let (_, api_key) = core.create_tenant("acme", "Acme").await.expect("tenant");
    let api = Api::serve(core.clone(), api_key.secret).await;
    let sim = simulator(77).await;
    let (_, _, door, terminal) = venue_at(&api, &sim.base_url(), DEVICE_PASSWORD).await;
    let engine = engine(&core);

    let (person, token) = member_with_secrets(&api).await;
    let invitation = api
        .post(
            &format!("/v1/people/{person}/selfie-invitations"),
            json!({"send_by_email": true}),
        )
        .await;
    assert_eq!(invitation.status, 201, "{}", invitation.json);
    let link = invitation.json["link"].as_str().expect("link").to_owned();
    let invitation_token = link.rsplit('/').next().expect("token").to_owned();
    assert!(invitation_token.len() >= 16, "{link}");

    // Everything works on the sealed and digested values.
    assert_eq!(
        decide(
            &api,
            door,
            json!({"cloud_key": {"token": token, "pin": CLOUD_PIN}})
        )
        .await,
        "granted"
    );
    every_secret_still_works(&api, door, &token, &invitation_token).await;
    in_sync(&engine, terminal, 1).await;
    assert_eq!(
        pins_on(&sim),
        [PIN],
        "the PIN reaches the terminal in clear"
    );

    // The messages go to the outbox directory, sealed.
    let senders = Senders::all(Arc::new(FileSender::sealed(&outbox, key.clone())));
    assert_eq!(deliver_due(&core, &senders).await.expect("delivery"), 3);
    let (mail_path, cloud_key_mail) = std::fs::read_dir(&outbox)
        .expect("outbox")
        .map(|e| {
            let path = e.expect("entry").path();
            let text = std::fs::read_to_string(&path).expect("message");
            (path, text)
        })
        .find(|(_, text)| {
            text.contains("Cause: cloud_key.issued") && text.contains("Channel: email")
        })
        .expect("the cloud key's e-mail");
    let opened = open_body(&cloud_key_mail, &key).expect("opens with the key");
    assert!(
        opened.contains(&token) && opened.contains(CLOUD_PIN),
        "{opened}"
    );
    assert!(open_body(&cloud_key_mail, &SecretKey::generate()).is_err());
    let printed = acs_core(
        &["outbox", "open", mail_path.to_str().expect("utf-8 path")],
        &db,
        &key,
    );
    assert_eq!(printed, opened, "acs-core outbox open");

    engine.shutdown().await;
    sim.shutdown().await;
    drop(api);
    checkpoint(&db);

    let files = files_to_scan(&db, Some(&outbox));
    assert!(
        files.len() >= 4,
        "the database and three messages: {files:?}"
    );
    assert!(
        !holding(&files, ACS_ID).is_empty(),
        "the scan reads the files it should"
    );
    for secret in [
        PIN,
        REVOKED_PIN,
        FILED_PIN,
        QR,
        CLOUD_PIN,
        token.as_str(),
        invitation_token.as_str(),
        DEVICE_PASSWORD,
    ] {
        let found = holding(&files, secret);
        assert!(found.is_empty(), "a secret in clear in {found:?}");
    }

    #[cfg(unix)]
    {
        for file in files_to_scan(&db, None) {
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
        assert_eq!(mode(&outbox), 0o700);
        for file in files_to_scan(&db, Some(&outbox)) {
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
    }
    drop(core);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs the `acs-core` binary with `args` under `key`: its standard output.
fn acs_core(args: &[&str], db: &Path, key: &SecretKey) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_acs-core"))
        .args(args)
        .arg("--db")
        .arg(db)
        .env("ACS_CORE_SECRET_KEY", key.to_base64())
        .env("RUST_LOG", "warn")
        .output()
        .expect("acs-core runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The previous version's cloud key: token and PIN in clear in the record and the token in
/// clear in its unique key (this version digests them before they reach the store).
fn cloud_key_in_clear(db: &Path, digest_of_token: &str, token: &str) {
    let conn = rusqlite::Connection::open(db).expect("open");
    let (id, data): (i64, String) = conn
        .query_row(
            "SELECT id, data FROM records WHERE kind = 'credential'
             AND json_extract(data, '$.value.kind') = 'cloud_key'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the cloud key");
    let mut data: Json = serde_json::from_str(&data).expect("json");
    data["value"]["token"] = json!(token);
    data["value"]["pin"] = json!(CLOUD_PIN);
    conn.execute(
        "UPDATE records SET data = ?2 WHERE id = ?1",
        rusqlite::params![id, data.to_string()],
    )
    .expect("record in clear");
    let changed = conn
        .execute(
            "UPDATE unique_keys SET value = ?2 WHERE scope = 'cloud_key' AND value = ?1",
            rusqlite::params![digest_of_token, token],
        )
        .expect("claim in clear");
    assert_eq!(changed, 1);
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
}

#[tokio::test]
async fn migrate_converts_a_database_written_in_clear_and_the_core_still_works() {
    let dir = temp_dir("secrets-migrate");
    let db = dir.join("acs.db");
    let sim = simulator(77).await;

    // The previous version: everything stored as given, synced to a terminal.
    let (door, token, invitation_token, api_key) = {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).expect("db"));
        let core = Core::with_clock(store, Clock::manual(START.parse().expect("instant")));
        let (_, api_key) = core.create_tenant("acme", "Acme").await.expect("tenant");
        let api = Api::serve(core.clone(), api_key.secret.clone()).await;
        let (_, _, door, terminal) = venue_at(&api, &sim.base_url(), DEVICE_PASSWORD).await;
        let engine = engine(&core);
        let (person, token) = member_with_secrets(&api).await;
        let link = api
            .post(
                &format!("/v1/people/{person}/selfie-invitations"),
                json!({"send_by_email": true}),
            )
            .await
            .json["link"]
            .as_str()
            .expect("link")
            .to_owned();
        in_sync(&engine, terminal, 1).await;
        engine.shutdown().await;
        cloud_key_in_clear(&db, &core.digest(&token), &token);
        let invitation_token = link.rsplit('/').next().expect("token").to_owned();
        (door, token, invitation_token, api_key)
    };
    let files = files_to_scan(&db, None);
    for secret in [PIN, QR, CLOUD_PIN, token.as_str(), DEVICE_PASSWORD] {
        assert!(
            !holding(&files, secret).is_empty(),
            "the earlier version's database holds {secret} in clear"
        );
    }

    let key = SecretKey::generate();
    assert!(acs_core(&["migrate"], &db, &key).contains("sealed or digested"));
    assert!(acs_core(&["migrate"], &db, &key).contains("sealed or digested"));
    checkpoint(&db);
    let files = files_to_scan(&db, None);
    assert!(!holding(&files, ACS_ID).is_empty());
    for secret in [
        PIN,
        REVOKED_PIN,
        FILED_PIN,
        QR,
        CLOUD_PIN,
        token.as_str(),
        DEVICE_PASSWORD,
    ] {
        let found = holding(&files, secret);
        assert!(
            found.is_empty(),
            "a secret in clear after migrate in {found:?}"
        );
    }
    #[cfg(unix)]
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }

    // Another key is refused.
    let refused = Command::new(env!("CARGO_BIN_EXE_acs-core"))
        .args(["migrate", "--db"])
        .arg(&db)
        .env("ACS_CORE_SECRET_KEY", SecretKey::generate().to_base64())
        .output()
        .expect("acs-core runs");
    assert!(!refused.status.success());

    // The converted database, under its key: the PIN decides, the cloud key opens with
    // token and PIN, and the PIN reaches a terminal registered now.
    let sqlite = SqliteStore::open(&db).expect("db");
    assert!(sqlite.convert_secrets(&key).expect("same key").already);
    let store: Arc<dyn Store> = Arc::new(SealedStore::new(sqlite, key));
    let core = Core::with_clock(store, Clock::manual(START.parse().expect("instant")));
    let api = Api::serve(core.clone(), api_key.secret).await;
    every_secret_still_works(&api, door, &token, &invitation_token).await;
    let second = simulator(78).await;
    let facility = api.get(&format!("/v1/doors/{door}")).await.json["facility_id"].clone();
    let terminal = api
        .post(
            "/v1/terminals",
            json!({"facility_id": facility, "model": "idface", "address": second.base_url(),
                   "login": "admin", "password": DEVICE_PASSWORD, "door_ids": [door]}),
        )
        .await
        .id();
    let engine = engine(&core);
    in_sync(&engine, terminal, 1).await;
    assert_eq!(
        pins_on(&second),
        [PIN],
        "the sealed PIN reaches the terminal"
    );
    engine.shutdown().await;
    second.shutdown().await;
    sim.shutdown().await;
    drop(api);
    drop(core);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn a_new_database_its_log_and_key_file_are_private_whatever_the_umask() {
    let dir = temp_dir("secrets-modes");
    let db = dir.join("fresh.db");
    // A permissive umask, as a shell might have: the files are 0600 anyway.
    let out = Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" migrate --db \"$1\"")
        .arg(env!("CARGO_BIN_EXE_acs-core"))
        .arg(&db)
        .env_remove("ACS_CORE_SECRET_KEY")
        .env("RUST_LOG", "warn")
        .output()
        .expect("acs-core runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key_file = dir.join("fresh.db.key");
    let key = SecretKey::from_base64(&std::fs::read_to_string(&key_file).expect("key file"))
        .expect("a key");
    assert_eq!(mode(&key_file), 0o600);
    let files = files_to_scan(&db, None);
    assert!(!files.is_empty());
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    // The key file's key is the database's: it opens it; another is refused.
    let sqlite = SqliteStore::open(&db).expect("db");
    assert!(sqlite.convert_secrets(&key).expect("its key").already);
    assert!(sqlite.convert_secrets(&SecretKey::generate()).is_err());
    drop(sqlite);
    let _ = std::fs::remove_dir_all(&dir);
}
