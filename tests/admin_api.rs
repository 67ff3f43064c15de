//! Proves that the admin HTTP API does what its OpenAPI document says: the document at
//! `/v1/openapi.json` is valid OpenAPI (checked by openapi-spec-validator), every operation
//! it documents is called against a running `strata dev` (with a second one as a link's
//! source), every answer's status is one the operation documents and every JSON answer
//! matches its schema; and the answers are right: topics created, described with offsets,
//! reconfigured, grown, browsed and deleted; a group's lag, reset and deletion; links; and
//! JSON errors (400, 404, 405, 409) that name the problem.

mod common;

use std::io::Write;
use std::process::Command;

use common::link::produce_numbers;
use common::{BrokerProcess, http_request};
use serde_json::{Value, json};

/// One call of the API, for the document check.
struct Calls {
    admin: String,
    file: tempfile::NamedTempFile,
}

impl Calls {
    /// Calls `method path` (documented as `template`) with `body`; the status and JSON answer.
    fn call(
        &mut self,
        method: &str,
        template: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let body_text = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, _, answer) = http_request(&self.admin, method, path, &[], &body_text);
        let line = json!({"method": method, "template": template, "path": path, "status": status, "body": answer});
        writeln!(self.file, "{line}").unwrap();
        let parsed = serde_json::from_str(&answer).unwrap_or(Value::String(answer));
        (status, parsed)
    }

    /// A call that must answer `expected`.
    fn expect(
        &mut self,
        expected: u16,
        method: &str,
        template: &str,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let (status, answer) = self.call(method, template, path, body);
        assert_eq!(status, expected, "{method} {path}: {answer}");
        answer
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_path_answers_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let source = BrokerProcess::start(&dir.path().join("source"), &[]);
    let broker = BrokerProcess::start(&dir.path().join("main"), &[]);
    let mut api = Calls {
        admin: broker.admin_addr.clone(),
        file: tempfile::NamedTempFile::new().unwrap(),
    };

    // The node, once its first probes ran.
    common::cluster::wait_until("a healthy node", std::time::Duration::from_secs(30), || {
        (http_request(&broker.admin_addr, "GET", "/v1/health", &[], "").0 == 200).then_some(())
    });
    api.expect(200, "GET", "/v1/health", "/v1/health", None);
    api.expect(200, "GET", "/v1/ready", "/v1/ready", None);
    api.expect(200, "GET", "/v1/tiering", "/v1/tiering", None);
    api.expect(200, "GET", "/metrics", "/metrics", None);
    // Without admin.api.authentication everyone is an admin.
    let me = api.expect(200, "GET", "/v1/whoami", "/v1/whoami", None);
    assert_eq!(me["role"], "admin", "{me}");
    assert_eq!(me["methods"], json!([]), "{me}");
    let doc = api.expect(200, "GET", "/v1/openapi.json", "/v1/openapi.json", None);
    let cluster = api.expect(200, "GET", "/v1/cluster", "/v1/cluster", None);
    assert_eq!(cluster["active_controller"], 1, "{cluster}");
    assert_eq!(cluster["brokers"][0]["state"], "active");
    assert_eq!(cluster["brokers"][0]["admin"], broker.admin_addr.as_str());

    // Topics.
    let created = api.expect(
        201,
        "POST",
        "/v1/topics",
        "/v1/topics",
        Some(json!({"name": "api", "partitions": 2, "configs": {"retention.ms": "7200000"}})),
    );
    assert_eq!(created["partitions"].as_array().unwrap().len(), 2);
    let duplicate = api.expect(
        409,
        "POST",
        "/v1/topics",
        "/v1/topics",
        Some(json!({"name": "api"})),
    );
    assert!(
        duplicate["error"]
            .as_str()
            .unwrap()
            .contains("TOPIC_ALREADY_EXISTS"),
        "{duplicate}"
    );
    api.expect(
        400,
        "POST",
        "/v1/topics",
        "/v1/topics",
        Some(json!({"name": "bad name!"})),
    );
    api.expect(
        400,
        "POST",
        "/v1/topics",
        "/v1/topics",
        Some(json!({"partitions": 2})),
    );
    let topics = api.expect(200, "GET", "/v1/topics", "/v1/topics", None);
    assert!(
        topics
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "api" && t["partitions"] == 2)
    );
    produce_numbers(&broker.addr, "api", 0..30, Some(0)).await;
    let described = api.expect(200, "GET", "/v1/topics/{name}", "/v1/topics/api", None);
    assert_eq!(
        described["partitions"][0]["high_watermark"], 30,
        "{described}"
    );
    assert!(described["partitions"][0]["local_bytes"].as_i64().unwrap() > 0);
    assert!(
        described["configs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "retention.ms"
                && c["value"] == "7200000"
                && c["source"] == "DYNAMIC_TOPIC_CONFIG")
    );
    let missing = api.expect(404, "GET", "/v1/topics/{name}", "/v1/topics/nope", None);
    assert!(
        missing["error"]
            .as_str()
            .unwrap()
            .contains("UNKNOWN_TOPIC_OR_PARTITION")
    );
    api.expect(
        200,
        "GET",
        "/v1/topics/{name}/configs",
        "/v1/topics/api/configs",
        None,
    );
    let altered = api.expect(
        200,
        "PATCH",
        "/v1/topics/{name}/configs",
        "/v1/topics/api/configs",
        Some(json!({"set": {"retention.ms": "3600000"}, "delete": []})),
    );
    assert!(
        altered
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "retention.ms" && c["value"] == "3600000")
    );
    api.expect(
        400,
        "PATCH",
        "/v1/topics/{name}/configs",
        "/v1/topics/api/configs",
        Some(json!({"set": {"retention.ms": "soon"}})),
    );
    api.expect(
        404,
        "PATCH",
        "/v1/topics/{name}/configs",
        "/v1/topics/nope/configs",
        Some(json!({"set": {"retention.ms": "1"}})),
    );
    let grown = api.expect(
        200,
        "POST",
        "/v1/topics/{name}/partitions",
        "/v1/topics/api/partitions",
        Some(json!({"count": 3})),
    );
    assert_eq!(grown["partitions"].as_array().unwrap().len(), 3);
    api.expect(
        400,
        "POST",
        "/v1/topics/{name}/partitions",
        "/v1/topics/api/partitions",
        Some(json!({"count": 1})),
    );
    let page = api.expect(
        200,
        "GET",
        "/v1/topics/{name}/records",
        "/v1/topics/api/records?partition=0&offset=10&limit=5",
        None,
    );
    let values: Vec<&str> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["10", "11", "12", "13", "14"]);
    assert_eq!(page["next"], 15);
    assert_eq!(page["high_watermark"], 30);
    api.expect(
        404,
        "GET",
        "/v1/topics/{name}/records",
        "/v1/topics/api/records?partition=9",
        None,
    );
    api.expect(
        400,
        "GET",
        "/v1/topics/{name}/records",
        "/v1/topics/api/records?offset=ten",
        None,
    );

    // Groups: a group that committed 10 of partition 0's 30 records.
    let consumer: rdkafka::consumer::BaseConsumer = common::client(&broker.addr)
        .set("group.id", "readers")
        .create()
        .unwrap();
    let mut offsets = rdkafka::TopicPartitionList::new();
    offsets
        .add_partition_offset("api", 0, rdkafka::Offset::Offset(10))
        .unwrap();
    rdkafka::consumer::Consumer::commit(&consumer, &offsets, rdkafka::consumer::CommitMode::Sync)
        .unwrap();
    drop(consumer);
    let groups = api.expect(200, "GET", "/v1/groups", "/v1/groups", None);
    assert!(
        groups
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["group"] == "readers"),
        "{groups}"
    );
    let group = api.expect(200, "GET", "/v1/groups/{group}", "/v1/groups/readers", None);
    assert_eq!(group["lag"], 20, "{group}");
    api.expect(404, "GET", "/v1/groups/{group}", "/v1/groups/nobody", None);
    let reset = api.expect(
        200,
        "POST",
        "/v1/groups/{group}/reset-offsets",
        "/v1/groups/readers/reset-offsets",
        Some(json!({"topic": "api", "partitions": [0], "to": "offset", "value": 25})),
    );
    assert_eq!(reset[0]["committed"], 25);
    let group = api.expect(200, "GET", "/v1/groups/{group}", "/v1/groups/readers", None);
    assert_eq!(group["lag"], 5, "{group}");
    api.expect(
        400,
        "POST",
        "/v1/groups/{group}/reset-offsets",
        "/v1/groups/readers/reset-offsets",
        Some(json!({"topic": "api", "to": "someday"})),
    );
    api.expect(
        200,
        "DELETE",
        "/v1/groups/{group}",
        "/v1/groups/readers",
        None,
    );
    api.expect(
        404,
        "DELETE",
        "/v1/groups/{group}",
        "/v1/groups/readers",
        None,
    );

    // Links, from the second broker.
    let link = api.expect(
        200,
        "POST",
        "/v1/links",
        "/v1/links",
        Some(json!({"name": "east", "source": source.addr, "topics": "orders.*"})),
    );
    assert_eq!(link["name"], "east");
    api.expect(
        409,
        "POST",
        "/v1/links",
        "/v1/links",
        Some(json!({"name": "east", "source": source.addr})),
    );
    api.expect(200, "GET", "/v1/links", "/v1/links", None);
    api.expect(200, "GET", "/v1/links/{name}", "/v1/links/east", None);
    api.expect(404, "GET", "/v1/links/{name}", "/v1/links/west", None);
    api.expect(
        200,
        "POST",
        "/v1/links/{name}/pause",
        "/v1/links/east/pause",
        None,
    );
    api.expect(
        200,
        "POST",
        "/v1/links/{name}/resume",
        "/v1/links/east/resume",
        None,
    );
    api.expect(
        200,
        "POST",
        "/v1/links/{name}/source",
        "/v1/links/east/source",
        Some(json!({"source": source.addr})),
    );
    api.expect(
        200,
        "POST",
        "/v1/links/{name}/promote",
        "/v1/links/east/promote",
        Some(json!({})),
    );
    api.expect(
        200,
        "POST",
        "/v1/links/{name}/failover",
        "/v1/links/east/failover",
        Some(json!({})),
    );
    api.expect(
        200,
        "POST",
        "/v1/links/{name}/restore",
        "/v1/links/east/restore",
        Some(json!({})),
    );
    api.expect(
        404,
        "POST",
        "/v1/links/{name}/pause",
        "/v1/links/west/pause",
        None,
    );
    api.expect(200, "DELETE", "/v1/links/{name}", "/v1/links/east", None);

    // Deleting the topic last.
    api.expect(200, "DELETE", "/v1/topics/{name}", "/v1/topics/api", None);
    api.expect(404, "DELETE", "/v1/topics/{name}", "/v1/topics/api", None);

    // Errors are JSON for paths and methods that do not exist and bodies that do not parse.
    let (status, _, body) = http_request(&broker.admin_addr, "GET", "/v1/nothing", &[], "");
    assert_eq!(status, 404);
    assert!(body.contains("\"error\""), "{body}");
    let (status, _, body) = http_request(&broker.admin_addr, "PUT", "/v1/topics", &[], "");
    assert_eq!(status, 405);
    assert!(body.contains("does not take PUT"), "{body}");
    let (status, _, body) =
        http_request(&broker.admin_addr, "POST", "/v1/topics", &[], "{not json");
    assert_eq!(status, 400);
    assert!(body.contains("\"error\""), "{body}");

    // The document is valid OpenAPI, every operation was called, every answer matches it.
    let doc_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(doc_file.path(), doc.to_string()).unwrap();
    api.file.flush().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/check_openapi.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(doc_file.path())
        .arg(api.file.path())
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
