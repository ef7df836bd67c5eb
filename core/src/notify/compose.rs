//! The texts of the messages changes cause. Each function returns the messages to append
//! (one per channel asked for); the caller adds them to its plan, so they are committed with
//! the change. Nothing here puts a selfie in a message; a PIN goes only to its owner.

use jiff::Timestamp;

use crate::domain::{Access, Credential, Invitation, Person};
use crate::store::{Channel, NewMessage};

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recipients<'a> {
    /// The e-mail address, if the message goes by e-mail.
    pub email: Option<&'a str>,
    /// The mobile number, if it goes by text.
    pub text: Option<&'a str>,
}

impl<'a> Recipients<'a> {
    /// The person's own contact details, preferring e-mail when both are known (welcome
    /// messages go one way only).
    pub fn preferred(person: &'a Person) -> Recipients<'a> {
        match (&person.contact.email, &person.contact.phone_number) {
            (Some(email), _) => Recipients {
                email: Some(email),
                text: None,
            },
            (None, Some(number)) => Recipients {
                email: None,
                text: Some(number),
            },
            (None, None) => Recipients {
                email: None,
                text: None,
            },
        }
    }
}

fn messages(
    to: Recipients<'_>,
    subject: &str,
    body: &str,
    cause: &str,
    record_id: u64,
    now: Timestamp,
) -> Vec<NewMessage> {
    let one = |channel: Channel, recipient: &str| NewMessage {
        channel,
        recipient: recipient.to_owned(),
        subject: subject.to_owned(),
        body: body.to_owned(),
        cause: cause.to_owned(),
        record_id: Some(record_id),
        created_at: now,
    };
    to.email
        .map(|r| one(Channel::Email, r))
        .into_iter()
        .chain(to.text.map(|r| one(Channel::Text, r)))
        .collect()
}

fn greeting(person: &Person) -> String {
    if person.name.is_empty() {
        "Hello,".to_owned()
    } else {
        format!("Hello {},", person.name)
    }
}

/// The link of a selfie invitation.
pub fn invitation_link(public_url: &str, token: &str) -> String {
    format!("{public_url}/public/selfie-invitations/{token}")
}

/// The link of a cloud key.
pub fn cloud_key_link(public_url: &str, token: &str) -> String {
    format!("{public_url}/public/cloud-keys/{token}")
}

/// The selfie invitation's link, to the addresses it names.
pub fn invitation(
    person: &Person,
    invitation: &Invitation,
    link: &str,
    now: Timestamp,
) -> Vec<NewMessage> {
    let body = format!(
        "{}\n\nPlease take a selfie to enroll your face for door access:\n{link}\n\n\
         The link works from {} until {} and only once.\n",
        greeting(person),
        invitation.valid_from,
        invitation.expires_at
    );
    messages(
        Recipients {
            email: invitation.delivery.email.as_deref(),
            text: invitation.delivery.text.as_deref(),
        },
        "Enroll your face for door access",
        &body,
        "invitation.created",
        invitation.id.get(),
        now,
    )
}

/// A cloud key's link and PIN, to its owner only.
pub fn cloud_key(
    person: &Person,
    credential: &Credential,
    link: &str,
    pin: &str,
    to: Recipients<'_>,
    now: Timestamp,
) -> Vec<NewMessage> {
    let window = match (credential.window.from(), credential.window.to()) {
        (Some(from), Some(to)) => format!("It works from {from} until {to}."),
        (None, Some(to)) => format!("It works until {to}."),
        (Some(from), None) => format!("It works from {from}."),
        (None, None) => String::new(),
    };
    let once = if credential.max_uses == Some(1) {
        " It opens a door once."
    } else {
        ""
    };
    let body = format!(
        "{}\n\nYour key to open doors: {link}\nYour PIN: {pin}\n\n{window}{once}\n\
         Keep the PIN to yourself; after several wrong PINs the key locks.\n",
        greeting(person)
    );
    messages(
        to,
        "Your door key",
        &body,
        "cloud_key.issued",
        credential.id.get(),
        now,
    )
}

/// Welcome for a new mobile key.
pub fn welcome_mobile_key(
    person: &Person,
    credential: &Credential,
    now: Timestamp,
) -> Vec<NewMessage> {
    let body = format!(
        "{}\n\nA mobile key was issued to you. Every phone you register receives it \
         automatically.\n",
        greeting(person)
    );
    messages(
        Recipients::preferred(person),
        "Welcome: your mobile key",
        &body,
        "welcome.mobile_key",
        credential.id.get(),
        now,
    )
}

/// Welcome for a person added to an access that asks for one.
pub fn welcome_access(person: &Person, access: &Access, now: Timestamp) -> Vec<NewMessage> {
    let body = format!(
        "{}\n\nYou were given access: {}.\n",
        greeting(person),
        access.name
    );
    messages(
        Recipients::preferred(person),
        &format!("Welcome: {}", access.name),
        &body,
        "welcome.access",
        access.id.get(),
        now,
    )
}
