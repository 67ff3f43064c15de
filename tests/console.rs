//! Proves that the web console works in a real browser: headless Chromium (Debian's package)
//! loads every page against a running broker with topics, records, a lagging consumer group,
//! tiered storage and a cluster link, each page shows what the cluster holds, no page logs a
//! console error or fails a request, and a screenshot of each page is taken (written to
//! `docs/console/` for the README when `STRATA_UPDATE_SCREENSHOTS=1`); and that with
//! authentication on, the console signs in with a password or a token.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::browser::{CHROMIUM, chromium, console_errors};
use common::cluster::wait_until;
use common::link::produce_numbers;
use common::{BrokerProcess, create_topic, http_request};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

/// A cluster with something on every page: two topics (one of JSON records), a group 20
/// records behind, and a link mirroring a second broker's topic.
async fn populated(dir: &Path) -> (BrokerProcess, BrokerProcess) {
    let source = BrokerProcess::start(&dir.join("source"), &[]);
    let broker = BrokerProcess::start(&dir.join("main"), &[]);
    create_topic(&broker.addr, "orders", 3, &[("retention.ms", "604800000")]).await;
    let producer: FutureProducer = common::client(&broker.addr).create().unwrap();
    for n in 0..60 {
        let value = format!(
            r#"{{"order":{n},"customer":"c{}","total":{}.50,"items":["book","pen"]}}"#,
            n % 7,
            10 + n
        );
        producer
            .send(
                FutureRecord::to("orders")
                    .key(&format!("o{n}"))
                    .payload(&value)
                    .partition(n % 3),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    produce_numbers(&broker.addr, "clicks", 0..40, Some(0)).await;
    let consumer: BaseConsumer = common::client(&broker.addr)
        .set("group.id", "billing")
        .create()
        .unwrap();
    let mut offsets = TopicPartitionList::new();
    for p in 0..3 {
        offsets
            .add_partition_offset("orders", p, Offset::Offset(if p == 0 { 0 } else { 20 }))
            .unwrap();
    }
    consumer.commit(&offsets, CommitMode::Sync).unwrap();
    create_topic(&source.addr, "payments", 1, &[]).await;
    produce_numbers(&source.addr, "payments", 0..25, None).await;
    let body = format!(
        r#"{{"name":"east","source":"{}","topics":"payments"}}"#,
        source.addr
    );
    let (status, _, answer) = http_request(&broker.admin_addr, "POST", "/v1/links", &[], &body);
    assert_eq!(status, 200, "{answer}");
    wait_until("the mirror", Duration::from_secs(30), || {
        let (_, body) = common::http_get(&broker.admin_addr, "/v1/links/east");
        body.contains("\"lag_records\":0,").then_some(())
    });
    (broker, source)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_shows_the_cluster_in_chromium_without_errors() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: scripts/test.sh installs Debian's chromium"
    );
    let dir = tempfile::tempdir().unwrap();
    let (broker, _source) = populated(dir.path()).await;
    let profile = dir.path().join("chromium");
    let shots = dir.path().join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let base = format!("http://{}/", broker.admin_addr);
    let pages: [(&str, &str, &[&str]); 7] = [
        (
            "overview",
            "#/",
            &[
                "Cluster",
                "Brokers",
                "Under-replicated",
                "Active controller",
                "node 1",
                "Throughput",
            ],
        ),
        (
            "topics",
            "#/topics",
            &["orders", "clicks", "payments", "east"],
        ),
        (
            "topic",
            "#/topics/orders",
            &[
                "Topic orders",
                "Partitions",
                "retention.ms",
                "604800000",
                "\"customer\": \"c",
                "o0",
            ],
        ),
        ("groups", "#/groups", &["billing", "Empty", "20"]),
        (
            "group",
            "#/groups/billing",
            &[
                "Group billing",
                "Total lag",
                "Lag over the last minutes",
                "orders",
            ],
        ),
        (
            "tiering",
            "#/tiering",
            &["Tiered storage", "Upload lag", "Cache hit ratio", "orders"],
        ),
        (
            "links",
            "#/links",
            &["east", "payments", "Lag (records)", "mirroring"],
        ),
    ];
    for (name, fragment, expected) in pages {
        let url = format!("{base}{fragment}");
        let (dom, log) = chromium(&profile, &url, &["--dump-dom"]);
        for text in expected {
            assert!(
                dom.contains(text),
                "page {name} ({url}) lacks {text:?}:\n{dom}"
            );
        }
        assert!(
            !dom.contains("Cannot load this page"),
            "page {name} failed to load:\n{dom}"
        );
        let errors = console_errors(&log);
        assert!(errors.is_empty(), "page {name} logged errors: {errors:#?}");
        let shot = shots.join(format!("{name}.png"));
        let (_, log) = chromium(
            &profile,
            &url,
            &[
                "--hide-scrollbars",
                "--window-size=1366,900",
                &format!("--screenshot={}", shot.display()),
            ],
        );
        let png =
            std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot of {name}: {e}\n{log}"));
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "a screenshot of {name}"
        );
    }
    if std::env::var_os("STRATA_UPDATE_SCREENSHOTS").is_some() {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/console");
        std::fs::create_dir_all(&docs).unwrap();
        for entry in std::fs::read_dir(&shots).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), docs.join(entry.file_name())).unwrap();
        }
    }
}

/// With `admin.api.authentication=basic,token` the console shows its sign-in form (and no
/// data) until a user signs in: a wrong password is refused on the form, the right one shows
/// the pages with the user and role in the header, signing out brings the form back, and a
/// viewer's token signs in as a viewer. Driven in Chromium over the DevTools protocol.
#[tokio::test(flavor = "multi_thread")]
async fn the_console_signs_in_with_a_password_or_a_token() {
    use common::browser::Devtools;
    use strata_api::security::admin_auth::{Role, token_line};
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("admin-tokens");
    std::fs::write(&tokens, token_line("viewer-token", Role::Viewer, "grafana")).unwrap();
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &[
            "admin.api.authentication=basic,token",
            &format!("admin.api.tokens.file={}", tokens.display()),
            "super.users=User:root",
        ],
    );
    let made = common::strata_tool(&broker.addr, &["user", "create", "root"], "root-secret");
    assert!(made.status.success(), "{made:?}");
    create_topic(&broker.addr, "orders", 1, &[]).await;
    let url = format!("http://{}/#/topics", broker.admin_addr);
    let mut page = Devtools::open(&dir.path().join("chromium"), &url);
    page.wait_for("the sign-in form", "document.querySelector('form.login')");
    let shown = page.eval("document.body.innerText").to_string();
    assert!(
        !shown.contains("orders"),
        "no data before signing in: {shown}"
    );
    let login = page.screenshot();
    assert!(login.starts_with(b"\x89PNG"), "a screenshot of the form");
    let sign_in = |user: &str, password: &str, token: &str| {
        format!(
            "document.getElementById('user').value = {user:?};
             document.getElementById('password').value = {password:?};
             document.getElementById('token').value = {token:?};
             document.querySelector('form.login').requestSubmit();"
        )
    };
    page.eval(&sign_in("root", "wrong", ""));
    page.wait_for(
        "the refusal on the form",
        "document.querySelector('form.login .error')?.innerText.includes('invalid username or password')",
    );
    page.eval(&sign_in("root", "root-secret", ""));
    page.wait_for(
        "the topics page, signed in",
        "document.body.innerText.includes('orders') && document.getElementById('who').innerText.includes('User:root · admin')",
    );
    page.eval("document.querySelector('#who button').click()");
    page.wait_for("the form again", "document.querySelector('form.login')");
    page.eval(&sign_in("", "", "viewer-token"));
    page.wait_for(
        "the topics page, as a viewer",
        "document.body.innerText.includes('orders') && document.getElementById('who').innerText.includes('User:grafana · viewer')",
    );
    if std::env::var_os("STRATA_UPDATE_SCREENSHOTS").is_some() {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/console");
        std::fs::write(docs.join("login.png"), login).unwrap();
    }
}
