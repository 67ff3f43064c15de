//! The object store segments go to: a local directory (the embedded default) or S3 and
//! S3-compatible stores by URL (`s3://bucket/prefix`), configured by the usual AWS environment
//! (`AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_ENDPOINT` or `AWS_ENDPOINT_URL` for MinIO-like stores, which are
//! addressed path-style; instance credentials when no keys are set).

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};

use crate::TieringError;
use crate::timed::TimedStore;

/// Settings beyond the URL.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Retries of one request inside the client before an upload attempt fails (the uploader
    /// then retries the whole segment later, with its own backoff).
    pub max_retries: usize,
    /// How long one request may take.
    pub request_timeout: Duration,
    /// How long one operation may take, retries included (see [`crate::timed`]).
    pub operation_timeout: Duration,
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// Explicit credentials and endpoint (tests); otherwise the environment's.
    pub s3: Option<S3Settings>,
}

/// Explicit S3 settings.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// Endpoint, e.g. `http://127.0.0.1:9000`.
    pub endpoint: String,
    /// Region.
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_retries: 3,
            request_timeout: Duration::from_secs(30),
            operation_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            s3: None,
        }
    }
}

/// Opens the store named by `url`: `s3://bucket[/prefix]`, `file:///dir` or a plain directory.
pub fn open(url: &str, options: &StoreOptions) -> Result<Arc<dyn ObjectStore>, TieringError> {
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(TieringError::Config(format!("'{url}' names no bucket")));
        }
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
            max_retries: options.max_retries,
            retry_timeout: options.request_timeout * 2,
        };
        let mut client = ClientOptions::new()
            .with_timeout(options.request_timeout)
            .with_connect_timeout(options.connect_timeout);
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        let endpoint = options
            .s3
            .as_ref()
            .map(|s| s.endpoint.clone())
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
        if let Some(endpoint) = endpoint {
            client = client.with_allow_http(endpoint.starts_with("http://"));
            builder = builder.with_endpoint(endpoint);
        }
        if let Ok(region) = std::env::var("AWS_REGION") {
            builder = builder.with_region(region);
        }
        if let Some(s3) = &options.s3 {
            builder = builder
                .with_region(&s3.region)
                .with_access_key_id(&s3.access_key_id)
                .with_secret_access_key(&s3.secret_access_key);
        }
        let store = builder
            .with_client_options(client)
            .with_retry(retry)
            .build()
            .map_err(|e| TieringError::Config(format!("{url}: {e}")))?;
        let prefix = prefix.trim_matches('/');
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(store)
        } else {
            Arc::new(PrefixStore::new(store, Path::from(prefix)))
        };
        return Ok(Arc::new(TimedStore::new(store, options.operation_timeout)));
    }
    let dir = url.strip_prefix("file://").unwrap_or(url);
    if dir.contains("://") {
        return Err(TieringError::Config(format!(
            "'{url}': use s3://bucket/prefix or a local directory"
        )));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| TieringError::Config(format!("cannot create {dir}: {e}")))?;
    let store = LocalFileSystem::new_with_prefix(dir)
        .map_err(|e| TieringError::Config(format!("{dir}: {e}")))?;
    // Remote data is the only copy once local retention deletes a segment: make it durable.
    Ok(Arc::new(TimedStore::new(
        Arc::new(store.with_fsync(true)),
        options.operation_timeout,
    )))
}

/// Environment variables that give the S3 client credentials, in the order it looks at them;
/// without any, it asks the ECS container or EC2 instance metadata endpoint.
pub const AWS_CREDENTIAL_SOURCES: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
];

/// Where the S3 client looks for credentials, in words, for error messages.
const WHERE_CREDENTIALS_ARE_LOOKED_FOR: &str = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
(and AWS_SESSION_TOKEN for temporary ones), or AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, or \
run where the ECS container or EC2 instance metadata endpoint (169.254.169.254) provides them";

/// A failure of an S3 store at `url` explained, when it comes from missing credentials: no
/// credential variable is set and the instance metadata endpoint, the last resort, refused or
/// is not there. `None` when that is not the cause.
pub fn explain_missing_credentials(url: &str, failure: &str) -> Option<String> {
    // The client's requests to the metadata endpoint (IMDSv2 token, then the role's keys).
    let asked_metadata = ["/latest/api/token", "/latest/meta-data/iam"]
        .iter()
        .any(|path| failure.contains(path));
    if !url.starts_with("s3://") || options_have_credentials() || !asked_metadata {
        return None;
    }
    Some(format!(
        "no AWS credentials were found for {url}: {WHERE_CREDENTIALS_ARE_LOOKED_FOR} (asking \
         the instance metadata endpoint failed: {failure})"
    ))
}

fn options_have_credentials() -> bool {
    AWS_CREDENTIAL_SOURCES
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// Whether the store answers, and accepts this node's credentials: a HEAD of an object that
/// does not exist (cheap, and writes nothing). For health checks.
pub async fn reachable(store: &dyn ObjectStore) -> Result<(), TieringError> {
    match store.head(&Path::from("_strata/health")).await {
        Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Writes, reads back and deletes a small object, so that a wrong bucket, bad credentials or
/// an unreachable store show up at startup with the store's own message.
pub async fn probe(store: &dyn ObjectStore) -> Result<(), TieringError> {
    let path = Path::from(format!("_strata/probe-{}", uuid::Uuid::new_v4()));
    let body = bytes::Bytes::from_static(b"strata");
    let check = async {
        store.put(&path, body.clone().into()).await?;
        let read = store.get(&path).await?.bytes().await?;
        store.delete(&path).await?;
        Ok::<_, object_store::Error>(read)
    };
    match check.await {
        Ok(read) if read == body => Ok(()),
        Ok(_) => Err(TieringError::Config(
            "the object store returned other bytes than were written".into(),
        )),
        Err(e) => Err(TieringError::Config(format!(
            "the object store is not usable: {e}"
        ))),
    }
}
