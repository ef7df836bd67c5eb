//! The reports of a run: snapshots of every format for a run with one case of each
//! verdict, the JSON and JUnit documents read back and checked against the run, the JUnit
//! output validated against the Jenkins JUnit schema itself (`conformance/schema/
//! junit-10.xsd`, by `xmllint`) and against a hand transcription of its rules that needs
//! no tool, and the HTML page checked for escaping and for being self-contained.
//!
//! The run is fixed (start time, durations, evidence), so every report renders to the
//! same bytes on every machine and the snapshots need no redactions.

use std::time::Duration;

use acs_conformance::outcome::{
    Capability, CaseInfo, CaseResult, Cleanup, Exchange, Layer, Reason, Run, TargetIdentity,
};
use acs_conformance::report::{console::Progress, html, json, junit};
use acs_conformance::verdict::Verdict;

fn case(id: &'static str, title: &'static str, reference: &'static str) -> CaseInfo {
    CaseInfo {
        id,
        title,
        reference,
        layer: Layer::Protocol,
        needs: Vec::new(),
        physical: false,
        changes_device: false,
    }
}

fn exchange(request: &str, response: &str) -> Exchange {
    Exchange {
        request: request.to_owned(),
        response: response.to_owned(),
    }
}

/// One case of every verdict, in catalogue order, with fixed times.
fn sample_run() -> Run {
    let pass = CaseResult {
        case: case(
            "SESSION-001",
            "login answers a session token",
            "docs/device-api.md §1.2",
        ),
        verdict: Verdict::Pass,
        reason: None,
        changes: vec!["created users 990000001".to_owned()],
        expected: None,
        actual: None,
        evidence: vec![exchange(
            "POST /login.fcgi {\"login\":\"admin\",\"password\":\"<redacted>\"}",
            "200 {\"session\":\"<redacted>\"}",
        )],
        duration: Duration::from_millis(12),
    };
    let fail = CaseResult {
        case: CaseInfo {
            layer: Layer::Workflow,
            needs: vec![Capability::Card],
            ..case(
                "SYNC-MEMBER-REVOKE-002",
                "a revoked member's card is removed from the terminal",
                "docs/domain.md §4.3",
            )
        },
        verdict: Verdict::Fail,
        reason: None,
        changes: Vec::new(),
        expected: Some("no card 990000123 on the terminal".to_owned()),
        actual: Some("card 990000123 still present\nits user 990000001 still present".to_owned()),
        evidence: vec![
            exchange(
                "POST /load_objects.fcgi {\"object\":\"cards\",\"where\":{\"cards\":{\"value\":990000123}}}",
                "200 {\"cards\":[{\"id\":7,\"value\":990000123,\"user_id\":990000001}]}",
            ),
            exchange(
                "POST /load_objects.fcgi {\"object\":\"users\",\"where\":{\"users\":{\"id\":990000001}}}",
                "200 {\"users\":[{\"id\":990000001,\"name\":\"Conformance & <Test>\"}]}",
            ),
        ],
        duration: Duration::from_millis(1_234),
    };
    let skipped = CaseResult {
        case: CaseInfo {
            needs: vec![Capability::Face],
            ..case(
                "ENROLL-FACE-SYNC-003",
                "remote face enrollment in sync mode saves the template",
                "docs/device-api.md §6.2",
            )
        },
        verdict: Verdict::Skipped,
        reason: Some(Reason::Capability(vec!["face".to_owned()])),
        changes: Vec::new(),
        expected: Some("the target has no face capability".to_owned()),
        actual: None,
        evidence: Vec::new(),
        duration: Duration::ZERO,
    };
    let not_run = CaseResult {
        case: CaseInfo {
            layer: Layer::Workflow,
            needs: vec![Capability::Card, Capability::Relay],
            physical: true,
            ..case(
                "PRESENT-CARD-001",
                "a presented card opens the door and logs the acs_id",
                "docs/domain.md §5.1",
            )
        },
        verdict: Verdict::NotRun,
        reason: Some(Reason::NoOperator),
        changes: Vec::new(),
        expected: Some("needs an operator at the terminal (--unattended)".to_owned()),
        actual: None,
        evidence: Vec::new(),
        duration: Duration::ZERO,
    };
    let error = CaseResult {
        case: CaseInfo {
            changes_device: true,
            ..case(
                "CONFIG-004",
                "changed configuration is read back as written",
                "docs/device-api.md §4.1",
            )
        },
        verdict: Verdict::Error,
        reason: None,
        changes: Vec::new(),
        expected: Some(
            "could not read the configuration before the case: connection refused".to_owned(),
        ),
        actual: None,
        evidence: vec![exchange(
            "POST /get_configuration.fcgi {\"general\":[\"online\"]}",
            "transport error: connection refused (os error 111)",
        )],
        duration: Duration::from_millis(3_005),
    };
    Run {
        suite_version: "0.2.0".to_owned(),
        target: TargetIdentity {
            target: "http://192.0.2.10".to_owned(),
            model: "iDFace".to_owned(),
            profile: "idface".to_owned(),
            firmware: "8.2.1".to_owned(),
            serial: "0M0200/00123".to_owned(),
            device_id: "478435".to_owned(),
        },
        started_at: "2025-03-14T09:26:53+01:00".to_owned(),
        results: vec![pass, fail, skipped, not_run, error],
        interrupted: false,
        cleanup: Cleanup::Complete { removed: 4 },
    }
}

/// The sample run with `text` in every free-text field a device or the catalogue fills.
fn run_with_text_everywhere(text: &str) -> Run {
    let mut run = sample_run();
    let leaked: &'static str = Box::leak(text.to_owned().into_boxed_str());
    run.target = TargetIdentity {
        target: text.to_owned(),
        model: text.to_owned(),
        profile: text.to_owned(),
        firmware: text.to_owned(),
        serial: text.to_owned(),
        device_id: text.to_owned(),
    };
    run.started_at = text.to_owned();
    for result in &mut run.results {
        result.case.id = leaked;
        result.case.title = leaked;
        result.case.reference = leaked;
        result.expected = Some(text.to_owned());
        result.actual = Some(text.to_owned());
        result.evidence = vec![exchange(text, text)];
    }
    run
}

fn console_output(run: &Run, colour: bool) -> String {
    let mut progress = Progress::new(Vec::new(), colour);
    for result in &run.results {
        progress.case_started(&result.case);
        progress.case_finished(result);
    }
    progress.finished(run);
    String::from_utf8(progress.into_inner()).expect("the console output is UTF-8")
}

// ---------------------------------------------------------------------------------------
// Snapshots

#[test]
fn json_report_snapshot() {
    insta::assert_snapshot!("json", json::write(&sample_run()));
}

#[test]
fn junit_report_snapshot() {
    insta::assert_snapshot!("junit", junit::write(&sample_run()));
}

#[test]
fn html_report_snapshot() {
    insta::assert_snapshot!("html", html::write(&sample_run()));
}

#[test]
fn console_progress_snapshot() {
    insta::assert_snapshot!("console", console_output(&sample_run(), false));
}

// ---------------------------------------------------------------------------------------
// JSON

#[test]
fn json_report_parses_back_and_counts_match_the_summary() {
    let run = sample_run();
    let document: serde_json::Value =
        serde_json::from_str(&json::write(&run)).expect("the JSON report parses");
    let summary = run.summary();

    assert_eq!(document["format"], "acs-conformance-report");
    assert_eq!(document["format_version"], json::FORMAT_VERSION);
    assert_eq!(document["run"]["started_at"], run.started_at);
    assert_eq!(document["run"]["target"]["firmware"], run.target.firmware);
    let counts = &document["summary"];
    assert_eq!(counts["total"], summary.total());
    assert_eq!(counts["passed"], summary.passed);
    assert_eq!(counts["failed"], summary.failed);
    assert_eq!(counts["skipped"], summary.skipped);
    assert_eq!(counts["not_run"], summary.not_run);
    assert_eq!(counts["errors"], summary.errors);
    assert_eq!(counts["exit_code"], run.overall().exit_code());
    assert_eq!(counts["result"], run.overall().label().replace(' ', "_"));

    let cases = document["cases"].as_array().expect("cases is an array");
    assert_eq!(cases.len(), run.results.len());
    for (case, result) in cases.iter().zip(&run.results) {
        assert_eq!(case["id"], result.case.id);
        assert_eq!(case["title"], result.case.title);
        assert_eq!(case["reference"], result.case.reference);
        assert_eq!(
            case["verdict"],
            serde_json::to_value(result.verdict).unwrap()
        );
        assert_eq!(case["physical"], result.case.physical);
        assert_eq!(case["changes_device"], result.case.changes_device);
        assert_eq!(
            case["duration_ms"],
            u64::try_from(result.duration.as_millis()).unwrap()
        );
        assert_eq!(case["expected"].as_str(), result.expected.as_deref());
        assert_eq!(case["actual"].as_str(), result.actual.as_deref());
        assert_eq!(
            case["evidence"].as_array().unwrap().len(),
            result.evidence.len()
        );
        // Every field is present, even when empty, so readers never have to guess.
        for field in [
            "id",
            "title",
            "reference",
            "layer",
            "needs",
            "physical",
            "changes_device",
            "verdict",
            "expected",
            "actual",
            "evidence",
            "duration_ms",
        ] {
            assert!(
                case.get(field).is_some(),
                "{} lacks {field}",
                result.case.id
            );
        }
    }
    let verdicts: Vec<&str> = cases
        .iter()
        .map(|c| c["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["pass", "fail", "skipped", "not_run", "error"]);
}

// ---------------------------------------------------------------------------------------
// JUnit

/// An XML element read back from a report: just enough of a DOM to check structure.
#[derive(Debug)]
struct Element {
    name: String,
    attributes: Vec<(String, String)>,
    children: Vec<Element>,
    text: String,
}

impl Element {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |child| child.name == name)
    }
}

/// Parses `xml` with quick-xml (well-formedness: matching end tags, unique attributes,
/// valid references) into an [`Element`] tree, resolving character and entity references.
fn parse_xml(xml: &str) -> Element {
    use quick_xml::XmlVersion;
    use quick_xml::events::{BytesStart, Event};

    fn element(start: &BytesStart<'_>) -> Element {
        Element {
            name: String::from_utf8(start.name().as_ref().to_vec()).unwrap(),
            attributes: start
                .attributes()
                .map(|attribute| {
                    let attribute = attribute.expect("a well-formed, unique attribute");
                    (
                        String::from_utf8(attribute.key.as_ref().to_vec()).unwrap(),
                        attribute
                            .normalized_value(XmlVersion::Explicit1_0)
                            .expect("a valid attribute value")
                            .into_owned(),
                    )
                })
                .collect(),
            children: Vec::new(),
            text: String::new(),
        }
    }

    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    let mut saw_declaration = false;
    loop {
        let event = reader.read_event().expect("well-formed XML");
        let finished = match event {
            Event::Decl(declaration) => {
                assert!(stack.is_empty() && root.is_none(), "declaration first");
                let encoding = declaration.encoding().expect("an encoding").unwrap();
                assert_eq!(encoding.as_ref(), b"UTF-8");
                saw_declaration = true;
                None
            }
            Event::Start(start) => {
                stack.push(element(&start));
                None
            }
            Event::Empty(start) => Some(element(&start)),
            Event::End(_) => Some(stack.pop().expect("an open element")),
            Event::Text(text) => {
                let text = text.xml10_content().unwrap();
                match stack.last_mut() {
                    Some(open) => open.text.push_str(&text),
                    None => assert!(text.trim().is_empty(), "text outside the root"),
                }
                None
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref().expect("a valid reference") {
                    Some(c) => c.to_string(),
                    None => {
                        let name = reference.decode().unwrap();
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .expect("only predefined entities")
                            .to_owned()
                    }
                };
                stack
                    .last_mut()
                    .expect("inside an element")
                    .text
                    .push_str(&resolved);
                None
            }
            Event::CData(data) => {
                let data = data.decode().unwrap();
                stack
                    .last_mut()
                    .expect("inside an element")
                    .text
                    .push_str(&data);
                None
            }
            Event::Eof => break,
            other => panic!("unexpected XML event {other:?}"),
        };
        if let Some(finished) = finished {
            match stack.last_mut() {
                Some(parent) => parent.children.push(finished),
                None => {
                    assert!(root.is_none(), "one root element");
                    root = Some(finished);
                }
            }
        }
    }
    assert!(stack.is_empty(), "every element closed");
    assert!(saw_declaration, "an XML declaration");
    root.expect("a root element")
}

/// What the schema allows for one element. Every attribute in it is `xs:string`, so
/// values are not checked.
struct Rule {
    /// Attributes it may have.
    allowed: &'static [&'static str],
    /// Attributes it must have.
    required: &'static [&'static str],
    /// Child elements it may contain; `None` when it holds text only.
    children: Option<&'static [&'static str]>,
}

/// The rules of the Jenkins JUnit schema (`conformance/schema/junit-10.xsd`, which the
/// xUnit plugin validates JUnit files against), transcribed element by element: the same
/// check where `xmllint` is not installed, and the rejections it must make.
/// The root may be `testsuites` or `testsuite` (both are global elements there).
fn jenkins_junit_rule(element: &str) -> Option<Rule> {
    let rule = |allowed, required, children| Rule {
        allowed,
        required,
        children,
    };
    Some(match element {
        "testsuites" => rule(
            &["name", "time", "tests", "failures", "disabled", "errors"],
            &[],
            Some(&["testsuite"]),
        ),
        "testsuite" => rule(
            &[
                "name",
                "tests",
                "failures",
                "errors",
                "time",
                "disabled",
                "skipped",
                "skips",
                "timestamp",
                "hostname",
                "id",
                "package",
                "assertions",
                "file",
                "skip",
                "log",
                "url",
            ],
            &["tests"],
            Some(&[
                "testsuite",
                "properties",
                "testcase",
                "system-out",
                "system-err",
            ]),
        ),
        "properties" => rule(&[], &[], Some(&["property"])),
        "property" => rule(&["name", "value"], &["name", "value"], Some(&[])),
        "testcase" => rule(
            &[
                "name",
                "assertions",
                "time",
                "timestamp",
                "classname",
                "status",
                "class",
                "file",
                "line",
                "log",
                "group",
                "url",
            ],
            &["name"],
            Some(&["skipped", "error", "failure", "system-out", "system-err"]),
        ),
        "failure" | "error" | "skipped" => rule(&["type", "message"], &[], None),
        "system-out" | "system-err" => rule(&[], &[], None),
        _ => return None,
    })
}

/// Checks `element` and its descendants against [`jenkins_junit_rule`]; the error names
/// the first violation and where it is.
fn check_against_jenkins_schema(element: &Element, path: &str) -> Result<(), String> {
    let path = format!("{path}/{}", element.name);
    let Some(Rule {
        allowed,
        required,
        children,
    }) = jenkins_junit_rule(&element.name)
    else {
        return Err(format!("{path}: element not in the schema"));
    };
    if let Some((name, _)) = element
        .attributes
        .iter()
        .find(|(name, _)| !allowed.contains(&name.as_str()))
    {
        return Err(format!("{path}: attribute {name} not allowed"));
    }
    if let Some(name) = required
        .iter()
        .find(|name| element.attribute(name).is_none())
    {
        return Err(format!("{path}: required attribute {name} missing"));
    }
    match children {
        Some(children) => {
            if !element.text.trim().is_empty() {
                return Err(format!(
                    "{path}: element-only content has text {:?}",
                    element.text
                ));
            }
            for child in &element.children {
                if !children.contains(&child.name.as_str()) {
                    return Err(format!("{path}: child {} not allowed", child.name));
                }
                check_against_jenkins_schema(child, &path)?;
            }
            Ok(())
        }
        None if !element.children.is_empty() => {
            Err(format!("{path}: text-only element has child elements"))
        }
        None => Ok(()),
    }
}

#[test]
fn junit_report_follows_the_jenkins_junit_schema() {
    let root = parse_xml(&junit::write(&sample_run()));
    assert!(
        matches!(root.name.as_str(), "testsuites" | "testsuite"),
        "the schema's root elements"
    );
    check_against_jenkins_schema(&root, "").unwrap();
}

#[test]
fn junit_schema_check_rejects_what_the_schema_rejects() {
    // The check itself is only worth something if it can fail.
    let rejected = [
        // quick-junit's `skipped` on the root, which junit-10.xsd does not allow.
        r#"<?xml version="1.0" encoding="UTF-8"?><testsuites tests="1" skipped="0"><testsuite tests="0"/></testsuites>"#,
        // `tests` is required on a suite.
        r#"<?xml version="1.0" encoding="UTF-8"?><testsuites><testsuite name="x"/></testsuites>"#,
        // `name` is required on a case.
        r#"<?xml version="1.0" encoding="UTF-8"?><testsuite tests="1"><testcase classname="x"/></testsuite>"#,
        // `properties` may not appear inside a case.
        r#"<?xml version="1.0" encoding="UTF-8"?><testsuite tests="1"><testcase name="x"><properties/></testcase></testsuite>"#,
    ];
    for xml in rejected {
        let root = parse_xml(xml);
        assert!(
            check_against_jenkins_schema(&root, "").is_err(),
            "accepted: {xml}"
        );
    }
}

/// The vendored Jenkins JUnit schema.
const JUNIT_XSD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/junit-10.xsd");

/// Validates `xml` against the vendored schema with `xmllint`: `None` when `xmllint` is
/// not installed (said on stderr; a failure under `CI`, where `.ci/run` installs it),
/// else whether it is valid, with what `xmllint` said.
fn xmllint_validates(xml: &str, name: &str) -> Option<Result<(), String>> {
    let dir = std::env::temp_dir().join(format!("acs-junit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let file = dir.join(format!("{name}.xml"));
    std::fs::write(&file, xml).expect("write the report");
    let output = std::process::Command::new("xmllint")
        .args(["--noout", "--schema", JUNIT_XSD])
        .arg(&file)
        .output();
    let _ = std::fs::remove_file(&file);
    match output {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var_os("CI").is_none(),
                "xmllint is missing under CI (install libxml2-utils)"
            );
            eprintln!(
                "SKIPPED: the JUnit report was not validated against junit-10.xsd: xmllint \
                 is not installed (Debian: apt-get install libxml2-utils)"
            );
            None
        }
        Err(e) => panic!("could not run xmllint: {e}"),
        Ok(out) if out.status.success() => Some(Ok(())),
        Ok(out) => Some(Err(String::from_utf8_lossy(&out.stderr).into_owned())),
    }
}

#[test]
fn junit_report_validates_against_the_vendored_jenkins_schema() {
    if let Some(result) = xmllint_validates(&junit::write(&sample_run()), "sample") {
        result.expect("the report is valid against junit-10.xsd");
    }
    // The validation can fail: the schema refuses `skipped` on the root.
    let invalid = r#"<?xml version="1.0" encoding="UTF-8"?><testsuites tests="1" skipped="0"><testsuite tests="0"/></testsuites>"#;
    if let Some(result) = xmllint_validates(invalid, "invalid") {
        assert!(result.is_err(), "xmllint accepted {invalid}");
    }
}

#[test]
fn junit_report_has_one_suite_and_a_case_per_result() {
    let run = sample_run();
    let summary = run.summary();
    let root = parse_xml(&junit::write(&run));
    assert_eq!(root.name, "testsuites");
    assert_eq!(
        root.attribute("tests"),
        Some("6"),
        "five cases and the run itself"
    );

    let suites: Vec<&Element> = root.children_named("testsuite").collect();
    assert_eq!(suites.len(), 1);
    let suite = suites[0];
    assert_eq!(suite.attribute("name"), Some(junit::SUITE_NAME));
    assert_eq!(suite.attribute("timestamp"), Some(run.started_at.as_str()));
    let count = |n: usize| Some(n.to_string());
    assert_eq!(
        suite.attribute("tests").map(str::to_owned),
        count(summary.total() + 1)
    );
    assert_eq!(
        suite.attribute("failures").map(str::to_owned),
        count(summary.failed)
    );
    assert_eq!(
        suite.attribute("errors").map(str::to_owned),
        count(summary.errors + summary.not_run + 1),
        "harness errors, cases not run and the run's own verdict"
    );
    assert_eq!(
        suite.attribute("skipped").map(str::to_owned),
        count(summary.skipped)
    );
    assert_eq!(suite.attribute("time"), Some("4.251"));

    let properties: Vec<(&str, &str)> = suite
        .children_named("properties")
        .flat_map(|properties| properties.children_named("property"))
        .map(|p| (p.attribute("name").unwrap(), p.attribute("value").unwrap()))
        .collect();
    assert!(properties.contains(&("firmware", "8.2.1")));
    assert!(properties.contains(&("serial", "0M0200/00123")));

    let cases: Vec<&Element> = suite.children_named("testcase").collect();
    assert_eq!(cases.len(), run.results.len() + 1);
    let last = cases[run.results.len()];
    assert_eq!(last.attribute("classname"), Some("run"));
    let verdict = last
        .children_named("error")
        .next()
        .expect("the run did not pass");
    assert!(
        verdict
            .attribute("message")
            .unwrap()
            .contains("NOT CARRIED OUT")
    );
    for (case, result) in cases.iter().zip(&run.results) {
        let name = format!("{} {}", result.case.id, result.case.title);
        assert_eq!(case.attribute("name"), Some(name.as_str()));
        let layer = match result.case.layer {
            Layer::Protocol => "protocol",
            Layer::Workflow => "workflow",
        };
        assert_eq!(case.attribute("classname"), Some(layer));
        let outcome: Vec<&str> = case.children.iter().map(|c| c.name.as_str()).collect();
        let expected_outcome: &[&str] = match result.verdict {
            Verdict::Pass => &[],
            Verdict::Fail => &["failure"],
            Verdict::Error | Verdict::NotRun => &["error"],
            Verdict::Skipped => &["skipped"],
        };
        assert_eq!(outcome, expected_outcome, "{name}");
    }

    // The failure carries expected, actual (both lines) and the evidence, unescaped.
    let failure = cases[1].children_named("failure").next().unwrap();
    let message = failure.attribute("message").unwrap();
    assert!(
        message.contains("no card 990000123 on the terminal"),
        "{message}"
    );
    assert!(
        message.contains("still present\nits user"),
        "line break kept: {message}"
    );
    assert!(
        failure
            .text
            .contains("actual: card 990000123 still present")
    );
    assert!(failure.text.contains(r#""name":"Conformance & <Test>""#));
    // The error says what went wrong for the harness.
    let error = cases[4].children_named("error").next().unwrap();
    assert!(
        error
            .attribute("message")
            .unwrap()
            .contains("connection refused")
    );
    // Skipped and not run are told apart: a case not run is an error with its reason.
    let skipped = cases[2].children_named("skipped").next().unwrap();
    let not_run = cases[3].children_named("error").next().unwrap();
    assert_eq!(skipped.attribute("type"), Some("skipped"));
    assert_eq!(not_run.attribute("type"), Some("not_run_no_operator"));
    assert!(
        not_run
            .attribute("message")
            .unwrap()
            .contains("needs an operator")
    );
}

#[test]
fn junit_report_escapes_markup_and_shows_characters_xml_cannot_hold() {
    let hostile = "<script>alert(\"x\")</script> & ]]> 'q'\ttab\u{1b}[31m";
    let xml = junit::write(&run_with_text_everywhere(hostile));
    assert!(!xml.contains("<script>"));
    assert!(!xml.contains('\u{1b}'), "control characters are not XML");
    let root = parse_xml(&xml);
    check_against_jenkins_schema(&root, "").unwrap();
    let shown = "<script>alert(\"x\")</script> & ]]> 'q'\ttab\\u{1b}[31m";
    let suite = root.children_named("testsuite").next().unwrap();
    assert_eq!(suite.attribute("timestamp"), Some(shown));
    let failure = suite
        .children_named("testcase")
        .flat_map(|case| case.children_named("failure"))
        .next()
        .unwrap();
    assert!(failure.text.contains(&format!("actual: {shown}")));
}

// ---------------------------------------------------------------------------------------
// HTML

#[test]
fn html_report_escapes_every_field() {
    let hostile = "<script>alert('x')</script>";
    let page = html::write(&run_with_text_everywhere(hostile));
    assert!(!page.contains("<script"), "no field becomes markup");
    assert!(!page.contains("alert('x')"), "quotes are escaped too");
    let escaped = page
        .matches("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;")
        .count();
    // Five target fields and the date; per case id, title, reference, expected, actual,
    // request and response in the details, id and title in the overview.
    assert!(escaped >= 6 + 5 * 9, "escaped {escaped} times");
    check_html_tags_balance(&page);
}

#[test]
fn html_report_is_one_self_contained_page() {
    let page = html::write(&sample_run());
    assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    assert!(page.contains("<meta charset=\"utf-8\">"));
    assert!(page.contains("<style>"));
    for outside in [
        "http:", "https:", "src=", "<link", "<script", "@import", "url(",
    ] {
        // The target's own URL is shown as text (`http://192.0.2.10`), never loaded.
        let loads = page.matches(outside).count();
        let shown = page
            .matches(&format!("<td>{outside}//192.0.2.10</td>"))
            .count();
        assert_eq!(
            loads, shown,
            "{outside} loads something from outside the page"
        );
    }
    check_html_tags_balance(&page);
}

#[test]
fn html_report_shows_identity_and_every_case_with_a_text_label() {
    let run = sample_run();
    let page = html::write(&run);
    for identity in [
        "iDFace",
        "8.2.1",
        "0M0200/00123",
        "478435",
        "2025-03-14T09:26:53+01:00",
    ] {
        assert!(page.contains(identity), "{identity}");
    }
    assert!(page.contains("Result: <strong class=\"verdict error\">NOT CARRIED OUT</strong>"));
    for (result, label) in run
        .results
        .iter()
        .zip(["PASS", "FAIL", "SKIP", "NOT RUN", "ERROR"])
    {
        let heading = format!(
            ">{label}</span> {} — {}</h3>",
            result.case.id,
            result.case.title.replace('\'', "&#39;")
        );
        assert!(page.contains(&heading), "{heading}");
        assert!(page.contains(&format!("id=\"case-{}\"", result.case.id)));
    }
    assert!(
        page.contains("<pre>card 990000123 still present\nits user 990000001 still present</pre>")
    );
    assert!(page.contains("&quot;name&quot;:&quot;Conformance &amp; &lt;Test&gt;&quot;"));
}

/// Every non-void element is closed, in order: the page is a tree, whatever the data.
fn check_html_tags_balance(page: &str) {
    const VOID: &[&str] = &["meta", "br", "hr", "img", "input", "link"];
    let mut open: Vec<&str> = Vec::new();
    let mut rest = page;
    while let Some(start) = rest.find('<') {
        let end = start + rest[start..].find('>').expect("a closed tag");
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') {
            continue;
        }
        let name = tag
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace())
            .next()
            .unwrap();
        if tag.starts_with('/') {
            assert_eq!(open.pop(), Some(name), "</{name}> closes the open element");
        } else if !VOID.contains(&name) {
            open.push(name);
            if name == "style" {
                // CSS is not markup; skip to its end tag.
                let close = rest.find("</style>").expect("the style closes");
                rest = &rest[close..];
            }
        }
    }
    assert!(open.is_empty(), "unclosed: {open:?}");
}

// ---------------------------------------------------------------------------------------
// Console

#[test]
fn console_progress_has_no_escape_codes_without_colour() {
    let plain = console_output(&sample_run(), false);
    assert!(!plain.contains('\u{1b}'));
    assert!(!plain.contains('\r'));
    assert!(plain.contains("PASS     SESSION-001  login answers a session token  (12 ms)\n"));
}

#[test]
fn console_progress_colours_verdicts_and_clears_the_running_line() {
    let coloured = console_output(&sample_run(), true);
    assert!(coloured.contains("\u{1b}[32mPASS   \u{1b}[0m  SESSION-001"));
    assert!(coloured.contains("\u{1b}[31mFAIL   \u{1b}[0m  SYNC-MEMBER-REVOKE-002"));
    // The transient line of a case is erased before the case's result is printed.
    assert!(coloured.contains("SESSION-001  login answers a session token\r\u{1b}[2K"));
    // A case with a physical step announces itself on a line of its own.
    assert!(coloured.contains("PRESENT-CARD-001  a presented card opens the door and logs the acs_id  \u{1b}[2m(physical step"));
}

#[test]
fn console_summary_lists_failures_with_expected_and_actual() {
    let plain = console_output(&sample_run(), false);
    let failures = plain
        .split("\nFailures:\n")
        .nth(1)
        .expect("a failures section");
    assert!(failures.contains("expected:  no card 990000123 on the terminal"));
    assert!(failures.contains("actual:    card 990000123 still present\n"));
    assert!(
        plain.contains(
            "Summary: 1 passed, 1 failed, 1 skipped, 1 not run, 1 error (5 cases, 4251 ms)"
        )
    );
    assert!(plain.contains("  PRESENT-CARD-001  needs a person at the terminal"));
    assert!(plain.contains("Clean-up: complete: 4 objects removed"));
    assert!(plain.ends_with("Result: NOT CARRIED OUT (exit code 2)\n"));
}

// ---------------------------------------------------------------------------------------
// Secrets

/// A real transport error of reqwest carrying a live-looking session token in its URL is
/// fed through every field of a run; no report shows the token, every report shows where
/// it was masked.
#[tokio::test]
async fn a_token_in_a_transport_error_reaches_no_report() {
    const TOKEN: &str = "Tok3n-live-9qZ";
    let error = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:1/load_objects.fcgi?session={TOKEN}"
        ))
        .send()
        .await
        .expect_err("nothing listens on port 1")
        .to_string();
    assert!(
        error.contains(TOKEN),
        "the error carries the token: {error}"
    );
    let login = format!(r#"{{"login":"admin","password":"{TOKEN}"}}"#);
    let mut run = sample_run();
    for result in &mut run.results {
        result.expected = Some(error.clone());
        result.actual = Some(format!("load_objects: {error}"));
        result.evidence = vec![exchange(&login, &format!(r#"200 {{"session":"{TOKEN}"}}"#))];
        result.changes = vec![format!("set monitor via {error}")];
    }
    run.cleanup = Cleanup::Incomplete {
        left: vec![format!("users 990000001 ({error})")],
        why: error,
    };
    run.interrupted = true;
    let outputs = [
        ("json", json::write(&run)),
        ("junit", junit::write(&run)),
        ("html", html::write(&run)),
        ("console", console_output(&run, false)),
        ("console with colour", console_output(&run, true)),
    ];
    for (name, text) in outputs {
        assert!(!text.contains(TOKEN), "{name} shows the token");
        assert!(
            text.contains("session=***"),
            "{name} shows where it was masked"
        );
    }
}
