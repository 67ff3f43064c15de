//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka uses them: the server side
//! of the exchange, and the credential a password becomes (salt, iterations, StoredKey,
//! ServerKey; the password and the salted password are never kept).

use std::num::NonZeroU32;
use std::sync::LazyLock;

use aws_lc_rs::{constant_time, digest, hmac, pbkdf2};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::KafkaPrincipal;

/// Fewest iterations a credential may have (Kafka's `ScramMechanism` minimum).
pub const MIN_ITERATIONS: i32 = 4096;
/// Most iterations a credential may have.
pub const MAX_ITERATIONS: i32 = 16384;

/// A SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl ScramMechanism {
    /// Both, in Kafka's order.
    pub const ALL: [Self; 2] = [Self::Sha256, Self::Sha512];

    /// Its SASL name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SCRAM-SHA-256",
            Self::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism of a SASL name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Its code in AlterUserScramCredentials and DescribeUserScramCredentials.
    pub fn code(self) -> i8 {
        match self {
            Self::Sha256 => 1,
            Self::Sha512 => 2,
        }
    }

    /// The mechanism of a protocol code.
    pub fn from_code(code: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.code() == code)
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            Self::Sha256 => hmac::HMAC_SHA256,
            Self::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            Self::Sha256 => &digest::SHA256,
            Self::Sha512 => &digest::SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            Self::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            Self::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn len(self) -> usize {
        self.digest().output_len()
    }

    fn hmac_of(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac(), key), data)
            .as_ref()
            .to_vec()
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest(), data).as_ref().to_vec()
    }

    /// Hi(password, salt, iterations) of RFC 5802: what a client sends in
    /// AlterUserScramCredentials.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0; self.len()];
        let iterations = NonZeroU32::new(iterations.max(1)).expect("at least one");
        pbkdf2::derive(self.pbkdf2(), iterations, salt, password, &mut out);
        out
    }

    /// The credential kept for a salted password.
    pub fn credential(
        self,
        salt: Vec<u8>,
        salted_password: &[u8],
        iterations: i32,
    ) -> ScramCredential {
        let client_key = self.hmac_of(salted_password, b"Client Key");
        ScramCredential {
            stored_key: self.hash(&client_key),
            server_key: self.hmac_of(salted_password, b"Server Key"),
            salt,
            iterations,
        }
    }
}

/// What the broker keeps of a SCRAM password.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// The salt.
    pub salt: Vec<u8>,
    /// H(ClientKey).
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: i32,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// Whether `password` is the one `credential` was made from, as HTTP Basic authentication
/// checks it: PBKDF2 (slow on purpose; run it off the async threads), then H(ClientKey) against
/// StoredKey in constant time. With no credential the same work runs against a made-up one,
/// so that an unknown user costs as long as a wrong password.
pub fn verify_password(
    mechanism: ScramMechanism,
    user: &str,
    credential: Option<&ScramCredential>,
    password: &[u8],
) -> bool {
    let mock = mock_credential(mechanism, user);
    let (known, credential) = match credential {
        Some(c) => (true, c),
        None => (false, &mock),
    };
    let iterations = u32::try_from(credential.iterations).unwrap_or(MIN_ITERATIONS as u32);
    let salted = mechanism.salted_password(password, &credential.salt, iterations);
    let client_key = mechanism.hmac_of(&salted, b"Client Key");
    let matches = constant_time::verify_slices_are_equal(
        &mechanism.hash(&client_key),
        &credential.stored_key,
    )
    .is_ok();
    matches && known
}

/// Random bytes from the system's generator.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = vec![0; n];
    aws_lc_rs::rand::fill(&mut out).expect("the system random generator works");
    out
}

/// A secret of this process, for the credentials of users that do not exist.
static MOCK_SECRET: LazyLock<Vec<u8>> = LazyLock::new(|| random_bytes(32));

/// A credential for a user that does not exist, so that the exchange runs to its end as for a
/// real user with a wrong password, with the same salt each time for the same name.
fn mock_credential(mechanism: ScramMechanism, user: &str) -> ScramCredential {
    let derive =
        |label: &str| mechanism.hmac_of(&MOCK_SECRET, format!("{label}\0{user}").as_bytes());
    let mut salt = derive("salt");
    salt.truncate(16);
    ScramCredential {
        salt,
        stored_key: derive("stored"),
        server_key: derive("server"),
        iterations: MIN_ITERATIONS,
    }
}

/// How one step of an exchange ended.
#[derive(Debug)]
pub enum Step {
    /// Send this and wait for the client's next message.
    Continue(Vec<u8>),
    /// Authenticated as the principal; send the final message.
    Done(KafkaPrincipal, Vec<u8>),
    /// Refused, for the log (the client only ever hears "invalid credentials").
    Failed(String),
}

enum State {
    First,
    Final {
        user: String,
        credential: Option<ScramCredential>,
        client_first_bare: String,
        server_first: String,
        nonce: String,
        gs2_header: String,
    },
    Finished,
}

/// The server side of one SCRAM exchange.
pub struct ScramServer {
    mechanism: ScramMechanism,
    state: State,
}

impl ScramServer {
    /// A new exchange.
    pub fn new(mechanism: ScramMechanism) -> Self {
        Self {
            mechanism,
            state: State::First,
        }
    }

    /// Takes the client's next message; `lookup` finds a user's credential.
    pub fn step(
        &mut self,
        message: &[u8],
        lookup: &dyn Fn(&str) -> Option<ScramCredential>,
    ) -> Step {
        let Ok(text) = std::str::from_utf8(message) else {
            self.state = State::Finished;
            return Step::Failed("a SCRAM message that is not UTF-8".into());
        };
        match std::mem::replace(&mut self.state, State::Finished) {
            State::First => match self.first(text, lookup) {
                Ok(reply) => Step::Continue(reply.into_bytes()),
                Err(e) => Step::Failed(e),
            },
            State::Final {
                user,
                credential,
                client_first_bare,
                server_first,
                nonce,
                gs2_header,
            } => {
                let known = credential.is_some();
                let credential =
                    credential.unwrap_or_else(|| mock_credential(self.mechanism, &user));
                // The check runs for an unknown user too, so that it takes as long.
                let checked = self.last(
                    text,
                    &credential,
                    &client_first_bare,
                    &server_first,
                    &nonce,
                    &gs2_header,
                );
                match checked {
                    _ if !known => Step::Failed(format!("unknown user '{user}'")),
                    Ok(reply) => Step::Done(KafkaPrincipal::user(user), reply.into_bytes()),
                    Err(e) => Step::Failed(format!("user '{user}': {e}")),
                }
            }
            State::Finished => Step::Failed("a SCRAM message after the exchange ended".into()),
        }
    }

    fn first(
        &mut self,
        text: &str,
        lookup: &dyn Fn(&str) -> Option<ScramCredential>,
    ) -> Result<String, String> {
        // gs2-header: channel binding flag, optional authzid, then client-first-bare.
        let mut parts = text.splitn(3, ',');
        let (flag, authzid, bare) = match (parts.next(), parts.next(), parts.next()) {
            (Some(flag), Some(authzid), Some(bare)) => (flag, authzid, bare),
            _ => return Err("client-first-message is not gs2-header,client-first-bare".into()),
        };
        match flag {
            "n" | "y" => {}
            _ => return Err(format!("channel binding '{flag}' is not supported")),
        }
        let mut user = None;
        let mut nonce = None;
        for attribute in bare.split(',') {
            match attribute.split_once('=') {
                Some(("n", name)) => user = Some(sasl_name(name)?),
                Some(("r", value)) => nonce = Some(value),
                Some(("m", _)) => return Err("mandatory SCRAM extensions are not supported".into()),
                Some(("tokenauth", _)) => {
                    return Err("delegation tokens are not supported".into());
                }
                _ => {}
            }
        }
        let user = user.ok_or("client-first-message has no user name")?;
        let client_nonce = nonce
            .filter(|n| !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b','))
            .ok_or("client-first-message has no valid nonce")?;
        if let Some(authzid) = authzid.strip_prefix("a=")
            && sasl_name(authzid)? != user
        {
            return Err(format!(
                "authorization id '{authzid}' is not the user '{user}'"
            ));
        }
        let credential = lookup(&user);
        let shown = credential
            .clone()
            .unwrap_or_else(|| mock_credential(self.mechanism, &user));
        let nonce = format!(
            "{client_nonce}{}",
            BASE64
                .encode(random_bytes(24))
                .replace(['+', '/', '='], "x")
        );
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&shown.salt),
            shown.iterations
        );
        self.state = State::Final {
            user,
            credential,
            client_first_bare: bare.to_owned(),
            server_first: server_first.clone(),
            nonce,
            gs2_header: format!("{flag},{authzid},"),
        };
        Ok(server_first)
    }

    fn last(
        &self,
        text: &str,
        credential: &ScramCredential,
        client_first_bare: &str,
        server_first: &str,
        nonce: &str,
        gs2_header: &str,
    ) -> Result<String, String> {
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or("client-final-message has no proof")?;
        let mut binding = None;
        let mut final_nonce = None;
        for attribute in without_proof.split(',') {
            match attribute.split_once('=') {
                Some(("c", value)) => binding = Some(value),
                Some(("r", value)) => final_nonce = Some(value),
                _ => {}
            }
        }
        if binding != Some(BASE64.encode(gs2_header).as_str()) {
            return Err("channel binding does not match the client-first-message".into());
        }
        // The nonce must be the one this server made (CVE-2024-56128).
        if final_nonce != Some(nonce) {
            return Err("the nonce is not the one of this exchange".into());
        }
        let proof = BASE64
            .decode(proof)
            .map_err(|_| "the proof is not base64")?;
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let mechanism = self.mechanism;
        let signature = mechanism.hmac_of(&credential.stored_key, auth_message.as_bytes());
        if proof.len() != signature.len() {
            return Err("the proof has the wrong length".into());
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        constant_time::verify_slices_are_equal(
            &mechanism.hash(&client_key),
            &credential.stored_key,
        )
        .map_err(|_| "wrong password")?;
        let server_signature = mechanism.hmac_of(&credential.server_key, auth_message.as_bytes());
        Ok(format!("v={}", BASE64.encode(server_signature)))
    }
}

/// A `saslname` of RFC 5802: `=2C` is a comma and `=3D` an equals sign.
fn sasl_name(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(format!("'{text}' is not a valid SCRAM user name")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err("the user name is empty".into());
    }
    Ok(out)
}

/// The client side, for `strata` tools and tests: the client-first message and, given the
/// server-first, the client-final message and the server signature to expect.
pub struct ScramClient {
    mechanism: ScramMechanism,
    user: String,
    password: String,
    nonce: String,
}

impl ScramClient {
    /// A new exchange for `user`.
    pub fn new(mechanism: ScramMechanism, user: &str, password: &str) -> Self {
        Self {
            mechanism,
            user: user.to_owned(),
            password: password.to_owned(),
            nonce: BASE64
                .encode(random_bytes(18))
                .replace(['+', '/', '='], "x"),
        }
    }

    fn bare(&self) -> String {
        format!(
            "n={},r={}",
            self.user.replace('=', "=3D").replace(',', "=2C"),
            self.nonce
        )
    }

    /// client-first-message.
    pub fn first(&self) -> Vec<u8> {
        format!("n,,{}", self.bare()).into_bytes()
    }

    /// client-final-message for `server_first`, and the server-final-message to expect.
    pub fn last(&self, server_first: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
        let server_first = std::str::from_utf8(server_first).map_err(|e| e.to_string())?;
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attribute in server_first.split(',') {
            match attribute.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = BASE64.decode(v).ok(),
                Some(("i", v)) => iterations = v.parse::<u32>().ok(),
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(format!("bad server-first-message '{server_first}'"));
        };
        if !nonce.starts_with(&self.nonce) {
            return Err("the server's nonce does not extend the client's".into());
        }
        let m = self.mechanism;
        let salted = m.salted_password(self.password.as_bytes(), &salt, iterations);
        let client_key = m.hmac_of(&salted, b"Client Key");
        let stored_key = m.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.bare());
        let signature = m.hmac_of(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = m.hmac_of(&salted, b"Server Key");
        let expected = format!(
            "v={}",
            BASE64.encode(m.hmac_of(&server_key, auth_message.as_bytes()))
        );
        Ok((
            format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes(),
            expected.into_bytes(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3: user "user", password "pencil".
    #[test]
    fn the_rfc_7677_example_verifies() {
        let m = ScramMechanism::Sha256;
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = m.salted_password(b"pencil", &salt, 4096);
        let credential = m.credential(salt, &salted, 4096);
        let client_first_bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let server = ScramServer::new(m);
        let reply = server
            .last(
                client_final,
                &credential,
                client_first_bare,
                server_first,
                "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
                "n,,",
            )
            .unwrap();
        assert_eq!(reply, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    #[test]
    fn a_password_verifies_against_its_credential_only() {
        let m = ScramMechanism::Sha256;
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let credential = m.credential(salt, &m.salted_password(b"pencil", &[], 1), 4096);
        // Made from another salt: "pencil" must not verify against it.
        assert!(!verify_password(m, "user", Some(&credential), b"pencil"));
        let salt = random_bytes(16);
        let credential = m.credential(
            salt.clone(),
            &m.salted_password(b"pencil", &salt, 4096),
            4096,
        );
        assert!(verify_password(m, "user", Some(&credential), b"pencil"));
        assert!(!verify_password(m, "user", Some(&credential), b"pencil2"));
        assert!(!verify_password(m, "user", None, b"pencil"));
    }

    fn exchange(
        server_user: Option<(&str, &str)>,
        client: (&str, &str),
        tamper: impl Fn(Vec<u8>) -> Vec<u8>,
    ) -> Step {
        let m = ScramMechanism::Sha512;
        let stored = server_user.map(|(user, password)| {
            let salt = random_bytes(16);
            let salted = m.salted_password(password.as_bytes(), &salt, 4096);
            (user.to_owned(), m.credential(salt, &salted, 4096))
        });
        let lookup = |name: &str| {
            stored
                .as_ref()
                .filter(|(user, _)| user == name)
                .map(|(_, c)| c.clone())
        };
        let client = ScramClient::new(m, client.0, client.1);
        let mut server = ScramServer::new(m);
        let Step::Continue(server_first) = server.step(&client.first(), &lookup) else {
            panic!("server-first expected");
        };
        let (last, expected) = client.last(&server_first).unwrap();
        let step = server.step(&tamper(last), &lookup);
        if let Step::Done(_, reply) = &step {
            assert_eq!(reply, &expected);
        }
        step
    }

    #[test]
    fn exchanges_succeed_and_fail_as_they_should() {
        let same = |v: Vec<u8>| v;
        assert!(matches!(
            exchange(Some(("alice", "secret")), ("alice", "secret"), same),
            Step::Done(p, _) if p == KafkaPrincipal::user("alice")
        ));
        assert!(matches!(
            exchange(Some(("alice", "secret")), ("alice", "wrong"), same),
            Step::Failed(e) if e.contains("wrong password")
        ));
        // An unknown user runs the whole exchange and fails only at the end.
        assert!(matches!(
            exchange(None, ("mallory", "x"), same),
            Step::Failed(e) if e.contains("unknown user")
        ));
        // A client-final with another nonce is refused even with the right proof's shape.
        let other_nonce = |v: Vec<u8>| {
            String::from_utf8(v)
                .unwrap()
                .replacen(",r=", ",r=x", 1)
                .into_bytes()
        };
        assert!(matches!(
            exchange(Some(("alice", "secret")), ("alice", "secret"), other_nonce),
            Step::Failed(e) if e.contains("nonce")
        ));
    }

    #[test]
    fn unknown_users_get_a_stable_salt() {
        let m = ScramMechanism::Sha256;
        assert_eq!(mock_credential(m, "a").salt, mock_credential(m, "a").salt);
        assert_ne!(mock_credential(m, "a").salt, mock_credential(m, "b").salt);
        assert_eq!(mock_credential(m, "a").salt.len(), 16);
    }

    #[test]
    fn names_are_unescaped() {
        assert_eq!(sasl_name("a=2Cb=3Dc").unwrap(), "a,b=c");
        assert!(sasl_name("a=b").is_err());
        assert!(sasl_name("").is_err());
    }
}
