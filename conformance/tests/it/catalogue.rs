//! The catalogue proves itself: it has at least 60 cases with unique ids and references,
//! every case passes against the simulator, and every case fails against a simulator
//! carrying the fault that breaks exactly the rule it checks.

use std::collections::BTreeSet;

use acs_conformance::catalogue::{Case, catalogue};
use acs_conformance::runner::run_case;
use acs_conformance::target;
use acs_conformance::verdict::Verdict;
use acs_simulator::Model;
use serde_json::json;

#[test]
fn the_catalogue_has_sixty_distinct_documented_cases() {
    let cases = catalogue();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let ids: BTreeSet<&str> = cases.iter().map(|c| c.info.id).collect();
    assert_eq!(ids.len(), cases.len(), "ids are unique");
    for c in &cases {
        assert!(
            c.info.reference.contains(".md §"),
            "{} names its paragraph",
            c.info.id
        );
        assert!(!c.info.title.is_empty());
    }
    assert!(cases.iter().any(|c| c.info.physical));
    assert!(cases.iter().any(|c| c.info.id.starts_with("WORKFLOW")));
}

#[tokio::test]
async fn every_case_passes_against_the_simulator() {
    let (_sim, prepared) = target::simulator(Model::IdFace).await.expect("simulator");
    for case in catalogue() {
        let result = run_case(&case, &prepared.ctx, &prepared.capabilities).await;
        assert_eq!(
            result.verdict,
            Verdict::Pass,
            "{}: expected {:?}, actual {:?}",
            case.info.id,
            result.expected,
            result.actual
        );
    }
}

async fn against_fault(case: &Case) -> (Verdict, Option<String>) {
    let (sim, prepared) = target::simulator(Model::IdFace).await.expect("simulator");
    let f = &case.breaking_fault;
    let reply = reqwest::Client::new()
        .post(format!("{}/_sim/faults", sim.base_url()))
        .json(&json!({"override": {"command": f.command, "status": f.status, "body": f.body, "count": f.count}}))
        .send()
        .await
        .expect("fault set");
    assert!(
        reply.status().is_success(),
        "{}: fault refused",
        case.info.id
    );
    let result = run_case(case, &prepared.ctx, &prepared.capabilities).await;
    (result.verdict, result.expected)
}

#[tokio::test]
async fn every_case_fails_against_its_breaking_fault() {
    let mut wrong = Vec::new();
    for case in catalogue() {
        let (verdict, why) = against_fault(&case).await;
        if verdict != Verdict::Fail {
            wrong.push(format!("{}: {verdict:?} ({why:?})", case.info.id));
        }
    }
    assert!(
        wrong.is_empty(),
        "cases that did not fail under their fault:\n{}",
        wrong.join("\n")
    );
}
