//! Sessions and logins: logging in and out, session checks per command, changing the login, the web password's digest.

use rand::Rng;

use crate::device::*;

impl Device {
    /// `login.fcgi`.
    pub fn login(&self, login: &str, password: &str) -> Result<Login, DeviceError> {
        let mut s = self.lock();
        if !s.credentials.accept(login, password) {
            return Err(DeviceError::BadCredentials);
        }
        let now = s.clock.now_utc();
        let token = s.sessions.open(now);
        Ok(Login {
            token,
            first_web_login: s.first_web_login,
        })
    }

    /// Whether `token` is a live session (`session_is_valid.fcgi`).
    pub fn session_is_valid(&self, token: &str) -> bool {
        self.read().sessions.is_valid(token)
    }

    /// Checks the session of an authenticated command; on refusal returns the device's
    /// error text for `command`.
    pub fn authorize(&self, token: Option<&str>, command: &str) -> Result<(), String> {
        let s = self.read();
        let now = s.clock.now_utc();
        match token {
            Some(t) if s.sessions.touch(t, now) => Ok(()),
            _ => Err(s.session_error.replace("{command}", command)),
        }
    }

    /// `logout.fcgi`.
    pub fn logout(&self, token: Option<&str>) {
        if let Some(t) = token {
            self.lock().sessions.close(t);
        }
    }

    /// `change_login.fcgi`: new credentials, every session ends.
    pub fn change_login(&self, login: &str, password: &str) -> Result<(), DeviceError> {
        if login.is_empty() {
            return Err(DeviceError::Invalid("Invalid login".into()));
        }
        self.mutate(|s| {
            s.credentials = Credentials::new(login, password, &mut s.credential_rng);
            s.first_web_login = false;
            s.sessions.clear();
            Ok(())
        })
    }

    /// `is_first_web_login.fcgi`.
    pub fn is_first_web_login(&self) -> bool {
        self.lock().first_web_login
    }

    /// Ends every session now (fault injection: "session expiry now").
    pub fn expire_sessions(&self) {
        self.lock().sessions.clear();
    }

    /// Number of live sessions.
    pub fn session_count(&self) -> usize {
        self.lock().sessions.len()
    }

    /// `user_hash_password.fcgi`: `(64-hex SHA-256, 32-char salt)`.
    pub fn hash_password(&self, password: &str) -> (String, String) {
        let salt: String = {
            let mut s = self.lock();
            (0..32)
                .map(|_| char::from(b"0123456789abcdef"[s.rng.random_range(0..16)]))
                .collect()
        };
        (decide::password_digest(password, &salt), salt)
    }
}
