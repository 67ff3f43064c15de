//! SASL on a listener: the mechanisms it enables (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), the
//! users PLAIN checks, and one exchange's server side.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use aws_lc_rs::{constant_time, digest};

use super::KafkaPrincipal;
use super::scram::{ScramCredential, ScramMechanism, ScramServer, Step};

/// A SASL mechanism Strata serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// PLAIN (RFC 4616), against `sasl.plain.users.file`.
    Plain,
    /// SCRAM, against the credentials in the metadata log.
    Scram(ScramMechanism),
}

impl Mechanism {
    /// Its SASL name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::Scram(m) => m.name(),
        }
    }

    /// The mechanism of a SASL name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "PLAIN" => Some(Self::Plain),
            other => ScramMechanism::from_name(other).map(Self::Scram),
        }
    }
}

/// PLAIN's users: name → SHA-256 of the password.
#[derive(Debug, Clone, Default)]
pub struct PlainUsers(BTreeMap<String, Vec<u8>>);

impl PlainUsers {
    /// Reads `name:password` or `name:sha256:<hex of the password's SHA-256>` lines; blank
    /// lines and `#` comments are skipped.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut users = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, secret) = line
                .split_once(':')
                .filter(|(name, _)| !name.is_empty())
                .ok_or_else(|| format!("line {} is not name:password", n + 1))?;
            let hash = match secret.strip_prefix("sha256:") {
                Some(hex) => decode_hex(hex)
                    .filter(|h| h.len() == 32)
                    .ok_or_else(|| format!("line {}: sha256: needs 64 hex digits", n + 1))?,
                None => sha256(secret.as_bytes()),
            };
            if users.insert(name.to_owned(), hash).is_some() {
                return Err(format!("line {}: user '{name}' is listed twice", n + 1));
            }
        }
        Ok(Self(users))
    }

    /// Whether `password` is `user`'s; as long for an unknown user as for a known one.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        const NOBODY: [u8; 32] = [0; 32];
        let given = sha256(password);
        let (known, stored) = match self.0.get(user) {
            Some(stored) => (true, stored.as_slice()),
            None => (false, &NOBODY[..]),
        };
        constant_time::verify_slices_are_equal(&given, stored).is_ok() && known
    }
}

fn sha256(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, data).as_ref().to_vec()
}

/// The bytes of a hex string, if it is one.
pub(crate) fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A listener's SASL settings.
#[derive(Debug, Clone)]
pub struct SaslConfig {
    /// Mechanisms enabled, in the order announced (`sasl.enabled.mechanisms`).
    pub mechanisms: Vec<Mechanism>,
    /// PLAIN's users (`sasl.plain.users.file`).
    pub plain_users: PlainUsers,
    /// How long a session lasts before the client must authenticate again
    /// (`connections.max.reauth.ms`, KIP-368); `None`: for the connection's life.
    pub reauth: Option<Duration>,
    /// How long a failed authentication waits before it is answered and the connection closed
    /// (`connection.failed.authentication.delay.ms`).
    pub failure_delay: Duration,
    /// Largest SASL token accepted before authentication (`sasl.server.max.receive.size`).
    pub max_receive_size: usize,
}

impl SaslConfig {
    /// The enabled mechanism of a name.
    pub fn mechanism(&self, name: &str) -> Option<Mechanism> {
        Mechanism::from_name(name).filter(|m| self.mechanisms.contains(m))
    }

    /// The enabled mechanisms' names.
    pub fn mechanism_names(&self) -> Vec<&'static str> {
        self.mechanisms.iter().map(|m| m.name()).collect()
    }
}

/// One SASL exchange, server side.
pub enum Exchange {
    /// PLAIN: one message.
    Plain,
    /// SCRAM: two messages.
    Scram(Box<ScramServer>),
}

impl Exchange {
    /// A new exchange of `mechanism`.
    pub fn new(mechanism: Mechanism) -> Self {
        match mechanism {
            Mechanism::Plain => Self::Plain,
            Mechanism::Scram(m) => Self::Scram(Box::new(ScramServer::new(m))),
        }
    }

    /// Takes the client's next message.
    pub fn step(
        &mut self,
        message: &[u8],
        config: &SaslConfig,
        scram: &dyn Fn(&str) -> Option<ScramCredential>,
    ) -> Step {
        match self {
            Self::Plain => plain(message, &config.plain_users),
            Self::Scram(server) => server.step(message, scram),
        }
    }
}

/// PLAIN: `authzid NUL authcid NUL password`; the authorization id, if given, must be the user.
fn plain(message: &[u8], users: &PlainUsers) -> Step {
    let mut parts = message.split(|b| *b == 0);
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Step::Failed("a PLAIN message is authzid NUL user NUL password".into());
    };
    let Ok(user) = std::str::from_utf8(user) else {
        return Step::Failed("a PLAIN user name that is not UTF-8".into());
    };
    if !authzid.is_empty() && authzid != user.as_bytes() {
        return Step::Failed(format!("authorization id is not the user '{user}'"));
    }
    if user.is_empty() {
        return Step::Failed("an empty PLAIN user name".into());
    }
    if users.verify(user, password) {
        Step::Done(KafkaPrincipal::user(user), Vec::new())
    } else {
        Step::Failed(format!("user '{user}': wrong password or unknown user"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_checks_the_file() {
        let users = PlainUsers::parse(
            "# users\nalice:secret\nbob:sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b\n",
        )
        .unwrap();
        assert!(users.verify("alice", b"secret"));
        assert!(users.verify("bob", b"secret"));
        assert!(!users.verify("alice", b"Secret"));
        assert!(!users.verify("carol", b"secret"));
        assert!(matches!(plain(b"\0alice\0secret", &users), Step::Done(p, _) if p.name == "alice"));
        assert!(matches!(
            plain(b"alice\0alice\0secret", &users),
            Step::Done(..)
        ));
        assert!(matches!(
            plain(b"bob\0alice\0secret", &users),
            Step::Failed(_)
        ));
        assert!(matches!(plain(b"\0alice\0nope", &users), Step::Failed(_)));
        assert!(matches!(plain(b"alice", &users), Step::Failed(_)));
        assert!(PlainUsers::parse("alice:a\nalice:b").is_err());
        assert!(PlainUsers::parse("nopassword").is_err());
        assert!(PlainUsers::parse("x:sha256:12").is_err());
    }
}
