//! The servers `bench/http.sh` loads with wrk (BENCHMARKS.md, simulator HTTP figures):
//!
//! - a simulated iDFace with USERS users (ids 1..=USERS) and CARDS cards (values from
//!   1,000,000, card `i` held by user `1 + i % USERS`);
//! - the ceiling: a bare axum handler per figure that reads the request body, parses it as
//!   JSON (as any JSON API must) and answers a fixed reply as long as the simulator's own
//!   reply to that figure's request (`{"session_is_valid": true}` for the session check,
//!   the same 100 rows for the page, `{"ids": […]}` with as many ids for a create).
//!
//! For the write figures a second ceiling, `<ceiling url>/stored/<name>`, also keeps what
//! is written: it parses the request the same way, then under one mutex stores each
//! created row (the parsed JSON object, moved) in a map by id, or sets the written members
//! on each stored row the `where` names (`id` equal to a number or within `>=`/`<`). It is
//! seeded with the same users. It checks nothing and logs nothing: the least a server
//! that keeps the rows in memory does.
//!
//! Every figure is a wrk script written into DIR (`<figure>.lua`), so the simulator and
//! the ceiling are loaded by the very same requests. Prints `SIM <url> <session>`,
//! `CEILING <url>` and one `FIGURE <name> <command>` line per figure (the ceiling of a
//! figure is `<ceiling url>/<name>`, the simulator's `<sim url>/<command>.fcgi`), then
//! `READY`, and serves until killed.
//!
//! `cargo run --release -p acs-simulator --example bench_server -- USERS CARDS DIR`

use std::collections::HashMap;
use std::sync::Arc;

use acs_simulator::Simulator;
use acs_simulator::wire::Members;
use axum::body::Bytes;
use axum::extract::Path;
use serde_json::{Map, Value as Json, json};

/// The allocator of the `acs-sim` binary, so the figure is the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Rows of a batch figure.
const BATCH: usize = 1_000;

/// One figure: its name, the device command, and the Lua of its wrk script (which sets
/// the method, the headers and the body, fixed or made per request).
struct Figure {
    name: &'static str,
    command: &'static str,
    lua: String,
}

fn fixed(body: &Json) -> String {
    format!(
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = '{body}'\n"
    )
}

/// A script whose body is made per request by the Lua function `body(n)`, `n` counting
/// requests from 1 (each wrk thread counts on its own, from `start` plus a thread offset).
fn per_request(start: u64, body_fn: &str) -> String {
    format!(
        r#"wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
counter = {start}
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("counter", {start} + (threads - 1) * 100000000)
end
{body_fn}
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, body(counter))
end
"#
    )
}

fn figures(users: u64) -> Vec<Figure> {
    let probe = users * 4 / 10 + 42;
    let batch = BATCH as u64;
    // Batches of modify_objects walk the users a thousand at a time, always in range.
    let windows = (users / batch).max(1);
    vec![
        Figure {
            name: "session_is_valid",
            command: "session_is_valid",
            lua: fixed(&json!({})),
        },
        Figure {
            name: "load_by_id",
            command: "load_objects",
            lua: fixed(&json!({"object": "users", "where": {"users": {"id": probe}}})),
        },
        Figure {
            name: "load_by_indexed_column",
            command: "load_objects",
            lua: fixed(&json!({"object": "cards", "where": {"cards": {"user_id": probe}}})),
        },
        Figure {
            name: "load_count",
            command: "load_objects",
            lua: fixed(&json!({"object": "users", "fields": ["COUNT(*)"]})),
        },
        Figure {
            name: "load_page_100",
            command: "load_objects",
            lua: fixed(&json!({"object": "users", "limit": 100, "offset": users / 2})),
        },
        Figure {
            name: "create_one",
            command: "create_objects",
            lua: per_request(
                10_000_000,
                r#"body = function(n)
  return '{"object":"users","values":[{"id":' .. n .. ',"name":"bench ' .. n .. '","registration":"B' .. n .. '"}]}'
end"#,
            ),
        },
        Figure {
            // One body for every request, made once (building 70 KB in Lua per request
            // held the ceiling itself to 1,800 req/s): the rows leave `id` out, so each
            // request stores a thousand new users under the next rowids.
            name: "create_batch_1000",
            command: "create_objects",
            lua: fixed(&json!({
                "object": "users",
                "values": (0..batch)
                    .map(|i| json!({"name": format!("bench {i}"), "registration": format!("B{i}")}))
                    .collect::<Vec<_>>(),
            })),
        },
        Figure {
            name: "modify_one",
            command: "modify_objects",
            lua: per_request(
                0,
                &format!(
                    r#"body = function(n)
  return '{{"object":"users","values":{{"name":"renamed ' .. n .. '"}},"where":{{"users":{{"id":' .. (1 + n % {users}) .. '}}}}}}'
end"#
                ),
            ),
        },
        Figure {
            name: "modify_batch_1000",
            command: "modify_objects",
            lua: per_request(
                0,
                &format!(
                    r#"body = function(n)
  local first = 1 + (n % {windows}) * {batch}
  return '{{"object":"users","values":{{"name":"renamed ' .. n .. '"}},"where":{{"users":{{"id":{{">=":' .. first .. ',"<":' .. (first + {batch}) .. '}}}}}}}}'
end"#
                ),
            ),
        },
    ]
}

/// The reply the ceiling gives for a figure: the same length as the simulator's.
fn ceiling_reply(
    device: &acs_simulator::Device,
    figure: &Figure,
    users: u64,
    probe_body: Option<&Json>,
) -> anyhow::Result<Bytes> {
    let reply = match (figure.command, probe_body) {
        ("session_is_valid", _) => json!({"session_is_valid": true}),
        ("load_objects", Some(body)) => device
            .load_objects(Members::of(body, "request").map_err(|e| anyhow::anyhow!("{e}"))?)?,
        ("create_objects", _) => {
            let n = if figure.name.contains("batch") {
                BATCH
            } else {
                1
            };
            // Ids as long as the simulator's: the script's own for one row, the next
            // rowids after the users seeded for a batch (a run adds some hundred thousand).
            let id = if n == 1 {
                10_000_000 + users
            } else {
                users + 500_000
            };
            json!({"ids": vec![id; n]})
        }
        ("modify_objects", _) => {
            let n = if figure.name.contains("batch") {
                BATCH
            } else {
                1
            };
            json!({"changes": n})
        }
        _ => anyhow::bail!("no ceiling reply for {}", figure.name),
    };
    Ok(Bytes::from(serde_json::to_vec(&reply)?))
}

/// The rows the storing ceiling keeps: JSON objects by id, and the next id for a row
/// without one.
struct StoredRows {
    rows: std::collections::BTreeMap<i64, Json>,
    next: i64,
}

impl StoredRows {
    fn seeded(users: u64) -> Self {
        let rows = (1..=users as i64)
            .map(|i| {
                let row =
                    json!({"id": i, "name": format!("User {i}"), "registration": format!("R{i}")});
                (i, row)
            })
            .collect();
        StoredRows {
            rows,
            next: users as i64 + 1,
        }
    }

    /// Stores what a parsed `create_objects` or `modify_objects` request writes.
    fn write(&mut self, command: &str, request: Json) {
        let Json::Object(mut request) = request else {
            return;
        };
        match (command, request.remove("values")) {
            ("create_objects", Some(Json::Array(rows))) => {
                for row in rows {
                    let id = row.get("id").and_then(Json::as_i64).unwrap_or(self.next);
                    self.next = self.next.max(id + 1);
                    self.rows.insert(id, row);
                }
            }
            ("modify_objects", Some(Json::Object(values))) => {
                let id = request.get("where").and_then(|w| w.pointer("/users/id"));
                let (low, high) = match id {
                    Some(Json::Number(n)) => (n.as_i64().unwrap_or(0), n.as_i64().unwrap_or(0) + 1),
                    Some(range) => (
                        range.get(">=").and_then(Json::as_i64).unwrap_or(i64::MIN),
                        range.get("<").and_then(Json::as_i64).unwrap_or(i64::MAX),
                    ),
                    None => (i64::MIN, i64::MAX),
                };
                for (_, row) in self.rows.range_mut(low..high) {
                    if let Json::Object(row) = row {
                        for (name, value) in &values {
                            row.insert(name.clone(), value.clone());
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// The fixed body of a figure's script, when it has one.
fn fixed_body(lua: &str) -> Option<Json> {
    let start = lua.find("wrk.body = '")? + "wrk.body = '".len();
    let end = start + lua[start..].find("'\n")?;
    serde_json::from_str(&lua[start..end]).ok()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // As the binary does (the ceilings share the process, so they run the same way).
    acs_simulator::huge_pages::avoid_transparent_huge_pages()?;
    let mut args = std::env::args().skip(1);
    let users: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let cards: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(0);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| ".".into()));
    anyhow::ensure!(users >= 1_000, "at least 1,000 users");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim = Simulator::builder()
        .journal_capacity(16)
        .spawn(listener)
        .await?;
    let row = |v: Json| -> Map<String, Json> { v.as_object().cloned().unwrap_or_default() };
    for chunk in (1..=users).collect::<Vec<_>>().chunks(10_000) {
        let rows: Vec<Map<String, Json>> = chunk
            .iter()
            .map(|i| {
                row(json!({"id": i, "name": format!("User {i}"), "registration": format!("R{i}")}))
            })
            .collect();
        sim.device().seed_rows("users", &rows)?;
    }
    for chunk in (0..cards).collect::<Vec<_>>().chunks(10_000) {
        let rows: Vec<Map<String, Json>> = chunk
            .iter()
            .map(|i| row(json!({"value": 1_000_000 + i, "user_id": 1 + i % users})))
            .collect();
        sim.device().seed_rows("cards", &rows)?;
    }
    let login = sim.device().login("admin", "admin")?;

    let figures = figures(users);
    let mut replies = HashMap::new();
    for figure in &figures {
        std::fs::write(dir.join(format!("{}.lua", figure.name)), &figure.lua)?;
        let body = fixed_body(&figure.lua);
        replies.insert(
            figure.name.to_owned(),
            ceiling_reply(sim.device(), figure, users, body.as_ref())?,
        );
    }
    let replies = Arc::new(replies);
    let commands: Arc<HashMap<&str, &str>> =
        Arc::new(figures.iter().map(|f| (f.name, f.command)).collect());
    let stored = Arc::new(std::sync::Mutex::new(StoredRows::seeded(users)));
    let ceiling = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ceiling_url = format!("http://{}", ceiling.local_addr()?);
    let bare_replies = Arc::clone(&replies);
    let app = axum::Router::new()
        .route(
            "/{figure}",
            axum::routing::any(move |Path(figure): Path<String>, body: Bytes| {
                let replies = Arc::clone(&bare_replies);
                async move {
                    if !body.is_empty() {
                        let parsed: Result<Json, _> = serde_json::from_slice(&body);
                        std::hint::black_box(parsed.is_ok());
                    }
                    let reply = replies.get(&figure).cloned().unwrap_or_default();
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        reply,
                    )
                }
            }),
        )
        .route(
            "/stored/{figure}",
            axum::routing::any(move |Path(figure): Path<String>, body: Bytes| {
                let (replies, commands, stored) = (
                    Arc::clone(&replies),
                    Arc::clone(&commands),
                    Arc::clone(&stored),
                );
                async move {
                    if let Ok(request) = serde_json::from_slice::<Json>(&body) {
                        let command = commands.get(figure.as_str()).copied().unwrap_or("");
                        stored
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .write(command, request);
                    }
                    let reply = replies.get(&figure).cloned().unwrap_or_default();
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        reply,
                    )
                }
            }),
        );
    tokio::spawn(async move { axum::serve(ceiling, app).await });
    println!("SIM {} {}", sim.base_url(), login.token);
    println!("CEILING {ceiling_url}");
    for figure in &figures {
        println!("FIGURE {} {}", figure.name, figure.command);
    }
    println!("READY");
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
