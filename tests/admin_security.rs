//! Proves that the admin HTTP API is served over https (ADMIN:SSL) and asks for credentials
//! (`admin.api.authentication=basic,token`): the probes stay open; everything else answers 401
//! with a challenge to a caller without credentials or with wrong ones (after the failure
//! delay, the same for an unknown user as for a wrong password); users log in with their SCRAM
//! password (a changed password takes effect at once), tokens with their role; viewers read
//! and get 403 for any change, admins change; paths that only look open are not; a change sent
//! from another site's page (Origin, Sec-Fetch-Site) is refused; plain http on the https port
//! gets no answer; and the `strata` tools reach it with `--admin-ca` and a token.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::BrokerProcess;
use common::certs::{self, Ca, Request};
use serde_json::Value;
use strata_api::security::admin_auth::{Role, token_line};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ADMIN_TOKEN: &str = "ops-token-0123456789";
const VIEWER_TOKEN: &str = "ci-token-9876543210";

/// An answer: status, headers (lower-case names) and body.
struct Answer {
    status: u16,
    headers: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// `method path` over https to `addr` (trusting `ca`) with `headers` and a JSON `body`.
async fn https(
    addr: &str,
    ca: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut tls = certs::connect(addr, ca, None).await.expect("TLS handshake");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    // The server may close without close_notify once it has answered.
    let _ = tls.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    Answer {
        status,
        headers: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn create_user(broker: &BrokerProcess, name: &str, password: &str) {
    let out = common::strata_tool(&broker.addr, &["user", "create", name], password);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_api_is_https_with_users_tokens_and_roles() {
    strata_api::security::tls::install_default_provider();
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let server = ca.issue(&Request {
        name: "admin",
        subject: &[("CN", "localhost")],
        server: true,
        days: 30,
        serial: 1,
    });
    let tokens = dir.path().join("admin-tokens");
    std::fs::write(
        &tokens,
        format!(
            "# who may call the admin API\n{}\n{}\n",
            token_line(ADMIN_TOKEN, Role::Admin, "ops"),
            token_line(VIEWER_TOKEN, Role::Viewer, "ci")
        ),
    )
    .unwrap();
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &[
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,ADMIN:SSL",
            &format!(
                "listener.name.admin.ssl.keystore.location={}",
                server.keystore.display()
            ),
            &format!("ssl.truststore.location={}", ca.pem.display()),
            "admin.api.authentication=basic,token",
            &format!("admin.api.tokens.file={}", tokens.display()),
            "super.users=User:root",
            // The Kafka listeners' client authentication does not reach the admin listener.
            "ssl.client.auth=required",
        ],
    );
    // No authorizer on the Kafka listener: the tool may make users.
    create_user(&broker, "root", "root-secret");
    create_user(&broker, "alice", "alice-secret");
    let (admin, ca) = (broker.admin_addr.as_str(), ca.pem.as_path());
    let call =
        |method: &'static str, path: &'static str, auth: Option<String>, body: &'static str| {
            let auth = auth.map(|a| ("Authorization", a));
            async move {
                let headers: Vec<(&str, &str)> =
                    auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
                https(admin, ca, method, path, &headers, body).await
            }
        };

    // The probes need no credentials; nothing else answers without them.
    let deadline = Instant::now() + Duration::from_secs(30);
    while call("GET", "/v1/ready", None, "").await.status != 200 {
        assert!(Instant::now() < deadline, "the node is not ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(call("GET", "/v1/health", None, "").await.status, 200);
    // A probe holding a stale token is still answered.
    let stale = Some(bearer("revoked"));
    assert_eq!(call("GET", "/v1/health", stale, "").await.status, 200);
    for (method, path) in [
        ("GET", "/v1/topics"),
        ("GET", "/metrics"),
        ("GET", "/v1/openapi.json"),
        ("POST", "/v1/topics"),
    ] {
        let answer = call(method, path, None, "").await;
        assert_eq!(answer.status, 401, "{method} {path}: {}", answer.body);
        assert!(
            answer
                .headers
                .contains("www-authenticate: basic realm=\"strata\"")
                && answer
                    .headers
                    .contains("www-authenticate: bearer realm=\"strata\""),
            "{}",
            answer.headers
        );
        assert_eq!(answer.json()["error"], "authentication required");
    }
    // The console's own requests get no Basic challenge, so no browser prompt hides its form.
    let console = https(
        admin,
        ca,
        "GET",
        "/v1/topics",
        &[("X-Requested-With", "XMLHttpRequest")],
        "",
    )
    .await;
    assert_eq!(console.status, 401);
    assert!(
        !console.headers.contains("basic realm"),
        "{}",
        console.headers
    );
    // Paths that only look like open ones are not.
    for path in [
        "//v1/topics",
        "/v1/health/../v1/topics",
        "/v1/health/",
        "/v1/%68ealth",
    ] {
        let answer = https(admin, ca, "GET", path, &[], "").await;
        assert_eq!(answer.status, 401, "{path}: {}", answer.body);
    }
    assert_eq!(call("HEAD", "/v1/topics", None, "").await.status, 401);
    let me = call("GET", "/v1/whoami", None, "").await.json();
    assert_eq!(me["authenticated"], false, "{me}");
    assert_eq!(me["methods"], serde_json::json!(["basic", "token"]));

    // Users: root is in super.users (admin), alice is a viewer.
    let root = || Some(basic("root", "root-secret"));
    let alice = || Some(basic("alice", "alice-secret"));
    let me = call("GET", "/v1/whoami", root(), "").await.json();
    assert_eq!(
        (me["principal"].as_str(), me["role"].as_str()),
        (Some("User:root"), Some("admin"))
    );
    let me = call("GET", "/v1/whoami", alice(), "").await.json();
    assert_eq!(
        (me["principal"].as_str(), me["role"].as_str()),
        (Some("User:alice"), Some("viewer"))
    );
    let created = call(
        "POST",
        "/v1/topics",
        root(),
        r#"{"name":"orders","partitions":2}"#,
    )
    .await;
    assert!(
        created.status == 200 || created.status == 201,
        "{}",
        created.body
    );
    let listed = call("GET", "/v1/topics", alice(), "").await;
    assert_eq!(listed.status, 200);
    assert!(listed.body.contains("\"orders\""), "{}", listed.body);
    for (method, path, body) in [
        ("POST", "/v1/topics", r#"{"name":"x","partitions":1}"#),
        ("DELETE", "/v1/topics/orders", ""),
        ("POST", "/v1/topics/orders/partitions", r#"{"count":3}"#),
    ] {
        let refused = call(method, path, alice(), body).await;
        assert_eq!(refused.status, 403, "{method} {path}: {}", refused.body);
        assert!(
            refused.json()["error"]
                .as_str()
                .unwrap()
                .contains("User:alice has the viewer role"),
            "{}",
            refused.body
        );
    }
    assert_eq!(
        call("GET", "/v1/topics/orders", alice(), "").await.status,
        200
    );
    assert_eq!(call("HEAD", "/v1/topics", alice(), "").await.status, 200);

    // A change sent by another site's page is refused, whoever's password the browser sends.
    let root_auth = basic("root", "root-secret");
    let body = r#"{"name":"from-elsewhere","partitions":1}"#;
    for (name, value) in [
        ("Origin", "https://evil.example"),
        ("Sec-Fetch-Site", "cross-site"),
    ] {
        let headers = [("Authorization", root_auth.as_str()), (name, value)];
        let refused = https(admin, ca, "POST", "/v1/topics", &headers, body).await;
        assert_eq!(refused.status, 403, "{name}: {}", refused.body);
        assert!(refused.body.contains("another site"), "{}", refused.body);
    }
    let own = format!("https://{admin}");
    let headers = [
        ("Authorization", root_auth.as_str()),
        ("Origin", own.as_str()),
    ];
    let same = https(admin, ca, "POST", "/v1/topics", &headers, body).await;
    assert!(same.status == 200 || same.status == 201, "{}", same.body);

    // Wrong password and unknown user: the same answer, after the failure delay (100 ms).
    let mut refusals = Vec::new();
    for auth in [basic("alice", "wrong"), basic("mallory", "wrong")] {
        let started = Instant::now();
        let answer = call("GET", "/v1/topics", Some(auth), "").await;
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(answer.status, 401);
        refusals.push(answer.body);
    }
    assert_eq!(refusals[0], refusals[1]);
    assert!(
        refusals[0].contains("invalid username or password"),
        "{}",
        refusals[0]
    );
    for bad in ["Basic !!!", "Digest x", "Bearer not-a-token"] {
        let answer = call("GET", "/v1/topics", Some(bad.to_owned()), "").await;
        assert_eq!(answer.status, 401, "{bad}: {}", answer.body);
    }
    // A new password takes effect at once, although the old one was verified lately.
    create_user(&broker, "alice", "alice-new-secret");
    assert_eq!(call("GET", "/v1/topics", alice(), "").await.status, 401);
    let new = Some(basic("alice", "alice-new-secret"));
    assert_eq!(call("GET", "/v1/topics", new, "").await.status, 200);

    // Tokens carry their role.
    let ops = || Some(bearer(ADMIN_TOKEN));
    let viewer = || Some(bearer(VIEWER_TOKEN));
    let me = call("GET", "/v1/whoami", viewer(), "").await.json();
    assert_eq!(
        (me["principal"].as_str(), me["role"].as_str()),
        (Some("User:ci"), Some("viewer"))
    );
    let metrics = call("GET", "/metrics", viewer(), "").await;
    assert_eq!(metrics.status, 200);
    let failures: f64 = (metrics.body.lines())
        .find_map(|l| l.strip_prefix("strata_admin_authentication_failures_total "))
        .expect("the failures counter")
        .trim()
        .parse()
        .unwrap();
    assert!(failures >= 5.0, "{failures}");
    assert_eq!(
        call("DELETE", "/v1/topics/orders", viewer(), "")
            .await
            .status,
        403
    );
    assert_eq!(
        call("DELETE", "/v1/topics/orders", ops(), "").await.status,
        200
    );

    // Plain http on the https port gets no HTTP answer.
    let mut plain = tokio::net::TcpStream::connect(admin).await.unwrap();
    plain
        .write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), plain.read_to_end(&mut answer)).await;
    assert!(
        !answer.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&answer)
    );

    // The tools: https with --admin-ca, and a token.
    let strata = |token: &str, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(args)
            .env("STRATA_ADMIN_CA", ca)
            .env("STRATA_ADMIN_TOKEN", token)
            .output()
            .unwrap()
    };
    let url = format!("https://{admin}");
    let status = strata(VIEWER_TOKEN, &["tiering", "--admin", &url, "status"]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let refused = strata("nope", &["tiering", "--admin", &url, "status"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("HTTP 401"),
        "{stderr}"
    );
    let refused = strata(VIEWER_TOKEN, &["link", "--admin", &url, "delete", "east"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("viewer role") && stderr.contains("HTTP 403"),
        "{stderr}"
    );
    let missing = strata(ADMIN_TOKEN, &["link", "--admin", &url, "delete", "east"]);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("HTTP 404"), "{stderr}");
}
