//! Webhook endpoints as the domain sees them: the event types an endpoint may subscribe
//! to, what makes a URL, a description and a list of event types acceptable, and when
//! repeated failure disables an endpoint.

use super::validation::{InvalidField, Problem, required_text};

/// Every event type an endpoint may subscribe to: the access events the core records
/// (`type` of each event of `/v1/access-events`) and the webhooks' own.
pub const EVENT_TYPES: &[&str] = &[
    "access.granted",
    "access.denied",
    "credential.issued",
    "credential.revoked",
    "credential.locked_out",
    "phone.enrolled",
    "phone.deactivated",
    "enrollment.finished",
    WEBHOOK_DISABLED,
];

/// The event sent to a tenant's other endpoints when one is disabled.
pub const WEBHOOK_DISABLED: &str = "webhook.disabled";

/// An endpoint is disabled once this many of its messages in a row were given up (each
/// after every attempt the outbox allows failed); one delivery resets the count.
pub const DISABLE_AFTER_FAILED_MESSAGES: u32 = 5;

/// The longest URL accepted.
pub const MAX_URL: usize = 2048;

/// The longest description accepted.
pub const MAX_DESCRIPTION: usize = 200;

/// Whether `event_type` is one an endpoint may subscribe to.
pub fn is_event_type(event_type: &str) -> bool {
    EVENT_TYPES.contains(&event_type)
}

/// Checks an endpoint's URL: `http://` or `https://`, a host, no spaces or control
/// characters, at most [`MAX_URL`] characters.
pub fn check_url(url: &str) -> Result<String, InvalidField> {
    let url = required_text("url", url, MAX_URL)?;
    let expected = Problem::Invalid {
        expected: "an http:// or https:// URL with a host",
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| InvalidField::new("url", expected.clone()))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    let host = host.strip_prefix('[').map_or_else(
        || host.split(':').next().unwrap_or(""),
        |v6| v6.split(']').next().unwrap_or(""),
    );
    if host.is_empty() || url.chars().any(char::is_whitespace) {
        return Err(InvalidField::new("url", expected));
    }
    Ok(url)
}

/// Checks a description (may be empty; at most [`MAX_DESCRIPTION`] characters).
pub fn check_description(text: &str) -> Result<String, InvalidField> {
    if text.trim().is_empty() {
        return Ok(String::new());
    }
    required_text("description", text, MAX_DESCRIPTION)
}

/// Checks the event types of an endpoint: at least one, each known; duplicates dropped,
/// the order kept.
pub fn check_event_types(types: &[String]) -> Result<Vec<String>, InvalidField> {
    if types.is_empty() {
        return Err(InvalidField::new("event_types", Problem::Empty));
    }
    let mut out: Vec<String> = Vec::with_capacity(types.len());
    for (i, t) in types.iter().enumerate() {
        if !is_event_type(t) {
            return Err(InvalidField::new(
                format!("event_types[{i}]"),
                Problem::Invalid {
                    expected: "a known event type (see the API reference)",
                },
            ));
        }
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_with_a_host_are_accepted() {
        for ok in [
            "https://hooks.example.com/acs",
            "http://127.0.0.1:8080/in?x=1",
            "https://user@example.com",
            "http://[::1]:9/",
        ] {
            assert_eq!(check_url(ok).as_deref(), Ok(ok), "{ok}");
        }
        for bad in [
            "",
            "ftp://example.com",
            "https://",
            "https:///path",
            "example.com",
            "https://exa mple.com",
            "http://:80/",
        ] {
            assert_eq!(
                check_url(bad).map_err(|e| e.field),
                Err("url".into()),
                "{bad}"
            );
        }
    }

    #[test]
    fn event_types_must_be_known_and_are_deduplicated() {
        let types = |t: &[&str]| t.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            check_event_types(&types(&[
                "access.denied",
                "access.granted",
                "access.denied"
            ])),
            Ok(types(&["access.denied", "access.granted"]))
        );
        assert_eq!(
            check_event_types(&types(&["access.granted", "door.opened"])).map_err(|e| e.field),
            Err("event_types[1]".into())
        );
        assert_eq!(
            check_event_types(&[]).map_err(|e| e.field),
            Err("event_types".into())
        );
    }
}
