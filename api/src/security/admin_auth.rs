//! Who may use the admin HTTP API (`admin.api.authentication`): HTTP Basic with a user's
//! SCRAM credential (the same users Kafka clients log in as) or a PLAIN user, and bearer tokens
//! from `admin.api.tokens.file`. Every caller gets a role: `admin` may do anything, `viewer`
//! only reads (GET and HEAD); anything else is answered 403. `/v1/health`, `/v1/ready` and
//! the console's static files stay open, so that load balancers and the login page work.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use super::sasl::{PlainUsers, decode_hex};
use super::scram::{self, ScramCredential, ScramMechanism};

/// How long a verified Basic password is remembered (PBKDF2 is slow on purpose).
const BASIC_CACHE_TTL: Duration = Duration::from_secs(60);
/// Remembered passwords at most; the cache starts over beyond.
const BASIC_CACHE_MAX: usize = 4096;
/// Password checks (PBKDF2) run at once at most: a flood of wrong passwords waits its turn
/// instead of taking every core.
const CONCURRENT_CHECKS: usize = 2;
/// Longest a request waits for a password check; beyond, it is answered 503.
const CHECK_QUEUE_WAIT: Duration = Duration::from_secs(5);
/// Paths anyone may read: probes and the console's files (the console logs in itself).
const OPEN_PATHS: &[&str] = &[
    "/v1/health",
    "/v1/ready",
    "/",
    "/console/app.js",
    "/console/style.css",
];
/// The path that says who the caller is; it answers unauthenticated callers too.
pub const WHOAMI: &str = "/v1/whoami";

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Anything.
    Admin,
    /// Only read (GET and HEAD).
    Viewer,
}

impl Role {
    /// `admin` or `viewer`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Self::Admin),
            "viewer" => Some(Self::Viewer),
            _ => None,
        }
    }
}

/// The answer of `GET /v1/whoami`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Whoami {
    /// Whether the request carried valid credentials (always true without authentication).
    pub authenticated: bool,
    /// The caller (`User:alice`), when authenticated.
    pub principal: Option<String>,
    /// What the caller may do, when authenticated.
    pub role: Option<Role>,
    /// How one authenticates: `basic`, `token`; empty when the API is open.
    pub methods: Vec<String>,
}

/// The bearer tokens of `admin.api.tokens.file`: lines `<sha256-hex> <role> <name>`, `#`
/// comments. Only the tokens' hashes are kept, in the file and here.
#[derive(Clone, Default)]
pub struct Tokens(HashMap<Vec<u8>, (Role, String)>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} tokens)", self.0.len())
    }
}

impl Tokens {
    /// Reads a tokens file; the error names the line.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the text of a tokens file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut tokens = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [hash, role, name] = fields[..] else {
                return Err(format!(
                    "line {}: expected `<sha256-hex> <admin|viewer> <name>`",
                    n + 1
                ));
            };
            let hash = decode_hex(hash)
                .filter(|h| h.len() == 32)
                .ok_or_else(|| format!("line {}: the SHA-256 is not 64 hex digits", n + 1))?;
            let role = Role::parse(role).ok_or_else(|| {
                format!("line {}: the role is admin or viewer, not {role}", n + 1)
            })?;
            if tokens.insert(hash, (role, name.to_owned())).is_some() {
                return Err(format!("line {}: the same token twice", n + 1));
            }
        }
        Ok(Self(tokens))
    }

    fn find(&self, token: &str) -> Option<&(Role, String)> {
        self.0
            .get(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
    }
}

/// The line of a tokens file for `token`.
pub fn token_line(token: &str, role: Role, name: &str) -> String {
    let hash = digest::digest(&digest::SHA256, token.as_bytes());
    let role = match role {
        Role::Admin => "admin",
        Role::Viewer => "viewer",
    };
    format!("{} {role} {name}", hex(hash.as_ref()))
}

/// A new random token: 32 bytes, in hex.
pub fn new_token() -> String {
    hex(&scram::random_bytes(32))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The settings of `admin.api.*`.
#[derive(Debug, Clone, Default)]
pub struct AdminAuthSettings {
    /// HTTP Basic with users' passwords.
    pub basic: bool,
    /// Bearer tokens, when enabled.
    pub tokens: Option<Tokens>,
    /// Principals with the admin role (`admin.api.admin.principals`, else `super.users`).
    pub admin_principals: HashSet<String>,
    /// How long a failed attempt waits before its answer.
    pub failure_delay: Duration,
}

impl AdminAuthSettings {
    /// Whether callers must authenticate.
    pub fn enabled(&self) -> bool {
        self.basic || self.tokens.is_some()
    }

    fn methods(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.basic {
            out.push("basic".to_owned());
        }
        if self.tokens.is_some() {
            out.push("token".to_owned());
        }
        out
    }
}

/// A user's SCRAM credential for a mechanism, from the metadata log.
pub type CredentialLookup =
    Arc<dyn Fn(&str, ScramMechanism) -> Option<ScramCredential> + Send + Sync>;

/// SHA-256(user, password) → the StoredKey it verified against, and when.
type Verified = HashMap<Vec<u8>, (Vec<u8>, Instant)>;

/// The admin API's authentication: settings, where passwords are checked, and the passwords
/// verified lately.
pub struct AdminAuth {
    settings: AdminAuthSettings,
    credentials: CredentialLookup,
    plain: Vec<PlainUsers>,
    /// SHA-256(user, password) → the StoredKey it verified against, and when. A changed
    /// credential no longer matches, so a new password takes effect at once.
    verified: Mutex<Verified>,
    checks: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAuth")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Who a request is from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `User:name`.
    pub principal: String,
    /// What it may do.
    pub role: Role,
}

/// Why credentials were not accepted.
enum Refusal {
    /// None were given.
    Missing,
    /// They are wrong, or of a method not enabled.
    Invalid(&'static str),
    /// Too many password checks are waiting.
    Busy,
}

impl AdminAuth {
    /// Authentication as `settings` say, with SCRAM credentials from `credentials` and PLAIN
    /// users from `plain`.
    pub fn new(
        settings: AdminAuthSettings,
        credentials: CredentialLookup,
        plain: Vec<PlainUsers>,
    ) -> Self {
        Self {
            settings,
            credentials,
            plain,
            verified: Mutex::new(HashMap::new()),
            checks: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_CHECKS)),
        }
    }

    /// An open API: everyone is an admin.
    pub fn open() -> Self {
        Self::new(
            AdminAuthSettings::default(),
            Arc::new(|_, _| None),
            Vec::new(),
        )
    }

    fn role_of(&self, principal: &str) -> Role {
        match self.settings.admin_principals.contains(principal) {
            true => Role::Admin,
            false => Role::Viewer,
        }
    }

    async fn identify(&self, headers: &HeaderMap) -> Result<Identity, Refusal> {
        let Some(value) = headers.get(AUTHORIZATION) else {
            return Err(Refusal::Missing);
        };
        let value = value
            .to_str()
            .map_err(|_| Refusal::Invalid("the Authorization header is not text"))?;
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            let tokens = (self.settings.tokens.as_ref())
                .ok_or(Refusal::Invalid("bearer tokens are not enabled"))?;
            let (role, name) = tokens.find(rest).ok_or(Refusal::Invalid("invalid token"))?;
            return Ok(Identity {
                principal: format!("User:{name}"),
                role: *role,
            });
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(Refusal::Invalid("unknown authentication scheme"));
        }
        if !self.settings.basic {
            return Err(Refusal::Invalid("Basic authentication is not enabled"));
        }
        let decoded = BASE64
            .decode(rest)
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .ok_or(Refusal::Invalid(
                "the Basic credentials are not base64 text",
            ))?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or(Refusal::Invalid("the Basic credentials lack a colon"))?;
        match self.check_password(user, password).await? {
            true => {
                let principal = format!("User:{user}");
                Ok(Identity {
                    role: self.role_of(&principal),
                    principal,
                })
            }
            false => Err(Refusal::Invalid("invalid username or password")),
        }
    }

    /// Whether `password` is `user`'s: a PLAIN user's, else against the SCRAM credential
    /// (SCRAM-SHA-512 first).
    async fn check_password(&self, user: &str, password: &str) -> Result<bool, Refusal> {
        if (self.plain.iter()).any(|p| p.verify(user, password.as_bytes())) {
            return Ok(true);
        }
        let found = [ScramMechanism::Sha512, ScramMechanism::Sha256]
            .into_iter()
            .find_map(|m| (self.credentials)(user, m).map(|c| (m, c)));
        let key = digest::digest(
            &digest::SHA256,
            format!("{}\0{user}\0{password}", user.len()).as_bytes(),
        )
        .as_ref()
        .to_vec();
        if let Some((_, credential)) = &found {
            let cache = self.verified.lock().expect("not poisoned");
            if let Some((stored, at)) = cache.get(&key)
                && *stored == credential.stored_key
                && at.elapsed() < BASIC_CACHE_TTL
            {
                return Ok(true);
            }
        }
        let (mechanism, credential) = match found {
            Some((m, c)) => (m, Some(c)),
            None => (ScramMechanism::Sha512, None),
        };
        // The permit goes with the check: a caller that hangs up does not free it early.
        let waited =
            tokio::time::timeout(CHECK_QUEUE_WAIT, Arc::clone(&self.checks).acquire_owned()).await;
        let Ok(Ok(permit)) = waited else {
            return Err(Refusal::Busy);
        };
        let (user, password) = (user.to_owned(), password.to_owned());
        let checked = credential.clone();
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            scram::verify_password(mechanism, &user, checked.as_ref(), password.as_bytes())
        })
        .await
        .unwrap_or(false);
        if ok && let Some(credential) = credential {
            let mut cache = self.verified.lock().expect("not poisoned");
            if cache.len() >= BASIC_CACHE_MAX {
                cache.clear();
            }
            cache.insert(key, (credential.stored_key, Instant::now()));
        }
        Ok(ok)
    }

    /// The challenges of a 401. Browsers prompt on a Basic challenge, so the console's own
    /// requests (`X-Requested-With`) get one they do not know: the console shows its form.
    fn challenge(&self, headers: &HeaderMap) -> Vec<HeaderValue> {
        let from_console = headers.contains_key("x-requested-with");
        let mut out = Vec::new();
        if self.settings.basic && !from_console {
            out.push(HeaderValue::from_static(
                r#"Basic realm="strata", charset="UTF-8""#,
            ));
        }
        if self.settings.tokens.is_some() {
            out.push(HeaderValue::from_static(r#"Bearer realm="strata""#));
        }
        if out.is_empty() {
            out.push(HeaderValue::from_static(r#"Console realm="strata""#));
        }
        out
    }
}

/// A 403 for a change a browser makes on behalf of another site (CSRF): its `Origin` names
/// another host, or `Sec-Fetch-Site` says so. A browser that remembers a Basic password (or an
/// open API on a private network) would otherwise take a form posted from any page. Tools
/// send neither header.
fn cross_site(method: &Method, headers: &HeaderMap) -> Option<Response> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let from_elsewhere = matches!(header("sec-fetch-site"), Some("cross-site" | "same-site"));
    let origin_elsewhere = match (header("origin"), header("host")) {
        (Some(origin), Some(host)) => {
            origin.split_once("://").map(|(_, authority)| authority) != Some(host)
        }
        (Some(_), None) => true,
        _ => false,
    };
    (from_elsewhere || origin_elsewhere).then(|| {
        error(
            StatusCode::FORBIDDEN,
            "a change requested from another site's page is refused (Origin or Sec-Fetch-Site)",
        )
    })
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(crate::rest::ErrorBody {
            error: message.to_owned(),
        }),
    )
        .into_response()
}

/// The middleware: authenticates every request but the open ones, refuses viewers' writes,
/// and leaves a [`Whoami`] in the request for `/v1/whoami`.
pub async fn authenticate(
    State(auth): State<Arc<AdminAuth>>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(refused) = cross_site(request.method(), request.headers()) {
        return refused;
    }
    let methods = auth.settings.methods();
    if !auth.settings.enabled() {
        request.extensions_mut().insert(Whoami {
            authenticated: true,
            principal: Some("User:ANONYMOUS".to_owned()),
            role: Some(Role::Admin),
            methods,
        });
        return next.run(request).await;
    }
    let path = request.uri().path();
    let open = OPEN_PATHS.contains(&path);
    let whoami = path == WHOAMI;
    // Open paths need no credentials, so none are checked (a probe with a stale token is
    // answered, and costs no password check).
    let identified = match open {
        true => Err(Refusal::Missing),
        false => auth.identify(request.headers()).await,
    };
    let identity = match identified {
        Ok(identity) => Some(identity),
        Err(Refusal::Missing) if open || whoami => None,
        Err(Refusal::Busy) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many password checks are waiting; try again",
            );
        }
        Err(refusal) => {
            let message = match refusal {
                Refusal::Missing | Refusal::Busy => "authentication required",
                Refusal::Invalid(why) => {
                    crate::metrics::KAFKA.admin_auth_failed();
                    tokio::time::sleep(auth.settings.failure_delay).await;
                    why
                }
            };
            let mut response = error(StatusCode::UNAUTHORIZED, message);
            for challenge in auth.challenge(request.headers()) {
                response.headers_mut().append(WWW_AUTHENTICATE, challenge);
            }
            return response;
        }
    };
    if let Some(identity) = &identity
        && identity.role == Role::Viewer
        && !matches!(*request.method(), Method::GET | Method::HEAD)
        && !open
    {
        return error(
            StatusCode::FORBIDDEN,
            &format!(
                "{} has the viewer role, which only reads; {} {} needs the admin role",
                identity.principal,
                request.method(),
                request.uri().path()
            ),
        );
    }
    request.extensions_mut().insert(Whoami {
        authenticated: identity.is_some(),
        principal: identity.as_ref().map(|i| i.principal.clone()),
        role: identity.map(|i| i.role),
        methods,
    });
    next.run(request).await
}

/// Who the caller is and what it may do; answers unauthenticated callers too (with
/// `authenticated: false` and how to authenticate), so the console can show its login form.
#[utoipa::path(get, path = "/v1/whoami", tag = "node",
    responses((status = 200, description = "The caller", body = Whoami),
              (status = 401, description = "The credentials given are wrong", body = crate::rest::ErrorBody)))]
pub async fn whoami(Extension(whoami): Extension<Whoami>) -> Json<Whoami> {
    Json(whoami)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tokens_file_names_its_bad_lines() {
        let token = "s3cr3t";
        let text = format!(
            "# CI's read-only token\n{}\n\n",
            token_line(token, Role::Viewer, "ci")
        );
        let tokens = Tokens::parse(&text).unwrap();
        assert_eq!(tokens.find(token), Some(&(Role::Viewer, "ci".to_owned())));
        assert_eq!(tokens.find("other"), None);
        for (text, wanted) in [
            ("abc admin x", "line 1: the SHA-256 is not 64 hex digits"),
            (&format!("{} root x", "0".repeat(64)), "line 1: the role"),
            ("onlyone", "line 1: expected"),
        ] {
            let e = Tokens::parse(text).unwrap_err();
            assert!(e.starts_with(wanted), "{e}");
        }
        let twice = format!("{0}\n{0}", token_line("t", Role::Admin, "a"));
        assert!(Tokens::parse(&twice).unwrap_err().contains("line 2"));
    }
}
