//! The one redaction function every text passes through before it reaches an output of
//! the suite: the console, the JSON, JUnit and HTML reports, a recording, the log.
//!
//! A terminal's session token is a password while it lives: whoever reads it can drive the
//! device. Tokens travel in URLs (`?session=…`, which reqwest prints in every transport
//! error), in cookies and in login replies; passwords travel in login requests (JSON or a
//! form). [`redact`] masks all of them, wherever they sit in a text, with `***`:
//!
//! - `session=<token>` in a query string, a cookie or a form, raw or percent-encoded;
//! - `"session": "<token>"` and `"password": "<secret>"` in JSON (also JSON inside a JSON
//!   string, where the quotes are escaped), and `password=<secret>` in a form;
//! - the credentials of an `Authorization: Bearer <key>` / `Basic <…>` header.
//!
//! It is idempotent and never grows a text by more than the masks it inserts.

/// What replaces a secret.
pub const MASK: &str = "***";

/// Characters that end a token in a URL, a cookie or a form.
fn ends_token(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '&' | ';' | '"' | '\'' | ')' | '>' | '<' | ',' | '\\' | '#'
        )
}

/// Masks what follows every occurrence of `key` (case-insensitive) up to the end of the
/// token.
fn mask_after(text: &str, key: &str, end: fn(char) -> bool) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    while let Some(found) = lower[from..].find(key) {
        let start = from + found + key.len();
        // `session=` must start a parameter: the beginning, `?`, `&`, `;`, or a space.
        let before = text[..from + found].chars().next_back();
        let starts_parameter = !key.starts_with('s')
            || before.is_none_or(|c| matches!(c, '?' | '&' | ';' | ' ' | '(' | '"' | '\''));
        out.push_str(&text[from..start]);
        let rest = &text[start..];
        let len = rest.find(end).unwrap_or(rest.len());
        if starts_parameter && len > 0 {
            out.push_str(MASK);
        } else {
            out.push_str(&rest[..len]);
        }
        from = start + len;
    }
    out.push_str(&text[from..]);
    out
}

/// Masks the string value of the JSON member `"name"` (quotes possibly escaped).
fn mask_json_member(text: &str, name: &str) -> String {
    let mut out = text.to_owned();
    for quote in ["\"", "\\\""] {
        let key = format!("{quote}{name}{quote}");
        let mut result = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(i) = rest.find(&key) {
            let after_key = i + key.len();
            result.push_str(&rest[..after_key]);
            rest = &rest[after_key..];
            // Optional spaces, a colon, optional spaces, then the opening quote.
            let trimmed = rest.trim_start();
            let Some(after_colon) = trimmed.strip_prefix(':') else {
                continue;
            };
            let value = after_colon.trim_start();
            let Some(inner) = value.strip_prefix(quote) else {
                continue;
            };
            let skipped = rest.len() - inner.len();
            result.push_str(&rest[..skipped]);
            let end = inner.find(quote).unwrap_or(inner.len());
            result.push_str(MASK);
            rest = &inner[end..];
        }
        result.push_str(rest);
        out = result;
    }
    out
}

/// Masks every session token, password and authorization credential in `text`.
pub fn redact(text: &str) -> String {
    let mut out = mask_after(text, "session=", ends_token);
    out = mask_after(&out, "session%3d", ends_token);
    out = mask_after(&out, "password=", ends_token);
    // Credentials of an `Authorization` header (only there: "the basic API" stays).
    for scheme in [
        "authorization: bearer ",
        "authorization: basic ",
        "authorization:bearer ",
    ] {
        out = mask_after(&out, scheme, ends_token);
    }
    for name in ["session", "password", "token", "secret"] {
        out = mask_json_member(&out, name);
    }
    out
}

/// A writer that redacts what goes through it, a line at a time: text is held until a
/// line ends (or the writer is flushed), so a token written in pieces is still seen whole.
/// The console and the log go through one.
#[derive(Debug)]
pub struct Redacting<W: std::io::Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: std::io::Write> Redacting<W> {
    /// Redacts what is written to `inner`.
    pub fn new(inner: W) -> Redacting<W> {
        Redacting {
            inner,
            pending: Vec::new(),
        }
    }

    /// The writer underneath (anything pending is written first).
    pub fn into_inner(mut self) -> W {
        let _ = self.emit(self.pending.len());
        self.inner
    }

    fn emit(&mut self, upto: usize) -> std::io::Result<()> {
        if upto == 0 {
            return Ok(());
        }
        let chunk: Vec<u8> = self.pending.drain(..upto).collect();
        let text = String::from_utf8_lossy(&chunk);
        self.inner.write_all(redact(&text).as_bytes())
    }
}

impl<W: std::io::Write> std::io::Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if let Some(last) = self.pending.iter().rposition(|b| *b == b'\n') {
            self.emit(last + 1)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.emit(self.pending.len())?;
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_in_urls_are_masked() {
        let e = "error sending request for url (http://10.0.0.5/load_objects.fcgi?session=Ab%2Fc9)";
        assert_eq!(
            redact(e),
            "error sending request for url (http://10.0.0.5/load_objects.fcgi?session=***)"
        );
        assert_eq!(
            redact("/x.fcgi?user_id=5&session=tok&timestamp=1"),
            "/x.fcgi?user_id=5&session=***&timestamp=1"
        );
        assert_eq!(
            redact("Cookie: session=tok; other=1"),
            "Cookie: session=***; other=1"
        );
    }

    #[test]
    fn json_members_are_masked_also_when_escaped() {
        assert_eq!(
            redact(r#"{"login":"admin","password":"pw","session" : "tok"}"#),
            r#"{"login":"admin","password":"***","session" : "***"}"#
        );
        assert_eq!(
            redact(r#""body":"{\"session\":\"tok\"}""#),
            r#""body":"{\"session\":\"***\"}""#
        );
    }

    #[test]
    fn forms_and_authorization_are_masked() {
        assert_eq!(
            redact("login=admin&password=s3cret"),
            "login=admin&password=***"
        );
        assert_eq!(
            redact("Authorization: Bearer abc.def"),
            "Authorization: Bearer ***"
        );
    }

    #[test]
    fn a_token_written_in_pieces_is_masked_when_its_line_ends() {
        use std::io::Write as _;
        let mut w = Redacting::new(Vec::new());
        write!(w, "GET /x?session=").unwrap();
        write!(w, "tok").unwrap();
        writeln!(w, "&a=1").unwrap();
        write!(w, "password=pw").unwrap();
        assert_eq!(
            String::from_utf8(w.into_inner()).unwrap(),
            "GET /x?session=***&a=1\npassword=***"
        );
    }

    #[test]
    fn other_words_stay_and_redaction_is_idempotent() {
        let text = "the session expired; sessions=3; possession=x; the basic API; a bearer bond";
        assert_eq!(redact(text), text);
        let once = redact("?session=tok&password=pw");
        assert_eq!(redact(&once), once);
    }
}
