//! Replays every exchange in `fixtures/protocol/` against a factory-default simulator and
//! compares the replies. The fixtures are written from the vendor documentation (see
//! `fixtures/README.md` for the format and placeholders), never from this code.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use acs_simulator::Model;
use axum::http::Method;
use base64::Engine as _;
use serde_json::{Value as Json, json};

use crate::support::{Reply, TestDevice, pct};

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn fixture_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            fixture_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

/// Captured values by name.
type Vars = HashMap<String, Json>;

fn var_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Replaces `{{NAME}}` occurrences in a string with captured values.
fn substitute_str(s: &str, vars: &Vars) -> String {
    let mut out = s.to_owned();
    for (name, value) in vars {
        out = out.replace(&format!("{{{{{name}}}}}"), &var_text(value));
    }
    out
}

/// Substitutes placeholders inside a JSON request body; a string that is exactly one
/// placeholder takes the captured value with its JSON type.
fn substitute_json(v: &Json, vars: &Vars) -> Json {
    match v {
        Json::String(s) => {
            if let Some(name) = s.strip_prefix("{{").and_then(|r| r.strip_suffix("}}"))
                && let Some(value) = vars.get(name)
            {
                return value.clone();
            }
            Json::String(substitute_str(s, vars))
        }
        Json::Array(items) => Json::Array(items.iter().map(|i| substitute_json(i, vars)).collect()),
        Json::Object(map) => Json::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), substitute_json(v, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn placeholder(s: &str) -> Option<&str> {
    s.strip_prefix("{{").and_then(|r| r.strip_suffix("}}"))
}

/// Structural comparison with placeholders and captures.
fn matches(expected: &Json, actual: &Json, vars: &mut Vars, at: &str) -> Result<(), String> {
    if let Json::String(s) = expected
        && let Some(p) = placeholder(s)
    {
        let ok = match p {
            "any" => true,
            "string" => actual.is_string(),
            "int" => actual.is_i64() || actual.is_u64(),
            "bool" => actual.is_boolean(),
            "base64" => actual.as_str().is_some_and(|s| {
                !s.is_empty() && base64::engine::general_purpose::STANDARD.decode(s).is_ok()
            }),
            _ if p.starts_with("capture:") => {
                vars.insert(p["capture:".len()..].to_owned(), actual.clone());
                true
            }
            name => match vars.get(name) {
                Some(v) => v == actual || var_text(v) == var_text(actual),
                None => return Err(format!("{at}: unknown placeholder {s}")),
            },
        };
        return if ok {
            Ok(())
        } else {
            Err(format!("{at}: expected {s}, got {actual}"))
        };
    }
    match (expected, actual) {
        (Json::Object(e), Json::Object(a)) => {
            let open = e.get("{{..}}") == Some(&Json::Bool(true));
            for (k, ev) in e {
                if k == "{{..}}" {
                    continue;
                }
                let av = a
                    .get(k)
                    .ok_or_else(|| format!("{at}: missing member '{k}' in {actual}"))?;
                matches(ev, av, vars, &format!("{at}.{k}"))?;
            }
            if !open && let Some(extra) = a.keys().find(|k| !e.contains_key(*k)) {
                return Err(format!("{at}: unexpected member '{extra}' in {actual}"));
            }
            Ok(())
        }
        (Json::Array(e), Json::Array(a)) => {
            if e.len() != a.len() {
                return Err(format!(
                    "{at}: expected {} elements, got {}: {actual}",
                    e.len(),
                    a.len()
                ));
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                matches(ev, av, vars, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        _ if expected == actual => Ok(()),
        _ => Err(format!("{at}: expected {expected}, got {actual}")),
    }
}

fn bind_session(vars: &mut Vars) {
    if let Some(Json::String(token)) = vars.get("session").cloned() {
        vars.insert("session_pct".into(), Json::String(pct(&token)));
    }
}

async fn replay_exchange(device: &TestDevice, ex: &Json, vars: &mut Vars) -> Result<(), String> {
    let req = &ex["request"];
    let method: Method = req["method"]
        .as_str()
        .unwrap_or("POST")
        .parse()
        .map_err(|_| "bad method".to_owned())?;
    let mut uri = req["path"]
        .as_str()
        .ok_or("request.path missing")?
        .to_owned();
    if let Some(query) = req["query"].as_object() {
        let parts: Vec<String> = query
            .iter()
            .map(|(k, v)| {
                let raw = var_text(v);
                let value = if raw.contains("{{session}}") || raw.contains("{{session_pct}}") {
                    substitute_str(&raw, vars)
                } else {
                    pct(&substitute_str(&raw, vars))
                };
                format!("{k}={value}")
            })
            .collect();
        uri = format!("{uri}?{}", parts.join("&"));
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(h) = req["headers"].as_object() {
        for (k, v) in h {
            headers.push((k.clone(), substitute_str(&var_text(v), vars)));
        }
    }
    // A `Content-Type` among the fixture's headers replaces the body kind's default (a
    // form-encoded `body_text`, for one).
    let typed = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    let mut default_type = |ct: &str| {
        if !typed {
            headers.push(("content-type".into(), ct.into()));
        }
    };
    let body = if let Some(b) = req.get("body") {
        default_type("application/json");
        substitute_json(b, vars).to_string().into_bytes()
    } else if let Some(t) = req["body_text"].as_str() {
        default_type("application/json");
        substitute_str(t, vars).into_bytes()
    } else if let Some(f) = req["body_file"].as_str() {
        default_type("application/octet-stream");
        std::fs::read(fixtures_root().join(f)).map_err(|e| format!("body_file {f}: {e}"))?
    } else {
        Vec::new()
    };
    let header_refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let reply: Reply = device.send(method, &uri, &header_refs, body).await;

    let resp = &ex["response"];
    let shown = || {
        String::from_utf8_lossy(&reply.bytes)
            .chars()
            .take(300)
            .collect::<String>()
    };
    if let Some(status) = resp["status"].as_u64()
        && u64::from(reply.status.as_u16()) != status
    {
        return Err(format!(
            "{uri}: status {} (expected {status}): {}",
            reply.status,
            shown()
        ));
    }
    if let Some(ct) = resp["content_type"].as_str() {
        let actual = reply.content_type.clone().unwrap_or_default();
        if !actual.starts_with(ct) {
            return Err(format!("{uri}: content type {actual:?} (expected {ct})"));
        }
    }
    if let Some(expected) = resp.get("body") {
        if expected == "{{empty}}" {
            let empty = reply.bytes.iter().all(u8::is_ascii_whitespace)
                || serde_json::from_slice::<Json>(&reply.bytes).ok() == Some(json!({}));
            if !empty {
                return Err(format!("{uri}: expected an empty reply, got {}", shown()));
            }
        } else {
            let actual: Json = serde_json::from_slice(&reply.bytes)
                .map_err(|e| format!("{uri}: reply is not JSON ({e}): {}", shown()))?;
            matches(expected, &actual, vars, "body").map_err(|e| format!("{uri}: {e}"))?;
        }
    }
    if let Some(f) = resp["body_file"].as_str() {
        let expected =
            std::fs::read(fixtures_root().join(f)).map_err(|e| format!("body_file {f}: {e}"))?;
        if expected != reply.bytes {
            return Err(format!(
                "{uri}: body differs from {f} ({} vs {} bytes)",
                reply.bytes.len(),
                expected.len()
            ));
        }
    }
    bind_session(vars);
    Ok(())
}

async fn replay(path: &Path) -> Result<usize, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let fixture: Json = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    for member in ["title", "source", "evidence", "exchanges"] {
        if fixture.get(member).is_none() {
            return Err(format!("missing '{member}'"));
        }
    }
    let model: Model = fixture["model"]
        .as_str()
        .unwrap_or("iDFace")
        .parse()
        .map_err(|e| format!("{e}"))?;
    let device = TestDevice::new(model);
    let mut vars = Vars::new();
    if fixture["login"] != Json::Bool(false) {
        vars.insert("session".into(), Json::String(device.login().await));
        bind_session(&mut vars);
    }
    let exchanges = fixture["exchanges"]
        .as_array()
        .ok_or("exchanges is not an array")?;
    for (i, ex) in exchanges.iter().enumerate() {
        replay_exchange(&device, ex, &mut vars)
            .await
            .map_err(|e| format!("exchange {i}: {e}"))?;
    }
    Ok(exchanges.len())
}

#[tokio::test]
async fn every_protocol_fixture_replays() {
    let mut files = Vec::new();
    fixture_files(&fixtures_root().join("protocol"), &mut files);
    files.sort();
    assert!(
        files.len() >= 40,
        "expected the documented fixtures, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    let mut exchanges = 0;
    for file in &files {
        match replay(file).await {
            Ok(n) => exchanges += n,
            Err(e) => failures.push(format!(
                "{}: {e}",
                file.strip_prefix(fixtures_root()).unwrap_or(file).display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    assert!(exchanges >= files.len());
}

#[test]
fn matcher_placeholders_work_and_can_fail() {
    let mut vars = Vars::new();
    let expected = json!({"session": "{{capture:s}}", "n": "{{int}}", "{{..}}": true});
    matches(
        &expected,
        &json!({"session": "a/b", "n": 5, "extra": 1}),
        &mut vars,
        "b",
    )
    .unwrap();
    assert_eq!(vars["s"], "a/b");
    assert!(matches(&json!({"n": "{{int}}"}), &json!({"n": "5"}), &mut vars, "b").is_err());
    assert!(matches(&json!({"a": 1}), &json!({"a": 1, "b": 2}), &mut vars, "b").is_err());
    assert!(matches(&json!([1, 2]), &json!([1]), &mut vars, "b").is_err());
    assert!(matches(&json!({"x": "{{s}}"}), &json!({"x": "a/b"}), &mut vars, "b").is_ok());
}

#[test]
fn every_protocol_fixture_has_a_provenance_row() {
    let readme = std::fs::read_to_string(fixtures_root().join("README.md")).expect("README");
    let mut files = Vec::new();
    fixture_files(&fixtures_root().join("protocol"), &mut files);
    let missing: Vec<String> = files
        .iter()
        .filter_map(|f| f.strip_prefix(fixtures_root()).ok())
        .map(|f| f.display().to_string())
        .filter(|f| !readme.contains(&format!("| `{f}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "fixtures/README.md has no provenance row for: {missing:?}"
    );
}
