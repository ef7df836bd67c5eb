//! Doors and decisions: actions on the relay or Security Box, identification decided against the device's rules and logged, and what was actuated.

use serde_json::{Value as Json, json};

use crate::device::actions::Actuation;
use crate::device::*;
use crate::wire::Members;

impl Device {
    /// `execute_actions.fcgi`: every action is checked before any is performed.
    pub fn execute_actions(&self, actions: &[Json]) -> Result<Vec<ActuationRecord>, DeviceError> {
        let model = self.model();
        let mut planned = Vec::with_capacity(actions.len());
        for a in actions {
            let m = Members::of(a, "actions")?;
            let name = m.string("action")?;
            let parameters = m.opt_string("parameters")?.unwrap_or("");
            planned.push(actions::actuation(model, name, parameters)?);
        }
        self.mutate(|s| {
            let now = s.clock.local_now();
            let device_id = s.identity.device_id;
            let mut done = Vec::with_capacity(planned.len());
            for actuation in planned {
                let event = json!({"event": actuation.event_name(), "type": "OPEN",
                    "identification": "", "device_id": device_id, "timestamp": now});
                if let Json::Object(row) = event {
                    s.db.insert("access_events", &[row])?;
                }
                let record = ActuationRecord {
                    time: now,
                    actuation,
                };
                s.actuations.push(record.clone());
                done.push(record);
            }
            Ok(done)
        })
    }

    /// Decides a presentation at `portal_id` like the terminal in standalone mode, writes
    /// the `access_logs` row (and its rule link), and on a grant runs the portal's actions
    /// and stamps `users.last_access`. Returns the decision, the log row and what moved.
    pub fn decide_and_log(
        &self,
        credential: &decide::Credential,
        portal_id: i64,
    ) -> Result<Logged, DeviceError> {
        self.mutate(|s| {
            let now = s.clock.local_now();
            let decision = decide::decide(&s.db, credential, portal_id, now, s.qr_in_cards());
            s.log_decision(credential, portal_id, decision, None)
        })
    }

    /// The user a credential belongs to on this device (online Pro mode identifies locally).
    pub fn identify_user(&self, credential: &decide::Credential) -> Option<(i64, String, String)> {
        let s = self.lock();
        let user = decide::identify(&s.db, credential, s.qr_in_cards())?;
        let users = s.db.table("users").ok()?;
        let row = users.row(user)?;
        let text = |c: &str| users.cell(row, c).as_text().unwrap_or_default().to_owned();
        Some((user, text("name"), text("registration")))
    }

    /// Logs a decision taken elsewhere (by the online server) and performs `actions`
    /// (`(action, parameters)` pairs from the server's reply) on a grant.
    pub fn log_decision(
        &self,
        credential: &decide::Credential,
        portal_id: i64,
        decision: decide::Decision,
        actions: &[(String, String)],
    ) -> Result<Logged, DeviceError> {
        self.mutate(|s| s.log_decision(credential, portal_id, decision, Some(actions)))
    }

    /// Number of rows in `access_logs` (reported by `device_is_alive`).
    pub fn access_log_count(&self) -> usize {
        self.lock().db.table("access_logs").map_or(0, |t| t.len())
    }

    /// Whether access rule `rule` reaches `user` at `portal_id` and is active at the
    /// device-local second `now` (for assertions about decisions).
    pub fn rule_reaches_and_active(&self, rule: i64, user: i64, portal_id: i64, now: i64) -> bool {
        let s = self.lock();
        decide::rules_reaching(&s.db, user, portal_id).contains(&rule)
            && decide::rule_active(&s.db, rule, now)
    }

    /// How long an actuation keeps its relay energised: `general.relay<N>_timeout` for an
    /// internal door relay, the Security Box's `sec_boxs.relay_timeout` for a Security Box
    /// (both ms, 3 s when unset, at most an hour).
    pub fn relay_time(&self, actuation: &Actuation) -> std::time::Duration {
        let s = self.lock();
        match *actuation {
            Actuation::Door { door } => config::RELAY_TIMEOUT
                .read(s.config.value("general", &format!("relay{door}_timeout"))),
            Actuation::SecBox { id, .. } => {
                let cell = s.db.table("sec_boxs").ok().and_then(|t| {
                    let row = t.row(id)?;
                    t.cell(row, "relay_timeout").as_int()
                });
                config::RELAY_TIMEOUT.read_int(cell)
            }
        }
    }

    /// Every actuation since the last reboot, oldest first.
    pub fn actuations(&self) -> Vec<ActuationRecord> {
        self.lock().actuations.clone()
    }
}
