//! Fleets: sixty terminals in one process on their own loopback ports, distinct
//! identities, a manifest that round-trips, and fleet-wide control (power, clock skew,
//! selections) through the library and the `/_fleet/` HTTP API.

use std::collections::HashSet;

use acs_simulator::{
    Fleet, Manifest, ManualTime, Model, RunningFleet, Scheduler, Selection, Simulator, TimeSource,
};
use serde_json::{Value as Json, json};

use crate::support::TEST_EPOCH;

const COUNT: usize = 60;

async fn fleet() -> RunningFleet {
    let template = Simulator::builder()
        .credentials("fleet", "s3cret")
        .time(TimeSource::Manual(ManualTime::starting_at(TEST_EPOCH)))
        .shared_scheduler(Scheduler::manual());
    Fleet::builder(COUNT)
        .template(template)
        .models([Model::IdFace, Model::IdAccess, Model::IdFlex])
        .seed(100)
        .spawn()
        .await
        .expect("fleet starts")
}

async fn login(client: &reqwest::Client, url: &str) -> reqwest::Result<Json> {
    client
        .post(format!("{url}/login.fcgi"))
        .json(&json!({"login": "fleet", "password": "s3cret"}))
        .send()
        .await?
        .json()
        .await
}

#[tokio::test]
async fn sixty_terminals_have_distinct_identities_and_all_answer() {
    let fleet = fleet().await;
    let manifest = fleet.manifest();
    assert_eq!(manifest.devices.len(), COUNT);

    let urls: HashSet<_> = manifest.devices.iter().map(|d| d.url.clone()).collect();
    let serials: HashSet<_> = manifest.devices.iter().map(|d| d.serial.clone()).collect();
    let ids: HashSet<_> = manifest.devices.iter().map(|d| d.device_id).collect();
    assert_eq!(
        (urls.len(), serials.len(), ids.len()),
        (COUNT, COUNT, COUNT)
    );
    let models: Vec<_> = manifest.devices[..4]
        .iter()
        .map(|d| d.model.as_str())
        .collect();
    assert_eq!(models, ["idface", "idaccess", "idflex", "idface"]);

    let client = reqwest::Client::new();
    for entry in &manifest.devices {
        assert_eq!(entry.login, "fleet");
        let session = login(&client, &entry.url).await.expect("terminal answers");
        assert!(session["session"].is_string(), "{}: {session}", entry.url);
        let info: Json = client
            .post(format!(
                "{}/system_information.fcgi?session={}",
                entry.url,
                session["session"].as_str().unwrap_or_default()
            ))
            .send()
            .await
            .expect("system_information")
            .json()
            .await
            .expect("JSON");
        assert_eq!(info["serial"], entry.serial.as_str(), "{}", entry.url);
    }
    fleet.shutdown().await;
}

#[tokio::test]
async fn terminals_spread_over_loopback_addresses_are_where_the_manifest_says() {
    let template = Simulator::builder()
        .credentials("fleet", "s3cret")
        .time(TimeSource::Manual(ManualTime::starting_at(TEST_EPOCH)))
        .shared_scheduler(Scheduler::manual());
    let builder = Fleet::builder(5)
        .template(template)
        .per_address(2)
        .seed(300);
    let addresses: Vec<String> = builder
        .addresses()
        .expect("in range")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(addresses, ["127.0.0.1", "127.0.0.2", "127.0.0.3"]);
    let fleet = builder.spawn().await.expect("fleet starts");
    let manifest = fleet.manifest();
    let hosts: Vec<&str> = manifest
        .devices
        .iter()
        .map(|d| {
            let host = d.url.trim_start_matches("http://");
            &host[..host.rfind(':').expect("a port")]
        })
        .collect();
    assert_eq!(
        hosts,
        [
            "127.0.0.1",
            "127.0.0.1",
            "127.0.0.2",
            "127.0.0.2",
            "127.0.0.3"
        ]
    );
    let client = reqwest::Client::new();
    for (entry, device) in manifest.devices.iter().zip(fleet.devices()) {
        assert_eq!(entry.url, device.base_url());
        let session = login(&client, &entry.url).await.expect("terminal answers");
        assert!(session["session"].is_string(), "{}: {session}", entry.url);
    }
    fleet.shutdown().await;
}

#[test]
fn large_fleets_spread_by_default_and_addresses_stay_in_range() {
    let spread = |builder: acs_simulator::FleetBuilder| -> Result<Vec<String>, String> {
        builder
            .addresses()
            .map(|a| a.iter().map(ToString::to_string).collect())
            .map_err(|e| e.to_string())
    };
    let per = acs_simulator::TERMINALS_PER_LOOPBACK_ADDRESS;
    let expected: Vec<String> = if cfg!(target_os = "linux") {
        vec!["127.0.0.1".into(), "127.0.0.2".into(), "127.0.0.3".into()]
    } else {
        vec!["127.0.0.1".into()]
    };
    assert_eq!(spread(Fleet::builder(2 * per + 1)), Ok(expected));
    assert_eq!(
        spread(Fleet::builder(per)),
        Ok(vec!["127.0.0.1".to_owned()])
    );
    // 0: all on the bind address.
    assert_eq!(
        spread(Fleet::builder(3 * per).per_address(0)),
        Ok(vec!["127.0.0.1".to_owned()])
    );
    // Not past the end of 127/8, and IPv4 only.
    let last = "127.255.255.254".parse().expect("address");
    let err = spread(Fleet::builder(3).bind(last).per_address(1)).expect_err("out of range");
    assert!(err.contains("terminal 2"), "{err}");
    let v6 = "::1".parse().expect("address");
    assert!(spread(Fleet::builder(3).bind(v6).per_address(1)).is_err());
    assert_eq!(
        spread(Fleet::builder(3).bind(v6)),
        Ok(vec!["::1".to_owned()])
    );
}

#[tokio::test]
async fn the_manifest_file_round_trips() {
    let fleet = fleet().await;
    let dir = std::env::temp_dir().join(format!("acs-fleet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("fleet.json");
    fleet.write_manifest(&path).expect("manifest written");
    let read: Manifest =
        serde_json::from_slice(&std::fs::read(&path).expect("manifest read")).expect("JSON");
    assert_eq!(read, fleet.manifest());
    std::fs::remove_dir_all(&dir).ok();
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_seeded_tenth_of_the_fleet_powers_off_and_comes_back() {
    let fleet = fleet().await;
    let tenth = Selection::Fraction {
        fraction: 0.1,
        seed: 7,
    };
    let off = fleet.power_off(&tenth).await.expect("power off");
    assert_eq!(off.len(), COUNT / 10);
    assert_eq!(
        off,
        tenth.indices(COUNT).expect("valid"),
        "the same seed picks the same terminals"
    );

    let client = reqwest::Client::new();
    for (index, device) in fleet.devices().iter().enumerate() {
        let answered = login(&client, &device.base_url()).await.is_ok();
        assert_eq!(answered, !off.contains(&index), "terminal {index}");
    }

    fleet.power_on(&tenth).await.expect("power on");
    for index in &off {
        let url = fleet.device(*index).expect("exists").base_url();
        login(&client, &url).await.expect("answers after power-on");
    }
    fleet.shutdown().await;
}

#[tokio::test]
async fn clock_skew_moves_only_the_selected_terminals() {
    let fleet = fleet().await;
    let before: Vec<i64> = fleet
        .devices()
        .iter()
        .map(|d| d.device().local_now())
        .collect();
    let skewed = fleet
        .skew_clocks(&Selection::Indices(vec![3, 5, 59]), 90)
        .await
        .expect("skew");
    assert_eq!(skewed, [3, 5, 59]);
    for (index, device) in fleet.devices().iter().enumerate() {
        let moved = device.device().local_now() - before[index];
        assert_eq!(moved, if skewed.contains(&index) { 90 } else { 0 });
    }
    fleet.shutdown().await;
}

#[tokio::test]
async fn the_control_api_applies_sim_requests_to_a_selection() {
    let mut fleet = fleet().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = fleet.serve_control(listener).expect("control API");
    let control = format!("http://{addr}/_fleet");
    let client = reqwest::Client::new();

    let manifest: Manifest = client
        .get(format!("{control}/manifest"))
        .send()
        .await
        .expect("manifest")
        .json()
        .await
        .expect("JSON");
    assert_eq!(manifest, fleet.manifest());
    assert_eq!(manifest.control_url, Some(format!("http://{addr}")));

    let reply: Json = client
        .post(format!("{control}/policy"))
        .json(&json!({"select": [0, 2], "policy": "absent"}))
        .send()
        .await
        .expect("policy")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        reply,
        json!({"results": [
            {"index": 0, "ok": {"policy": "absent"}},
            {"index": 2, "ok": {"policy": "absent"}},
        ]})
    );
    let state = |i: usize| fleet.device(i).expect("exists").terminal().person.policy();
    assert_eq!(state(0), acs_simulator::Policy::Absent);
    assert_eq!(state(1), acs_simulator::Policy::Cooperative);

    // A terminal powered off through the fleet API is powered on through it too.
    let off = client
        .post(format!("{control}/power"))
        .json(&json!({"select": [4], "on": false}))
        .send()
        .await
        .expect("power");
    assert!(off.status().is_success());
    let url = fleet.device(4).expect("exists").base_url();
    assert!(login(&client, &url).await.is_err());
    client
        .post(format!("{control}/power"))
        .json(&json!({"select": [4], "on": true}))
        .send()
        .await
        .expect("power");
    login(&client, &url).await.expect("back on");

    // Per-terminal errors come back per terminal; request errors as a whole.
    let reply: Json = client
        .post(format!("{control}/policy"))
        .json(&json!({"select": [1], "policy": "sleepy"}))
        .send()
        .await
        .expect("policy")
        .json()
        .await
        .expect("JSON");
    assert!(reply["results"][0]["error"].is_string(), "{reply}");
    for (body, path, status) in [
        (json!({"select": [COUNT]}), "state", 400),
        (json!({"select": {"fraction": 2}}), "state", 400),
        (json!({}), "reformat_disk", 404),
    ] {
        let reply = client
            .post(format!("{control}/{path}"))
            .json(&body)
            .send()
            .await
            .expect("control");
        assert_eq!(reply.status().as_u16(), status, "{path} {body}");
        let error: Json = reply.json().await.expect("JSON error");
        assert!(error["error"].is_string());
    }
    fleet.shutdown().await;
}

#[tokio::test]
async fn one_manual_clock_drives_the_whole_fleet() {
    let fleet = fleet().await;
    fleet
        .scheduler()
        .advance(std::time::Duration::from_secs(30));
    for device in fleet.devices() {
        assert_eq!(device.scheduler().elapsed().as_secs(), 30);
    }
    fleet.shutdown().await;
}
