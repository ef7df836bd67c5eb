//! The simulator over a real loopback socket: spawn, sessions from query or cookie,
//! shutdown, and the state file surviving a restart.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use acs_simulator::{ManualTime, Simulator, TimeSource};
use serde_json::{Value as Json, json};
use tokio::net::TcpListener;

use crate::support::{TEST_EPOCH, pct};

async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback")
}

fn temp_state_file() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "acs-sim-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join("device.json")
}

async fn post(client: &reqwest::Client, url: String, body: Json) -> (u16, Json) {
    let r = client.post(url).json(&body).send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Json::Null))
}

/// A session of the factory login on the simulator at `base`, percent-encoded for a query.
async fn session(client: &reqwest::Client, base: &str) -> String {
    let (status, login) = post(
        client,
        format!("{base}/login.fcgi"),
        json!({"login": "admin", "password": "admin"}),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    pct(login["session"].as_str().expect("a session"))
}

#[tokio::test]
async fn serves_sessions_over_http() {
    let sim = Simulator::builder()
        .seed(1)
        .spawn(listener().await)
        .await
        .unwrap();
    let base = sim.base_url();
    assert!(base.starts_with("http://127.0.0.1:"));
    let client = reqwest::Client::new();
    let (status, login) = post(
        &client,
        format!("{base}/login.fcgi"),
        json!({"login": "admin", "password": "admin"}),
    )
    .await;
    assert_eq!(status, 200);
    let token = login["session"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 24);

    // Raw and percent-encoded query tokens, and a cookie alone, all work.
    for url in [
        format!("{base}/load_objects.fcgi?session={token}"),
        format!("{base}/load_objects.fcgi?session={}", pct(&token)),
    ] {
        let (status, body) = post(&client, url, json!({"object": "groups"})).await;
        assert_eq!(status, 200, "{body}");
    }
    let r = client
        .post(format!("{base}/load_objects.fcgi"))
        .header("Cookie", format!("login=admin; session={token}"))
        .json(&json!({"object": "groups"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    let r = client
        .get(format!("{base}/logout.fcgi?session={}", pct(&token)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (status, body) = post(
        &client,
        format!("{base}/load_objects.fcgi?session={}", pct(&token)),
        json!({"object": "groups"}),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            401,
            json!({"error": "Invalid access level for command load_objects", "code": 1})
        )
    );
    assert!(
        sim.journal()
            .entries()
            .iter()
            .all(|e| !e.query.contains(&token))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let sim = Simulator::builder().spawn(listener().await).await.unwrap();
    let addr = sim.addr();
    drop(sim);
    // Graceful shutdown completes in the background: retry connecting (yielding, no
    // sleeps) until refused, with a generous upper bound so a regression fails, not hangs.
    let refused = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(refused.is_ok(), "listener still accepting after drop");
}

#[tokio::test]
async fn state_file_survives_a_restart() {
    let path = temp_state_file();
    let time = ManualTime::starting_at(TEST_EPOCH);
    let start = || {
        Simulator::builder()
            .seed(3)
            .time(TimeSource::Manual(time.clone()))
            .state_file(path.clone())
    };
    let sim = start().spawn(listener().await).await.unwrap();
    let client = reqwest::Client::new();
    let base = sim.base_url();
    let s = session(&client, &base).await;
    let (status, _) = post(
        &client,
        format!("{base}/create_objects.fcgi?session={s}"),
        json!({"object": "users", "values": [{"id": 7, "name": "Ana"}]}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(&client, format!("{base}/create_objects.fcgi?session={s}"), json!({"object": "cards", "values": [{"value": 18_446_744_073_709_551_615_u64, "user_id": 7}]})).await;
    assert_eq!(status, 200);
    let (status, _) = post(
        &client,
        format!("{base}/set_configuration.fcgi?session={s}"),
        json!({"monitor": {"hostname": "10.1.2.3"}}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(
        &client,
        format!("{base}/change_login.fcgi?session={s}"),
        json!({"login": "root", "password": "pw"}),
    )
    .await;
    assert_eq!(status, 200);
    let identity = sim.device().identity();
    sim.shutdown().await;
    assert!(path.exists());
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");

    let sim = start().spawn(listener().await).await.unwrap();
    assert_eq!(sim.device().identity(), identity);
    assert_eq!(sim.device().rows("users").unwrap()[0]["name"], "Ana");
    assert_eq!(
        sim.device().rows("cards").unwrap()[0]["value"].to_string(),
        "18446744073709551615"
    );
    assert_eq!(
        sim.device().config_value("monitor", "hostname").as_deref(),
        Some("10.1.2.3")
    );
    assert!(sim.device().login("root", "pw").is_ok());
    assert_eq!(
        sim.device().session_count(),
        1,
        "sessions are not persisted"
    );
    sim.shutdown().await;
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

#[tokio::test]
async fn a_corrupt_state_file_is_reported_not_overwritten() {
    let path = temp_state_file();
    std::fs::write(&path, b"{ torn").unwrap();
    let err = Simulator::builder()
        .state_file(path.clone())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("not valid"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"{ torn");
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

#[tokio::test]
async fn the_change_log_is_replayed_and_a_record_cut_short_is_dropped() {
    let path = temp_state_file();
    let sim = Simulator::builder()
        .seed(4)
        .state_file(path.clone())
        .spawn(listener().await)
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let base = sim.base_url();
    let s = session(&client, &base).await;
    for (body, status) in [
        (
            json!({"object": "users", "values": [{"id": 7, "name": "Ana"}]}),
            200,
        ),
        (
            json!({"object": "c_users", "values": [{"user_id": 7, "cpf": "123"}]}),
            200,
        ),
    ] {
        let (got, _) = post(
            &client,
            format!("{base}/create_objects.fcgi?session={s}"),
            body,
        )
        .await;
        assert_eq!(got, status);
    }
    let (got, _) = post(
        &client,
        format!("{base}/set_configuration.fcgi?session={s}"),
        json!({"monitor": {"hostname": "10.9.8.7"}}),
    )
    .await;
    assert_eq!(got, 200);
    let photo = client
        .post(format!(
            "{base}/user_set_image.fcgi?session={s}&user_id=7&match=0&timestamp=5"
        ))
        .header("Content-Type", "application/octet-stream")
        .body(crate::support::jpeg(3))
        .send()
        .await
        .unwrap();
    assert_eq!(photo.status().as_u16(), 200);
    // What a crash now would leave: the snapshot of the start and the acknowledged changes
    // in the log – plus, here, half a record that was being written.
    let wal = acs_simulator::persist::log_path(&path);
    let crashed = path.with_file_name("crashed.json");
    std::fs::copy(&path, &crashed).unwrap();
    let mut log = std::fs::read(&wal).unwrap();
    let good = log.len();
    assert!(
        log.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count() >= 3,
        "one record per acknowledged change"
    );
    log.extend_from_slice(br#"{"seq":99,"tables":{"users":{"rows":[[8,["#);
    std::fs::write(acs_simulator::persist::log_path(&crashed), &log).unwrap();
    sim.shutdown().await;

    let restarted = Simulator::builder()
        .seed(4)
        .state_file(crashed.clone())
        .build()
        .unwrap();
    let device = restarted.device();
    let users = device.rows("users").unwrap();
    assert_eq!(users.len(), 1, "user 8 was never acknowledged");
    assert_eq!(users[0]["name"], "Ana");
    assert_eq!(device.rows("c_users").unwrap()[0]["cpf"], "123");
    assert_eq!(
        device.config_value("monitor", "hostname").as_deref(),
        Some("10.9.8.7")
    );
    assert_eq!(device.list_images(), vec![(7, 5)]);
    assert_eq!(device.user_image(7).unwrap().0, crate::support::jpeg(3));
    assert_eq!(
        std::fs::metadata(acs_simulator::persist::log_path(&crashed))
            .unwrap()
            .len(),
        u64::try_from(good).unwrap(),
        "the torn record is cut off, so later records follow a complete line"
    );
    // A clean shutdown folds the log into the snapshot.
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

#[tokio::test]
async fn a_factory_reset_is_on_disk_when_it_is_acknowledged() {
    let path = temp_state_file();
    let sim = Simulator::builder()
        .state_file(path.clone())
        .spawn(listener().await)
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let base = sim.base_url();
    let s = session(&client, &base).await;
    let users = json!({"object": "users", "values": [{"id": 1}, {"id": 2}]});
    let (got, _) = post(
        &client,
        format!("{base}/create_objects.fcgi?session={s}"),
        users,
    )
    .await;
    assert_eq!(got, 200);
    let (got, _) = post(
        &client,
        format!("{base}/reset_to_factory_default.fcgi?session={s}"),
        json!({}),
    )
    .await;
    assert_eq!(got, 200);
    // Acknowledged: a copy of the files now is what a crash would leave.
    let crashed = path.with_file_name("crashed.json");
    std::fs::copy(&path, &crashed).unwrap();
    std::fs::copy(
        acs_simulator::persist::log_path(&path),
        acs_simulator::persist::log_path(&crashed),
    )
    .unwrap();
    sim.shutdown().await;
    let restarted = Simulator::builder().state_file(crashed).build().unwrap();
    assert!(restarted.device().rows("users").unwrap().is_empty());
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_from_many_connections_at_once_each_apply_once_beside_reads() {
    // Writes take turns before the device's lock (once they have read their bodies),
    // reads do not: sixteen clients each create users a few at a time and rename
    // them in one modify, while four others count them; every write applies once and
    // every read answers.
    let sim = Simulator::builder()
        .seed(3)
        .spawn(listener().await)
        .await
        .unwrap();
    let base = sim.base_url();
    let client = reqwest::Client::new();
    let token = session(&client, &base).await;
    const WRITERS: i64 = 16;
    const USERS_EACH: i64 = 25;
    let writers = (0..WRITERS).map(|w| {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        tokio::spawn(async move {
            let first = 1_000 + w * USERS_EACH;
            // One user, then two, three, … in a request.
            let (mut id, mut size) = (first, 1);
            while id < first + USERS_EACH {
                let ids: Vec<i64> = (id..(id + size).min(first + USERS_EACH)).collect();
                let users: Vec<Json> = ids
                    .iter()
                    .map(|id| json!({"id": id, "name": format!("writer {w}"), "registration": ""}))
                    .collect();
                let (status, reply) = post(
                    &client,
                    format!("{base}/create_objects.fcgi?session={token}"),
                    json!({"object": "users", "values": users}),
                )
                .await;
                assert_eq!((status, &reply["ids"]), (200, &json!(ids)));
                id += size;
                size += 1;
            }
            let (status, reply) = post(
                &client,
                format!("{base}/modify_objects.fcgi?session={token}"),
                json!({"object": "users", "values": {"name": format!("renamed {w}")},
                       "where": {"users": {"id": {">=": first, "<": first + USERS_EACH}}}}),
            )
            .await;
            assert_eq!((status, &reply["changes"]), (200, &json!(USERS_EACH)));
        })
    });
    let writers: Vec<_> = writers.collect();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            tokio::spawn(async move {
                for _ in 0..50 {
                    let (status, reply) = post(
                        &client,
                        format!("{base}/load_objects.fcgi?session={token}"),
                        json!({"object": "users", "fields": ["COUNT(*)"]}),
                    )
                    .await;
                    assert_eq!(status, 200);
                    let count = reply["users"][0]["COUNT(*)"].as_i64().expect("a count");
                    assert!((0..=WRITERS * USERS_EACH).contains(&count), "{count}");
                }
            })
        })
        .collect();
    for task in writers.into_iter().chain(readers) {
        task.await.expect("client task");
    }
    let (_, reply) = post(
        &client,
        format!("{base}/load_objects.fcgi?session={token}"),
        json!({"object": "users", "order": ["id"]}),
    )
    .await;
    let users = reply["users"].as_array().expect("users");
    assert_eq!(users.len() as i64, WRITERS * USERS_EACH);
    for (n, user) in users.iter().enumerate() {
        let n = n as i64;
        assert_eq!(user["id"], json!(1_000 + n));
        assert_eq!(user["name"], json!(format!("renamed {}", n / USERS_EACH)));
    }
    let (_, reply) = post(
        &client,
        format!("{base}/load_objects.fcgi?session={token}"),
        json!({"object": "change_logs", "fields": ["COUNT(*)"]}),
    )
    .await;
    // One entry a created user and one a renamed one.
    assert_eq!(
        reply["change_logs"][0]["COUNT(*)"],
        json!(2 * WRITERS * USERS_EACH)
    );
    sim.shutdown().await;
}
