//! An object store whose every operation ends within a bound, retries included: a store that
//! accepts connections and never answers must show up as a failure (in the tiering status, in
//! health, to a fetch) within seconds, not hang a task for minutes.
//!
//! GETs are read to the end inside the bound (the tier only reads chunks of a few MiB, indexes
//! and manifests), listings bound each page, and a PUT's bound grows with its size at
//! [`MIN_UPLOAD_BYTES_PER_SECOND`], so a large segment on a slow link is not cut off.

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metrics::STORE;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// The slowest upload rate a PUT's bound allows for.
pub const MIN_UPLOAD_BYTES_PER_SECOND: u64 = 1 << 20;

/// `inner` with every operation bounded by `timeout`.
#[derive(Debug)]
pub struct TimedStore {
    inner: Arc<dyn ObjectStore>,
    timeout: Duration,
}

impl TimedStore {
    /// Bounds every operation of `inner` by `timeout`.
    pub fn new(inner: Arc<dyn ObjectStore>, timeout: Duration) -> Self {
        Self { inner, timeout }
    }
}

impl fmt::Display for TimedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (operations bounded by {:?})",
            self.inner, self.timeout
        )
    }
}

fn timed_out(what: String, limit: Duration) -> object_store::Error {
    object_store::Error::Generic {
        store: "object store",
        source: format!("{what} did not complete within {limit:?}").into(),
    }
}

/// Whether an error is a failure of the store, rather than an answer about the object.
fn failure(e: &object_store::Error) -> bool {
    !matches!(
        e,
        object_store::Error::NotFound { .. }
            | object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. }
            | object_store::Error::NotModified { .. }
    )
}

async fn bounded<T>(
    name: &'static str,
    limit: Duration,
    what: impl FnOnce() -> String,
    op: impl Future<Output = Result<T>>,
) -> Result<T> {
    let started = Instant::now();
    let result = match tokio::time::timeout(limit, op).await {
        Ok(result) => result,
        Err(_) => Err(timed_out(what(), limit)),
    };
    STORE.request(name, started, result.as_ref().is_err_and(failure));
    result
}

#[async_trait::async_trait]
impl ObjectStore for TimedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let bytes = payload.content_length() as u64;
        let limit = self.timeout + Duration::from_secs(bytes / MIN_UPLOAD_BYTES_PER_SECOND);
        let put = bounded(
            "put",
            limit,
            || format!("PUT {location} ({bytes} bytes)"),
            self.inner.put_opts(location, payload, opts),
        )
        .await?;
        STORE.uploaded(bytes);
        Ok(put)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        bounded(
            "put_multipart",
            self.timeout,
            || format!("starting an upload of {location}"),
            self.inner.put_multipart_opts(location, opts),
        )
        .await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let head = options.head;
        let name = if head { "head" } else { "get" };
        bounded(name, self.timeout, || format!("GET {location}"), async {
            let result = self.inner.get_opts(location, options).await?;
            if head {
                return Ok(result);
            }
            // The body too, inside the bound: a stalled download is a failed GET.
            let meta = result.meta.clone();
            let range = result.range.clone();
            let attributes = result.attributes.clone();
            let extensions = result.extensions.clone();
            let body = result.bytes().await?;
            STORE.downloaded(body.len() as u64);
            Ok(GetResult {
                payload: GetResultPayload::Stream(stream::once(async move { Ok(body) }).boxed()),
                meta,
                range,
                attributes,
                extensions,
            })
        })
        .await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let got = bounded(
            "get_ranges",
            self.timeout,
            || format!("GET {location} ({} ranges)", ranges.len()),
            self.inner.get_ranges(location, ranges),
        )
        .await?;
        STORE.downloaded(got.iter().map(|b| b.len() as u64).sum());
        Ok(got)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        bounded_stream(
            "delete",
            self.inner.delete_stream(locations),
            self.timeout,
            "DELETE".to_owned(),
        )
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let what = format!("LIST {}", prefix.map_or(String::new(), ToString::to_string));
        bounded_stream("list", self.inner.list(prefix), self.timeout, what)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let what = format!("LIST {}", prefix.map_or(String::new(), ToString::to_string));
        bounded_stream(
            "list",
            self.inner.list_with_offset(prefix, offset),
            self.timeout,
            what,
        )
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        bounded(
            "list",
            self.timeout,
            || format!("LIST {}", prefix.map_or(String::new(), ToString::to_string)),
            self.inner.list_with_delimiter(prefix),
        )
        .await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        bounded(
            "copy",
            self.timeout,
            || format!("COPY {from} to {to}"),
            self.inner.copy_opts(from, to, options),
        )
        .await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        bounded(
            "rename",
            self.timeout,
            || format!("RENAME {from} to {to}"),
            self.inner.rename_opts(from, to, options),
        )
        .await
    }
}

/// `inner` with each item bounded by `limit`: a stalled page ends the stream with an error.
fn bounded_stream<T: Send + 'static>(
    name: &'static str,
    inner: BoxStream<'static, Result<T>>,
    limit: Duration,
    what: String,
) -> BoxStream<'static, Result<T>> {
    stream::unfold(Some(inner), move |state| {
        let what = what.clone();
        async move {
            let mut inner = state?;
            let item = match tokio::time::timeout(limit, inner.next()).await {
                Ok(Some(item)) => Some((item, Some(inner))),
                Ok(None) => None,
                Err(_) => Some((Err(timed_out(what, limit)), None)),
            };
            if let Some((Err(e), _)) = &item
                && failure(e)
            {
                STORE.stream_error(name);
            }
            item
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;

    #[tokio::test]
    async fn operations_pass_through_within_the_bound() {
        let inner: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let store = TimedStore::new(inner, Duration::from_secs(5));
        let path = Path::from("a/b");
        store
            .put(&path, Bytes::from_static(b"hello").into())
            .await
            .unwrap();
        assert_eq!(store.get_range(&path, 1..4).await.unwrap().as_ref(), b"ell");
        assert_eq!(
            store
                .get(&path)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
                .as_ref(),
            b"hello"
        );
        assert_eq!(store.head(&path).await.unwrap().size, 5);
        let listed: Vec<_> = store.list(Some(&Path::from("a"))).collect().await;
        assert_eq!(listed.len(), 1);
        store.delete(&path).await.unwrap();
        assert!(matches!(
            store.head(&path).await,
            Err(object_store::Error::NotFound { .. })
        ));
    }
}
