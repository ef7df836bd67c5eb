//! Push mode (docs/device-api.md §8): a terminal behind NAT polls its server for commands.
//!
//! While `push_server.push_remote_address` is set, the terminal sends
//! `GET <address>/push?deviceId=<id>&uuid=<8 hex>` every `push_request_period` seconds
//! (scheduler time, 1 s to a day) with a `push_request_timeout` ms timeout (100 ms to 60 s). An empty 200 means nothing
//! to do; otherwise the reply is one command `{"verb", "endpoint", "body", "contentType",
//! "queryString"}` or a batch `{"transactions": [{"transactionid", …}]}`. Commands run
//! without a session, exactly as the same request over HTTP would, and the outcome goes to
//! `POST <address>/result?deviceId=..&uuid=..` as `{"response": …}`, `{"error": …}` or
//! `{"transactions_results": [{"transactionid", "success", "response" | "error"}]}`;
//! after a result the terminal polls again at once. The loop runs while the terminal is
//! powered; every poll and result is a callback attempt in the journal.

use std::time::Duration;

use serde_json::{Map, Value as Json, json};
use tokio_util::sync::CancellationToken;

use crate::callbacks::Callback;
use crate::device::Device;
use crate::device::config::{PUSH_REQUEST_PERIOD, PUSH_REQUEST_TIMEOUT};
use crate::journal::CallbackAttempt;
use crate::terminal::Terminal;

/// Where and how often to poll, from the `push_server` section.
#[derive(Debug, Clone, PartialEq)]
pub struct PushSettings {
    /// Base URL with a scheme, without a trailing slash.
    pub base: String,
    /// Timeout of each request (`push_request_timeout`, 100 ms – 60 s).
    pub timeout: Duration,
    /// Wait after an empty or failed poll (`push_request_period`, 1 s – a day).
    pub period: Duration,
}

/// The push settings of `device`, or `None` while no `push_remote_address` is set.
pub fn settings(device: &Device) -> Option<PushSettings> {
    let address = device.config_value("push_server", "push_remote_address")?;
    let address = address.trim().trim_end_matches('/');
    if address.is_empty() {
        return None;
    }
    let base = if address.starts_with("http://") || address.starts_with("https://") {
        address.to_owned()
    } else {
        format!("http://{address}")
    };
    let timeout = PUSH_REQUEST_TIMEOUT.read(
        device
            .config_value("push_server", "push_request_timeout")
            .as_deref(),
    );
    let period = PUSH_REQUEST_PERIOD.read(
        device
            .config_value("push_server", "push_request_period")
            .as_deref(),
    );
    Some(PushSettings {
        base,
        timeout,
        period,
    })
}

/// One command as the server sends it.
#[derive(Debug, Clone, PartialEq)]
struct Command {
    endpoint: String,
    query: String,
    body: Vec<u8>,
}

/// Reads one command object; the error is what goes back in `{"error": …}`.
fn command(o: &Map<String, Json>) -> Result<Command, String> {
    let endpoint = o
        .get("endpoint")
        .and_then(Json::as_str)
        .map(|e| e.trim_start_matches('/').trim_end_matches(".fcgi"))
        .filter(|e| !e.is_empty())
        .ok_or("Invalid push command: endpoint must be a non-empty string")?;
    if let Some(verb) = o.get("verb") {
        let verb = verb
            .as_str()
            .ok_or("Invalid push command: verb must be a string")?;
        if !["GET", "POST"].contains(&verb.to_ascii_uppercase().as_str()) {
            return Err(format!("Invalid push command: unsupported verb {verb}"));
        }
    }
    let body = match o.get("body") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::String(s)) => s.clone().into_bytes(),
        Some(other) => other.to_string().into_bytes(),
    };
    let query = match o.get("queryString") {
        None | Some(Json::Null) => String::new(),
        Some(Json::String(q)) => q.trim_start_matches('?').to_owned(),
        Some(_) => return Err("Invalid push command: queryString must be a string".into()),
    };
    Ok(Command {
        endpoint: endpoint.to_owned(),
        query,
        body,
    })
}

/// Runs the server's reply to a poll and builds the result body.
async fn execute(terminal: &Terminal, reply: &Json) -> Json {
    let Some(o) = reply.as_object() else {
        return json!({"error": "Invalid push command: expected a JSON object"});
    };
    if let Some(transactions) = o.get("transactions") {
        let Some(list) = transactions.as_array() else {
            return json!({"error": "Invalid push command: transactions must be a list"});
        };
        let mut results = Vec::with_capacity(list.len());
        for t in list {
            let id = t.get("transactionid").cloned().unwrap_or(Json::Null);
            let outcome = match t
                .as_object()
                .ok_or_else(|| "Invalid push command: a transaction must be an object".to_owned())
            {
                Ok(t) => run(terminal, t).await,
                Err(e) => Err(e),
            };
            results.push(match outcome {
                Ok(response) => json!({"transactionid": id, "success": true, "response": response}),
                Err(error) => json!({"transactionid": id, "success": false, "error": error}),
            });
        }
        return json!({"transactions_results": results});
    }
    match run(terminal, o).await {
        Ok(response) => json!({"response": response}),
        Err(error) => json!({"error": error}),
    }
}

async fn run(terminal: &Terminal, o: &Map<String, Json>) -> Result<Json, String> {
    let c = command(o)?;
    crate::api::execute_pushed(terminal, &c.endpoint, &c.query, &c.body).await
}

/// What a poll brought back.
enum Poll {
    /// A command (or batch) to run.
    Work(Json),
    /// Nothing to do, or the server could not be reached: wait a period.
    Idle,
}

async fn poll(terminal: &Terminal, push: &PushSettings, device_id: &str, uuid: &str) -> Poll {
    let url = format!("{}/push", push.base);
    let record = Callback {
        url: url.clone(),
        topic: "push".into(),
        body: json!({}),
        timeout: push.timeout,
        time: terminal.device.local_now(),
    };
    let answer = terminal
        .http
        .get(&url)
        .query(&[("deviceId", device_id), ("uuid", uuid)])
        .timeout(push.timeout)
        .send()
        .await;
    let (outcome, body) = match answer {
        Ok(r) => (Ok(r.status().as_u16()), crate::online::read_reply(r).await),
        Err(e) => (Err(failure(&e)), None),
    };
    terminal
        .journal
        .record_callback(CallbackAttempt::sent(&record, 1, outcome.clone()));
    let body = body.unwrap_or_default();
    if outcome != Ok(200) || body.iter().all(u8::is_ascii_whitespace) {
        return Poll::Idle;
    }
    match serde_json::from_slice(&body) {
        Ok(json) => Poll::Work(json),
        Err(e) => {
            tracing::warn!(error = %e, "push server sent a command that is not JSON");
            Poll::Work(Json::String(String::from_utf8_lossy(&body).into_owned()))
        }
    }
}

async fn deliver(
    terminal: &Terminal,
    push: &PushSettings,
    device_id: &str,
    uuid: &str,
    result: Json,
) {
    let url = format!("{}/result", push.base);
    let record = Callback {
        url: url.clone(),
        topic: "result".into(),
        body: result.clone(),
        timeout: push.timeout,
        time: terminal.device.local_now(),
    };
    let outcome = match terminal
        .http
        .post(&url)
        .query(&[("deviceId", device_id), ("uuid", uuid)])
        .json(&result)
        .timeout(push.timeout)
        .send()
        .await
    {
        Ok(r) => Ok(r.status().as_u16()),
        Err(e) => Err(failure(&e)),
    };
    terminal
        .journal
        .record_callback(CallbackAttempt::sent(&record, 1, outcome));
}

fn failure(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".to_owned()
    } else {
        "connection refused".to_owned()
    }
}

/// Polls the push server while the terminal is powered (until `stop`).
pub(crate) async fn run_loop(terminal: Terminal, stop: CancellationToken) {
    let mut changes = terminal.device.subscribe_configuration();
    loop {
        let Some(push) = settings(&terminal.device) else {
            // Not configured: wait for a configuration change.
            tokio::select! {
                () = stop.cancelled() => return,
                changed = changes.changed() => if changed.is_err() { return },
            }
            continue;
        };
        let device_id = terminal.device.identity().device_id.to_string();
        let uuid = crate::online::uuid(&terminal);
        let work = tokio::select! {
            () = stop.cancelled() => return,
            work = poll(&terminal, &push, &device_id, &uuid) => work,
        };
        match work {
            Poll::Work(command) => {
                let result = execute(&terminal, &command).await;
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = deliver(&terminal, &push, &device_id, &uuid, result) => {}
                }
            }
            Poll::Idle => tokio::select! {
                () = stop.cancelled() => return,
                () = terminal.scheduler.sleep(push.period) => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(j: Json) -> Map<String, Json> {
        j.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn commands_are_read_like_the_documented_shape() {
        let c = command(&object(json!({"verb": "POST", "endpoint": "load_objects",
            "body": {"object": "users"}, "contentType": "application/json", "queryString": "limit=10"})))
        .unwrap();
        assert_eq!(c.endpoint, "load_objects");
        assert_eq!(c.query, "limit=10");
        assert_eq!(c.body, br#"{"object":"users"}"#);
        let c = command(&object(json!({"endpoint": "/reboot.fcgi", "body": "{}"}))).unwrap();
        assert_eq!(
            (c.endpoint.as_str(), c.body.as_slice()),
            ("reboot", &b"{}"[..])
        );
    }

    #[test]
    fn malformed_commands_get_an_error_text() {
        for bad in [
            json!({}),
            json!({"endpoint": ""}),
            json!({"endpoint": 3}),
            json!({"endpoint": "x", "verb": "DELETE"}),
            json!({"endpoint": "x", "queryString": 1}),
        ] {
            let e = command(&object(bad.clone())).unwrap_err();
            assert!(e.starts_with("Invalid push command"), "{bad}: {e}");
        }
    }
}
