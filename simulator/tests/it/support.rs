//! Helpers: a simulator driven through its router without sockets, on a manual clock.

use acs_simulator::{ManualTime, Model, Simulator, TimeMode, TimeSource};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value as Json, json};
use tower::ServiceExt as _;

/// 2025-11-10 11:15:00 UTC: the manual clock's starting point in tests.
pub(crate) const TEST_EPOCH: i64 = 1_762_773_300;

/// A reply as the tests see it.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) content_type: Option<String>,
    pub(crate) bytes: Vec<u8>,
}

impl Reply {
    pub(crate) fn json(&self) -> Json {
        serde_json::from_slice(&self.bytes).unwrap_or_else(|e| {
            panic!(
                "reply is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.bytes)
            )
        })
    }
}

/// A simulator on a manual clock, called through its router.
pub(crate) struct TestDevice {
    pub(crate) sim: Simulator,
    router: axum::Router,
}

impl TestDevice {
    pub(crate) fn new(model: Model) -> Self {
        let time = ManualTime::starting_at(TEST_EPOCH);
        let sim = Simulator::builder()
            .model(model)
            .seed(7)
            .time(TimeSource::Manual(time))
            // Waits (enrollment countdowns) pass at once: replies do not depend on them.
            .time_mode(TimeMode::Scaled(0.0))
            .build()
            .expect("simulator builds");
        TestDevice::from_simulator(sim)
    }

    /// A simulator built by the caller (another clock, model or seed).
    pub(crate) fn from_simulator(sim: Simulator) -> Self {
        let router = sim.router();
        TestDevice { sim, router }
    }

    pub(crate) fn idface() -> Self {
        TestDevice::new(Model::IdFace)
    }

    /// Sends one request; `path_and_query` like `/load_objects.fcgi?session=…`.
    pub(crate) async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path_and_query);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        call(
            &self.router,
            req.body(Body::from(body)).expect("request builds"),
        )
        .await
    }

    /// POSTs JSON to `command` with `session` (if any) in the query.
    pub(crate) async fn post(&self, command: &str, session: Option<&str>, body: &Json) -> Reply {
        let uri = match session {
            Some(s) => format!("/{command}.fcgi?session={}", pct(s)),
            None => format!("/{command}.fcgi"),
        };
        self.send(
            Method::POST,
            &uri,
            &[("content-type", "application/json")],
            body.to_string().into_bytes(),
        )
        .await
    }

    pub(crate) async fn login(&self) -> String {
        let r = self
            .post(
                "login",
                None,
                &json!({"login": "admin", "password": "admin"}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.bytes)
        );
        r.json()["session"].as_str().expect("session").to_owned()
    }
}

/// Sends `req` through `router` (no socket) and reads the whole reply.
pub(crate) async fn call(router: &axum::Router, req: Request<Body>) -> Reply {
    let response = router
        .clone()
        .oneshot(req)
        .await
        .expect("router is infallible");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Reply {
        status,
        content_type,
        bytes,
    }
}

/// Percent-encodes a query value.
pub(crate) fn pct(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A small textured JPEG, different for each `variant`.
pub(crate) fn jpeg(variant: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(240, 240, |x, y| {
        image::Rgb([
            (x as u8).wrapping_mul(variant),
            (y as u8) ^ variant,
            ((x + y) as u8).wrapping_add(variant),
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode jpeg");
    out.into_inner()
}
