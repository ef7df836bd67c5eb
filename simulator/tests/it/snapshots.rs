//! Snapshots of representative replies, taken through the router without sockets.
//! The device runs on a manual clock with a fixed seed, so replies are reproducible;
//! only the session token is redacted.

use axum::http::Method;
use serde_json::json;

use crate::support::{TestDevice, jpeg, pct};

#[tokio::test]
async fn login_reply() {
    let d = TestDevice::idface();
    let r = d
        .post(
            "login",
            None,
            &json!({"login": "admin", "password": "admin"}),
        )
        .await;
    insta::assert_json_snapshot!(r.json(), {".session" => "[token]"});
    let r = d
        .post(
            "login",
            None,
            &json!({"login": "admin", "password": "nope"}),
        )
        .await;
    assert_eq!(r.status, 401);
    insta::assert_json_snapshot!("login_wrong_password", r.json());
}

#[tokio::test]
async fn system_information_per_model() {
    for model in acs_simulator::Model::ALL {
        let d = TestDevice::new(model);
        let r = d.post("system_information", None, &json!({})).await;
        insta::assert_json_snapshot!(format!("system_information_{}", model.cli_name()), r.json());
    }
}

#[tokio::test]
async fn factory_tables() {
    let d = TestDevice::idface();
    let s = d.login().await;
    for table in [
        "groups",
        "access_rules",
        "time_zones",
        "time_spans",
        "areas",
        "portals",
        "actions",
        "sec_boxs",
        "devices",
    ] {
        let r = d
            .post("load_objects", Some(&s), &json!({"object": table}))
            .await;
        insta::assert_json_snapshot!(format!("factory_{table}"), r.json());
    }
}

#[tokio::test]
async fn objects_round_trip() {
    let d = TestDevice::idface();
    let s = d.login().await;
    let created = d
        .post("create_objects", Some(&s), &json!({"object": "users", "values": [
            {"name": "Ana", "registration": "1"}, {"id": 40, "name": "Bruno", "registration": "2"}]}))
        .await;
    insta::assert_json_snapshot!("create_users", created.json());
    let cards = d
        .post(
            "create_objects",
            Some(&s),
            &json!({"object": "cards", "values": [
            {"value": 528_281_023_086_u64, "user_id": 1}, {"value": u64::MAX, "user_id": 40}]}),
        )
        .await;
    insta::assert_json_snapshot!("create_cards", cards.json());
    let joined = d
        .post(
            "load_objects",
            Some(&s),
            &json!({"object": "cards",
            "fields": ["id", "value", {"object": "users", "field": "name"}],
            "where": {"users": {"registration": ["1", "2"]}}, "order": ["descending", "value"]}),
        )
        .await;
    insta::assert_json_snapshot!("load_cards_joined_with_users", joined.json());
    let count = d
        .post(
            "load_objects",
            Some(&s),
            &json!({"object": "cards", "fields": ["COUNT(*)"]}),
        )
        .await;
    insta::assert_json_snapshot!("count_cards", count.json());
    let upsert = d
        .post(
            "create_or_modify_objects",
            Some(&s),
            &json!({"object": "users", "values": [
            {"id": 40, "name": "Bruno B."}, {"name": "Carla"}]}),
        )
        .await;
    insta::assert_json_snapshot!("create_or_modify_users", upsert.json());
}

#[tokio::test]
async fn image_replies() {
    let d = TestDevice::idface();
    let s = d.login().await;
    d.post(
        "create_objects",
        Some(&s),
        &json!({"object": "users", "values": [{"id": 1}, {"id": 2}]}),
    )
    .await;
    let photo = jpeg(3);
    let set = |user: i64| {
        format!(
            "/user_set_image.fcgi?session={}&user_id={user}&match=1&timestamp=1700000000",
            pct(&s)
        )
    };
    let ok = d
        .send(
            Method::POST,
            &set(1),
            &[("content-type", "application/octet-stream")],
            photo.clone(),
        )
        .await;
    insta::assert_json_snapshot!("user_set_image_ok", ok.json());
    let dup = d
        .send(
            Method::POST,
            &set(2),
            &[("content-type", "application/octet-stream")],
            photo,
        )
        .await;
    insta::assert_json_snapshot!("user_set_image_face_exists", dup.json());
    let list = d
        .send(
            Method::GET,
            &format!("/user_list_images.fcgi?session={}&get_timestamp=1", pct(&s)),
            &[],
            Vec::new(),
        )
        .await;
    insta::assert_json_snapshot!("user_list_images_with_timestamps", list.json());
}

#[tokio::test]
async fn configuration_replies() {
    let d = TestDevice::idface();
    let s = d.login().await;
    let r = d
        .post(
            "get_configuration",
            Some(&s),
            &json!({"general": ["online", "local_identification", "keep_user_image"],
            "monitor": ["hostname", "port", "path", "request_timeout", "alive_interval"]}),
        )
        .await;
    insta::assert_json_snapshot!("get_configuration_defaults", r.json());
}
