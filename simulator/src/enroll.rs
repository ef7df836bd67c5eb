//! Remote enrollment (docs/device-api.md §5): the device waits for the person, captures a
//! card, a face, a finger, or a PIN or password typed on its keypad, optionally saves it,
//! and answers synchronously or delivers the result by callback; `cancel_remote_enroll`
//! aborts it; `enroller_state` reports it.
//!
//! Waits use the scheduler clock: with `auto` a face is captured when the on-screen
//! countdown ends (the vendor's automatic mode); without it the person confirms the photo
//! as soon as their face is in view, after [`PRESENT_DELAY`], like a card, a finger or a
//! typed PIN or password. If nobody comes the device gives up after [`CAPTURE_TIMEOUT`] (no
//! source documents the firmware's timeout; 30 s is shorter than every client timeout seen,
//! 40–100 s).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value as Json, json};
use tokio_util::sync::CancellationToken;

use crate::device::{Device, DeviceError};
use crate::model::Model;
use crate::person::{self, Person, Presentation, Wanted};
use crate::scheduler::Scheduler;
use crate::wire::Members;

/// How long the device waits for a card, finger, typed PIN or password, or the person's
/// confirmation of a photo (manual face enrollment) before reading it.
pub const PRESENT_DELAY: Duration = Duration::from_secs(1);
/// How long the device waits for anybody before giving up.
pub const CAPTURE_TIMEOUT: Duration = Duration::from_secs(30);

/// What is being enrolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollKind {
    /// A card.
    Card,
    /// A face photo.
    Face,
    /// A fingerprint.
    Biometry,
    /// A PIN typed on the keypad.
    Pin,
    /// A password typed on the keypad.
    Password,
}

impl EnrollKind {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "card" => Some(EnrollKind::Card),
            "face" => Some(EnrollKind::Face),
            "biometry" => Some(EnrollKind::Biometry),
            "pin" => Some(EnrollKind::Pin),
            "password" => Some(EnrollKind::Password),
            _ => None,
        }
    }

    /// The `type` of a `remote_enroll` request and `enroller_state.last_enroll`.
    pub fn name(self) -> &'static str {
        match self {
            EnrollKind::Card => "card",
            EnrollKind::Face => "face",
            EnrollKind::Biometry => "biometry",
            EnrollKind::Pin => "pin",
            EnrollKind::Password => "password",
        }
    }

    /// The `enroller_state` while this kind is running.
    pub fn state_name(self) -> &'static str {
        match self {
            EnrollKind::Card => "ENROLL_CARD_STATE",
            EnrollKind::Face => "ENROLL_FACE_STATE",
            EnrollKind::Biometry => "ENROLL_BIOMETRY_STATE",
            EnrollKind::Pin => "ENROLL_PIN_STATE",
            EnrollKind::Password => "ENROLL_PASSWORD_STATE",
        }
    }

    fn supported_by(self, model: Model) -> bool {
        match self {
            EnrollKind::Card => model.has_card(),
            EnrollKind::Face => model.has_face(),
            EnrollKind::Biometry => model.has_fingerprint(),
            // Every simulated model has a keypad.
            EnrollKind::Pin | EnrollKind::Password => true,
        }
    }
}

/// A validated `remote_enroll` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollRequest {
    /// What to capture.
    pub kind: EnrollKind,
    /// Target user (resolved from `registration` when only that was given).
    pub user_id: Option<i64>,
    /// Store the result on the device.
    pub save: bool,
    /// Answer in the HTTP reply (true) or by callback (false).
    pub sync: bool,
    /// Face: capture automatically when the countdown ends (otherwise the person confirms
    /// the photo as soon as their face is in view).
    pub auto: bool,
    /// Face with `auto`: countdown seconds.
    pub countdown: u32,
    /// On-screen text (`message`, or `msg`).
    pub message: Option<String>,
    /// Biometry: enrol as duress finger.
    pub panic_finger: bool,
}

impl EnrollRequest {
    /// Reads and validates a request body the way the device does.
    pub fn parse(device: &Device, body: Members<'_>) -> Result<Self, DeviceError> {
        let kind_text = body.string("type")?;
        let kind = EnrollKind::parse(kind_text)
            .ok_or_else(|| DeviceError::Invalid(format!("Invalid enrollment type: {kind_text}")))?;
        if !kind.supported_by(device.model()) {
            return Err(DeviceError::Invalid(format!(
                "Enrollment type not supported by this device: {kind_text}"
            )));
        }
        let mut user_id = body.opt_int64("user_id")?;
        if user_id.is_none()
            && let Some(reg) = body.opt_string("registration")?
        {
            user_id = device.user_by_registration(reg);
            if user_id.is_none() {
                return Err(DeviceError::NoSuchUser);
            }
        }
        let save = body.opt_bool("save")?.unwrap_or(false);
        if save && !user_id.is_some_and(|id| device.user_exists(id)) {
            return Err(DeviceError::NoSuchUser);
        }
        let countdown = body.opt_int("countdown")?.unwrap_or(5);
        let message = match body.opt_string("message")? {
            Some(m) => Some(m.to_owned()),
            None => body.opt_string("msg")?.map(str::to_owned),
        };
        let panic_finger = match body.get("panic_finger") {
            None | Some(Json::Null) => false,
            Some(Json::Bool(b)) => *b,
            Some(_) => body.int("panic_finger")? != 0,
        };
        Ok(EnrollRequest {
            kind,
            user_id,
            save,
            sync: body.opt_bool("sync")?.unwrap_or(false),
            auto: body.opt_bool("auto")?.unwrap_or(false),
            countdown: u32::try_from(countdown.clamp(0, 60)).unwrap_or(5),
            message,
            panic_finger,
        })
    }
}

impl EnrollRequest {
    /// How long the device waits before it looks at what the person presents: the
    /// countdown of an automatic face enrollment, otherwise [`PRESENT_DELAY`].
    pub fn wait(&self) -> Duration {
        match (self.kind, self.auto) {
            (EnrollKind::Face, true) => Duration::from_secs(u64::from(self.countdown)),
            _ => PRESENT_DELAY,
        }
    }

    /// Whether the screen shows a countdown (an automatic face enrollment).
    pub fn counts_down(&self) -> bool {
        self.kind == EnrollKind::Face && self.auto
    }
}

/// A successful capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Captured {
    /// A card value.
    Card(u64),
    /// A face photo.
    Face {
        /// JPEG bytes.
        jpeg: Vec<u8>,
        /// Pixels.
        width: u32,
        /// Pixels.
        height: u32,
    },
    /// A PIN typed on the keypad.
    Pin(String),
    /// A password typed on the keypad.
    Password(String),
    /// A fingerprint bitmap (8-bit grayscale).
    Finger {
        /// 0 normal, 1 panic finger.
        finger_type: i64,
        /// `width × height` bytes.
        image: Vec<u8>,
        /// Pixels.
        width: u32,
        /// Pixels.
        height: u32,
    },
}

/// Why an enrollment ended without a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollFailure {
    /// Nobody presented anything in time.
    Timeout,
    /// `cancel_remote_enroll` (or a reboot) aborted it.
    Cancelled,
    /// The face already belongs to another user.
    FaceExists(i64),
    /// The capture or the save failed with this device error.
    Device(String),
}

impl EnrollFailure {
    /// The `error` member of a failed reply.
    pub fn error_code(&self) -> String {
        match self {
            EnrollFailure::Timeout => "TIMEOUT".into(),
            EnrollFailure::Cancelled => "CANCELED".into(),
            EnrollFailure::FaceExists(_) => "FACE_EXISTS".into(),
            EnrollFailure::Device(text) => text.clone(),
        }
    }

    /// `enroller_state.last_enroll_error` after this failure.
    pub fn last_error(&self) -> &'static str {
        match self {
            EnrollFailure::FaceExists(_) => "FACE_EXISTS",
            _ => "UNKNOWN",
        }
    }
}

/// `remote_enroll` while another enrollment runs.
pub const ALREADY_RUNNING: &str = "Enrollment already in progress";

#[derive(Debug, Default)]
struct State {
    running: Option<(EnrollKind, CancellationToken)>,
    last_enroll: Option<&'static str>,
    last_error: &'static str,
}

/// The device's enrollment slot: at most one enrollment at a time; clones share it.
#[derive(Debug, Clone, Default)]
pub struct Enroller {
    state: Arc<Mutex<State>>,
}

/// Holds the slot while an enrollment runs; frees it when dropped.
#[derive(Debug)]
pub struct Slot {
    enroller: Enroller,
    cancel: CancellationToken,
}

impl Slot {
    /// Fires when the enrollment is cancelled.
    pub fn cancelled(&self) -> CancellationToken {
        self.cancel.clone()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.enroller.lock().running = None;
    }
}

impl Enroller {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the slot for `kind`, or refuses because one is running.
    pub fn begin(&self, kind: EnrollKind, parent: &CancellationToken) -> Result<Slot, DeviceError> {
        let mut s = self.lock();
        if s.running.is_some() {
            return Err(DeviceError::Invalid(ALREADY_RUNNING.into()));
        }
        let cancel = parent.child_token();
        s.running = Some((kind, cancel.clone()));
        Ok(Slot {
            enroller: self.clone(),
            cancel,
        })
    }

    /// Aborts the running enrollment, if any; returns whether one was running.
    pub fn cancel(&self) -> bool {
        let s = self.lock();
        match &s.running {
            Some((_, token)) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// Records how the last enrollment ended.
    pub fn finish(&self, kind: EnrollKind, result: &Result<Captured, EnrollFailure>) {
        let mut s = self.lock();
        match result {
            Ok(_) => {
                s.last_enroll = Some(kind.name());
                s.last_error = "NONE";
            }
            Err(f) => {
                s.last_enroll = None;
                s.last_error = f.last_error();
            }
        }
    }

    /// The `enroller_state.fcgi` reply.
    pub fn state_json(&self) -> Json {
        let s = self.lock();
        let mut j = Map::new();
        let state = s
            .running
            .as_ref()
            .map_or("NORMAL_STATE", |(k, _)| k.state_name());
        j.insert("enroller_state".into(), json!(state));
        if let Some(last) = s.last_enroll {
            j.insert("last_enroll".into(), json!(last));
        }
        j.insert(
            "last_enroll_error".into(),
            json!(if s.last_error.is_empty() {
                "UNKNOWN"
            } else {
                s.last_error
            }),
        );
        let biometry = match s.running {
            Some((EnrollKind::Biometry, _)) => "ENROLL_FIRST_BIOMETRY_STATE",
            _ => "NOT_ENROLLING",
        };
        j.insert("biometry_state".into(), json!(biometry));
        Json::Object(j)
    }

    /// Whether an enrollment is running.
    pub fn is_running(&self) -> bool {
        self.lock().running.is_some()
    }
}

/// Waits for the person and captures what `request` asks for.
pub async fn capture(
    device: &Device,
    person: &Person,
    scheduler: &Scheduler,
    request: &EnrollRequest,
    cancel: &CancellationToken,
) -> Result<Captured, EnrollFailure> {
    let wanted = match request.kind {
        EnrollKind::Card => Wanted::Card,
        EnrollKind::Face => Wanted::Face,
        EnrollKind::Biometry => Wanted::Finger,
        EnrollKind::Pin => Wanted::Pin,
        EnrollKind::Password => Wanted::Password,
    };
    let wait = request.wait();
    let cancellable = |d: Duration| async move {
        tokio::select! {
            () = scheduler.sleep(d) => Ok(()),
            () = cancel.cancelled() => Err(EnrollFailure::Cancelled),
        }
    };
    cancellable(wait).await?;
    loop {
        let presentation = person.next(wanted);
        let captured = match (presentation, request.kind) {
            (Presentation::Nobody, _) => {
                cancellable(CAPTURE_TIMEOUT.saturating_sub(wait)).await?;
                return Err(EnrollFailure::Timeout);
            }
            (Presentation::Failure(text), _) => return Err(EnrollFailure::Device(text)),
            (Presentation::Card(value), EnrollKind::Card) => Captured::Card(value),
            (Presentation::FaceOf(user), EnrollKind::Face) => face(device.face_of(user))?,
            (Presentation::FaceImage(jpeg), EnrollKind::Face) => face(jpeg)?,
            (Presentation::Finger { seed }, EnrollKind::Biometry) => Captured::Finger {
                finger_type: i64::from(request.panic_finger),
                image: person::synthetic_fingerprint(seed),
                width: person::FINGER_WIDTH,
                height: person::FINGER_HEIGHT,
            },
            (Presentation::Pin(pin), EnrollKind::Pin) => Captured::Pin(typed(pin, "PIN")?),
            (
                Presentation::Password(password) | Presentation::IdAndPassword { password, .. },
                EnrollKind::Password,
            ) => Captured::Password(typed(password, "password")?),
            // The reader for another credential ignores what it cannot read.
            _ => continue,
        };
        if let Captured::Face { jpeg, .. } = &captured
            && let Some(owner) = device.face_owner(jpeg, request.user_id)
        {
            return Err(EnrollFailure::FaceExists(owner));
        }
        return Ok(captured);
    }
}

/// A PIN or password as typed: an empty entry is refused like a failed capture.
fn typed(entry: String, what: &str) -> Result<String, EnrollFailure> {
    if entry.is_empty() {
        return Err(EnrollFailure::Device(format!("Empty {what}")));
    }
    Ok(entry)
}

fn face(jpeg: Vec<u8>) -> Result<Captured, EnrollFailure> {
    let (width, height) = image::ImageReader::new(std::io::Cursor::new(&jpeg))
        .with_guessed_format()
        .ok()
        .and_then(|r| r.into_dimensions().ok())
        .ok_or_else(|| EnrollFailure::Device("Face not detected".into()))?;
    Ok(Captured::Face {
        jpeg,
        width,
        height,
    })
}

/// Stores a capture for `user_id` in the device's tables.
pub fn save(device: &Device, user_id: i64, captured: &Captured) -> Result<(), EnrollFailure> {
    let err = |e: DeviceError| EnrollFailure::Device(e.to_string());
    match captured {
        Captured::Card(value) => {
            let row = json!({"value": value, "user_id": user_id});
            device.seed_rows("cards", &[object(row)]).map_err(err)?;
        }
        Captured::Face { jpeg, .. } => {
            let now = device.local_now();
            let outcome = device
                .set_user_image(user_id, true, now, jpeg)
                .map_err(err)?;
            if let Some(p) = outcome.problems.first() {
                return Err(match p.match_user_id {
                    Some(owner) => EnrollFailure::FaceExists(owner),
                    None => EnrollFailure::Device(p.message.to_owned()),
                });
            }
        }
        Captured::Finger {
            finger_type, image, ..
        } => {
            let template = BASE64.encode(sha_template(image));
            let row = json!({"user_id": user_id, "finger_position": 0, "finger_type": finger_type, "template": template});
            device.seed_rows("templates", &[object(row)]).map_err(err)?;
        }
        Captured::Pin(pin) => device.enroll_pin(user_id, pin).map_err(err)?,
        Captured::Password(password) => device.enroll_password(user_id, password).map_err(err)?,
    }
    Ok(())
}

/// A deterministic stand-in for the template a terminal extracts from a bitmap.
pub fn sha_template(image: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    let mut t = b"SIMT".to_vec();
    t.extend_from_slice(&sha2::Sha256::digest(image));
    t
}

fn object(v: Json) -> Map<String, Json> {
    match v {
        Json::Object(m) => m,
        _ => Map::new(),
    }
}

/// The reply members describing a capture (the synchronous reply and callback bodies).
pub fn captured_members(captured: &Captured) -> Map<String, Json> {
    let mut m = Map::new();
    match captured {
        Captured::Card(v) => {
            m.insert("card_value".into(), json!(v));
        }
        Captured::Face { jpeg, .. } => {
            m.insert("user_image".into(), json!(BASE64.encode(jpeg)));
        }
        Captured::Pin(pin) => {
            m.insert("pin_value".into(), json!(pin));
        }
        Captured::Password(password) => {
            m.insert("password_value".into(), json!(password));
        }
        Captured::Finger {
            finger_type,
            image,
            width,
            height,
        } => {
            m.insert("finger_type".into(), json!(finger_type));
            m.insert(
                "fingerprints".into(),
                json!([{"width": width, "height": height, "image": BASE64.encode(image)}]),
            );
        }
    }
    m
}

/// Where an asynchronous result goes (docs/device-api.md §5.3): the online server's
/// `*_create.fcgi` in online modes; otherwise the monitor topic, only when `save` is false.
pub fn result_callbacks(
    device: &Device,
    request: &EnrollRequest,
    captured: &Captured,
) -> Vec<crate::callbacks::Callback> {
    let device_id = device.identity().device_id;
    let user_id = request.user_id.unwrap_or(0);
    let time = device.local_now();
    let config = |s: &str, k: &str| device.config_value(s, k).unwrap_or_default();
    let mut body = Map::new();
    body.insert("user_id".into(), json!(user_id));
    body.insert("device_id".into(), json!(device_id));
    if config("general", "online") == "1" {
        let Some(server) = device.online_server_address() else {
            return Vec::new();
        };
        let extract = config("online_client", "extract_template") == "1";
        let command = match captured {
            Captured::Card(v) => {
                body.insert("card_value".into(), json!(v));
                "card_create"
            }
            Captured::Face {
                jpeg,
                width,
                height,
            } => {
                body.insert(
                    "face".into(),
                    json!({"image": BASE64.encode(jpeg), "width": width, "height": height}),
                );
                "face_create"
            }
            Captured::Finger {
                finger_type, image, ..
            } if extract => {
                body.insert("finger_type".into(), json!(finger_type));
                body.insert("template".into(), json!(BASE64.encode(sha_template(image))));
                "template_create"
            }
            Captured::Finger { .. } => {
                body.extend(captured_members(captured));
                "fingerprint_create"
            }
            Captured::Pin(_) => {
                body.extend(captured_members(captured));
                "pin_create"
            }
            Captured::Password(_) => {
                body.extend(captured_members(captured));
                "password_create"
            }
        };
        return vec![crate::callbacks::Callback {
            url: format!("http://{}/{command}.fcgi", server.trim_end_matches('/')),
            topic: command.into(),
            body: Json::Object(body),
            timeout: crate::callbacks::timeout_ms(&config("online_client", "request_timeout")),
            time,
        }];
    }
    if request.save {
        return Vec::new();
    }
    let topic = match captured {
        Captured::Card(_) => "card",
        Captured::Face { .. } => "user_image",
        Captured::Finger { .. } => "template",
        Captured::Pin(_) => "pin",
        Captured::Password(_) => "password",
    };
    body.extend(captured_members(captured));
    crate::callbacks::monitor_callback(device, topic, Json::Object(body))
        .into_iter()
        .collect()
}
