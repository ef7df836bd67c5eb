//! The real binary on PostgreSQL: `acs-core tenant create` and `acs-core serve` with
//! `--db postgres://…`, a person and a credential created over HTTP, a duplicate card
//! refused, and a restarted process that still has everything.

use std::process::Command;

use serde_json::{Value as Json, json};

use super::PgDatabase;
use crate::api_process::{run_to_completion, serve_with};
use crate::bounded::http_client;

const BIN: &str = env!("CARGO_BIN_EXE_acs-core");

/// Creates the tenant `acme` with the CLI; its API key.
pub(crate) fn tenant(url: &str, key_file: &std::path::Path) -> String {
    let mut command = Command::new(BIN);
    command
        .args([
            "tenant", "create", "--slug", "acme", "--name", "Acme", "--db", url,
        ])
        .arg("--secret-key-file")
        .arg(key_file)
        .env_remove("ACS_CORE_SECRET_KEY");
    let (success, stdout, stderr) = run_to_completion(&mut command, "acs-core tenant create");
    assert!(success, "{stderr}");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("API key (shown once): "))
        .expect("the key is printed")
        .trim()
        .to_owned()
}

async fn post(client: &reqwest::Client, url: String, key: &str, body: Json) -> (u16, Json) {
    let reply = client
        .post(url)
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("reply");
    let status = reply.status().as_u16();
    (status, reply.json().await.unwrap_or(Json::Null))
}

async fn get(client: &reqwest::Client, url: String, key: &str) -> (u16, Json) {
    let reply = client
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .expect("reply");
    let status = reply.status().as_u16();
    (status, reply.json().await.unwrap_or(Json::Null))
}

#[tokio::test]
async fn serve_on_postgres_keeps_data_across_a_restart() {
    let Some(database) = PgDatabase::create("store::process") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("acs-core-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let key_file = dir.join("secrets.key");
    let key_arg = key_file.to_str().expect("UTF-8 path");
    let outbox = dir.join("outbox");
    let more = [
        "--secret-key-file",
        key_arg,
        "--outbox-dir",
        outbox.to_str().expect("UTF-8 path"),
        "--no-sync",
    ];
    let url = database.url.as_str();

    // Without a key the CLI refuses to open a PostgreSQL database.
    let mut keyless = Command::new(BIN);
    keyless
        .args(["migrate", "--db", url])
        .env_remove("ACS_CORE_SECRET_KEY")
        .env_remove("ACS_CORE_SECRET_KEY_FILE");
    let (success, _, stderr) = run_to_completion(&mut keyless, "acs-core migrate");
    assert!(!success && stderr.contains("--secret-key-file"), "{stderr}");

    let api_key = tenant(url, &key_file);
    assert!(key_file.exists(), "the key file is created on first use");
    let client = http_client();
    let (child, base) = serve_with(url.as_ref(), &dir.join("serve.log"), &more);
    let (status, person) = post(
        &client,
        format!("{base}/v1/people"),
        &api_key,
        json!({"acs_id": "PG-1", "name": "Ana"}),
    )
    .await;
    assert_eq!(status, 201, "{person}");
    let person_id = person["id"].as_u64().expect("person id");
    let card = json!({"kind": "card", "facility_code": 12, "card_number": 3456});
    let (status, credential) = post(
        &client,
        format!("{base}/v1/people/{person_id}/credentials"),
        &api_key,
        card.clone(),
    )
    .await;
    assert_eq!(status, 201, "{credential}");
    let credential_id = credential["id"].as_u64().expect("credential id");
    let (status, clash) = post(
        &client,
        format!("{base}/v1/people/{person_id}/credentials"),
        &api_key,
        card,
    )
    .await;
    assert_eq!(status, 409, "the same card twice: {clash}");
    drop(child);

    let (child, base) = serve_with(url.as_ref(), &dir.join("serve-again.log"), &more);
    let (status, again) = get(&client, format!("{base}/v1/people/{person_id}"), &api_key).await;
    assert_eq!((status, &again["acs_id"]), (200, &json!("PG-1")), "{again}");
    let (status, again) = get(
        &client,
        format!("{base}/v1/credentials/{credential_id}"),
        &api_key,
    )
    .await;
    assert_eq!(
        (status, &again["person_id"]),
        (200, &json!(person_id)),
        "{again}"
    );
    drop(child);

    let log = std::fs::read_to_string(dir.join("serve.log")).expect("log");
    assert!(!log.contains(&api_key), "the API key is never logged");
    let _ = std::fs::remove_dir_all(&dir);
}
