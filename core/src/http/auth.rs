//! `Authorization: Bearer <key>`: the tenant API key a request carries (the keys
//! themselves are the application's, `app::api_keys`).

/// The key in an `Authorization` header value, if it is a bearer key of our shape.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, key) = header.trim().split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && key.starts_with("acs_") && key.len() <= 128)
        .then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bearer_keys_of_our_shape_are_read() {
        assert_eq!(bearer("Bearer acs_x_y"), Some("acs_x_y"));
        assert_eq!(bearer("bearer   acs_x_y "), Some("acs_x_y"));
        assert_eq!(bearer("Basic acs_x_y"), None);
        assert_eq!(bearer("Bearer sk_live"), None);
        assert_eq!(bearer("Bearer"), None);
    }
}
