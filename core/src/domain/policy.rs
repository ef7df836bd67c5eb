//! The core's fixed policies, in one place: how many wrong PINs lock a cloud key, and how
//! long a selfie-enrollment link works when the operator does not say.

use jiff::SignedDuration;

/// Wrong PINs in a row that lock a cloud key (an operator clears the lockout).
pub const MAX_PIN_ATTEMPTS: u32 = 5;

/// How long a selfie-enrollment link works when the operator does not say.
pub const INVITATION_VALIDITY: SignedDuration = SignedDuration::from_hours(24);
