//! An S3-protocol server in the test process (s3s with the s3s-fs file backend) on an
//! ephemeral port, for tests that must talk to a real S3 endpoint. It can be told to answer
//! every request with 503 (SlowDown), to refuse connections, or to stall (accept requests and
//! answer none until told otherwise), for a while.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use s3s::{S3, S3Request, S3Response, S3Result};

/// Access key of the test server.
pub const ACCESS_KEY: &str = "strata-test";
/// Secret key of the test server.
pub const SECRET_KEY: &str = "strata-test-secret";

/// A running test server; stops when dropped.
pub struct TestS3 {
    /// Where it listens.
    pub addr: SocketAddr,
    /// While set, every request gets 503 SlowDown.
    pub unavailable: Arc<AtomicBool>,
    /// While set, connections are closed at once (the store seems unreachable).
    pub refusing: Arc<AtomicBool>,
    /// While set, requests are read and not answered (a store that hangs).
    pub stalled: Arc<AtomicBool>,
    /// Requests answered (503s included).
    pub requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestS3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestS3 {
    /// Its endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Explicit store settings for it.
    pub fn settings(&self) -> crate::store::S3Settings {
        crate::store::S3Settings {
            endpoint: self.endpoint(),
            region: "us-east-1".into(),
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: SECRET_KEY.into(),
        }
    }
}

/// Starts a server storing objects under `root`, with `bucket` created.
pub async fn start(root: &Path, bucket: &str) -> TestS3 {
    std::fs::create_dir_all(root.join(bucket)).expect("bucket directory");
    let fs = s3s_fs::FileSystem::new(root).expect("s3s-fs root");
    let objects = Objects {
        fs,
        root: root.to_owned(),
    };
    let s3 = {
        let mut builder = S3ServiceBuilder::new(objects);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        builder.build()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let unavailable = Arc::new(AtomicBool::new(false));
    let refusing = Arc::new(AtomicBool::new(false));
    let stalled = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicUsize::new(0));
    let (flag, refuse, count) = (unavailable.clone(), refusing.clone(), requests.clone());
    let stall = stalled.clone();
    let root = root.to_owned();
    let task = tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            if refuse.load(Ordering::SeqCst) {
                drop(socket);
                continue;
            }
            let _ = socket.set_nodelay(true);
            let (s3, flag, count) = (s3.clone(), flag.clone(), count.clone());
            let (refuse, root, stall) = (refuse.clone(), root.clone(), stall.clone());
            let service = service_fn(move |request: Request<Incoming>| {
                let s3 = s3.clone();
                let stall = stall.clone();
                let failing = flag.load(Ordering::SeqCst);
                let refused = refuse.load(Ordering::SeqCst);
                count.fetch_add(1, Ordering::SeqCst);
                // s3s-fs creates missing buckets on PUT; S3 refuses them.
                let bucket = request.uri().path().trim_start_matches('/');
                let bucket = bucket.split('/').next().unwrap_or_default().to_owned();
                let known = bucket.is_empty() || root.join(&bucket).is_dir();
                async move {
                    while stall.load(Ordering::SeqCst) {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                    if refused {
                        // An error from the service drops the connection: the store is gone.
                        return Err(std::io::Error::other("refusing connections"));
                    }
                    if failing || !known {
                        let _ = request.into_body().collect().await;
                        return Ok(if failing {
                            error_response(StatusCode::SERVICE_UNAVAILABLE, "SlowDown")
                        } else {
                            error_response(StatusCode::NOT_FOUND, "NoSuchBucket")
                        });
                    }
                    s3.call(request.map(s3s::Body::from))
                        .await
                        .map_err(|e| std::io::Error::other(format!("{e:?}")))
                }
            });
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    TestS3 {
        addr,
        unavailable,
        refusing,
        stalled,
        requests,
        task,
    }
}

fn error_response(status: StatusCode, code: &'static str) -> Response<s3s::Body> {
    Response::builder()
        .status(status)
        .body(s3s::Body::from(format!(
            "<Error><Code>{code}</Code><Message>{code}</Message></Error>"
        )))
        .expect("response")
}

/// s3s-fs, but a GET reads its range in one blocking read: s3s-fs streams it in 4 KiB reads,
/// each a trip through tokio's blocking pool, which costs a benchmark on two cores more CPU than
/// the broker's own work and stands in poorly for a remote store.
struct Objects {
    fs: s3s_fs::FileSystem,
    root: std::path::PathBuf,
}

/// `impl S3 for Objects`: the listed operations go to s3s-fs, then the items given.
macro_rules! objects {
    ($($op:ident: $input:ident => $output:ident,)* ; $($own:item)*) => {
        #[async_trait::async_trait]
        impl S3 for Objects {
            $(
                async fn $op(
                    &self,
                    req: S3Request<s3s::dto::$input>,
                ) -> S3Result<S3Response<s3s::dto::$output>> {
                    self.fs.$op(req).await
                }
            )*
            $($own)*
        }
    };
}

objects! {
    create_bucket: CreateBucketInput => CreateBucketOutput,
    copy_object: CopyObjectInput => CopyObjectOutput,
    delete_bucket: DeleteBucketInput => DeleteBucketOutput,
    delete_object: DeleteObjectInput => DeleteObjectOutput,
    delete_objects: DeleteObjectsInput => DeleteObjectsOutput,
    get_bucket_location: GetBucketLocationInput => GetBucketLocationOutput,
    head_bucket: HeadBucketInput => HeadBucketOutput,
    head_object: HeadObjectInput => HeadObjectOutput,
    list_buckets: ListBucketsInput => ListBucketsOutput,
    list_objects: ListObjectsInput => ListObjectsOutput,
    list_objects_v2: ListObjectsV2Input => ListObjectsV2Output,
    put_object: PutObjectInput => PutObjectOutput,
    create_multipart_upload: CreateMultipartUploadInput => CreateMultipartUploadOutput,
    upload_part: UploadPartInput => UploadPartOutput,
    upload_part_copy: UploadPartCopyInput => UploadPartCopyOutput,
    list_parts: ListPartsInput => ListPartsOutput,
    complete_multipart_upload: CompleteMultipartUploadInput => CompleteMultipartUploadOutput,
    abort_multipart_upload: AbortMultipartUploadInput => AbortMultipartUploadOutput,
    ;
    async fn get_object(
        &self,
        req: S3Request<s3s::dto::GetObjectInput>,
    ) -> S3Result<S3Response<s3s::dto::GetObjectOutput>> {
        let path = self.root.join(&req.input.bucket).join(&req.input.key);
        let range = req.input.range;
        // s3s-fs answers everything but the body: headers, errors, unsatisfiable ranges.
        let mut response = self.fs.get_object(req).await?;
        let length = response.output.content_length.unwrap_or(0).max(0) as u64;
        let read = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
            use std::io::{Read, Seek};
            let mut file = std::fs::File::open(&path)?;
            let size = file.metadata()?.len();
            let start = match range {
                Some(s3s::dto::Range::Int { first, .. }) => first,
                Some(s3s::dto::Range::Suffix { length }) => size.saturating_sub(length),
                None => 0,
            };
            file.seek(std::io::SeekFrom::Start(start))?;
            let mut body = vec![0; length as usize];
            file.read_exact(&mut body)?;
            Ok(body)
        })
        .await
        .map_err(s3s::S3Error::internal_error)?
        .map_err(s3s::S3Error::internal_error)?;
        response.output.body = Some(s3s::dto::StreamingBlob::from(s3s::Body::from(
            bytes::Bytes::from(read),
        )));
        Ok(response)
    }
}
