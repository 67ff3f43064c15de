//! Cluster metadata of a single node: cluster id, topics (id, partitions, config overrides) and
//! the producer-id block, persisted as one JSON document.
//!
//! The file is replaced atomically (write to a temporary file, fsync, rename, fsync the
//! directory), so a crash leaves either the old or the new version. The metadata quorum will
//! replace this store with records in the openraft log; until then it is the source of truth
//! for which topics exist.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::log::LogError;
use crate::log::partition_log::sync_dir;

/// File name of the metadata document in the data directory.
pub const METADATA_FILE: &str = "metadata.json";

/// Producer ids are reserved in blocks, so the file is written once per block, not per id; a
/// restart skips the rest of the block, which is harmless (ids are 64-bit).
pub const PRODUCER_ID_BLOCK: i64 = 1000;

/// A topic as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopicRecord {
    /// The topic id.
    pub topic_id: Uuid,
    /// Partition count.
    pub partitions: i32,
    /// Config overrides (topic-level names).
    pub configs: BTreeMap<String, String>,
}

/// The persisted document (format version 1).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MetadataDocument {
    /// Format version of this file.
    pub version: u32,
    /// The cluster id.
    pub cluster_id: String,
    /// Producer ids below this may have been handed out.
    pub producer_id_block_end: i64,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicRecord>,
}

/// The metadata document and the file it lives in.
#[derive(Debug)]
pub struct MetadataStore {
    path: PathBuf,
    /// The current document.
    pub doc: MetadataDocument,
}

impl MetadataStore {
    /// Loads the document from `data_dir`, or starts a new one with `cluster_id` (a fresh id if
    /// `None`). A configured cluster id must match the stored one.
    pub fn open(data_dir: &Path, cluster_id: Option<&str>) -> Result<Self, LogError> {
        let path = data_dir.join(METADATA_FILE);
        let doc = match std::fs::read(&path) {
            Ok(bytes) => {
                let doc: MetadataDocument = serde_json::from_slice(&bytes).map_err(|e| {
                    LogError::io(
                        &path,
                        std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                    )
                })?;
                if let Some(configured) = cluster_id.filter(|c| *c != doc.cluster_id) {
                    return Err(LogError::io(
                        &path,
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!(
                                "data belongs to cluster {} but cluster.id is {configured}",
                                doc.cluster_id
                            ),
                        ),
                    ));
                }
                doc
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => MetadataDocument {
                version: 1,
                cluster_id: cluster_id.map_or_else(new_cluster_id, str::to_owned),
                producer_id_block_end: 0,
                topics: BTreeMap::new(),
            },
            Err(e) => return Err(LogError::io(&path, e)),
        };
        let store = Self { path, doc };
        store.save()?;
        Ok(store)
    }

    /// Applies `change` and persists it; if the write fails the document stays as it was, so
    /// memory never runs ahead of disk.
    pub fn update(&mut self, change: impl FnOnce(&mut MetadataDocument)) -> Result<(), LogError> {
        let before = self.doc.clone();
        change(&mut self.doc);
        if let Err(e) = self.save() {
            self.doc = before;
            return Err(e);
        }
        Ok(())
    }

    /// Writes the document atomically and durably.
    pub fn save(&self) -> Result<(), LogError> {
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(&self.doc).expect("metadata serializes");
        let mut file = std::fs::File::create(&tmp).map_err(|e| LogError::io(&tmp, e))?;
        file.write_all(&bytes).map_err(|e| LogError::io(&tmp, e))?;
        file.sync_all().map_err(|e| LogError::io(&tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| LogError::io(&self.path, e))?;
        sync_dir(self.path.parent().unwrap_or(Path::new(".")))
    }
}

/// A cluster id in Kafka's format: a random UUID in URL-safe base64 without padding.
fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = Uuid::new_v4().into_bytes();
    let mut out = String::with_capacity(22);
    let mut bits = 0u32;
    let mut count = 0;
    for byte in bytes {
        bits = (bits << 8) | byte as u32;
        count += 8;
        while count >= 6 {
            count -= 6;
            out.push(ALPHABET[((bits >> count) & 63) as usize] as char);
        }
    }
    if count > 0 {
        out.push(ALPHABET[((bits << (6 - count)) & 63) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_survives_reopen_and_checks_cluster_id() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = MetadataStore::open(dir.path(), None).unwrap();
        assert_eq!(store.doc.cluster_id.len(), 22);
        store.doc.topics.insert(
            "t".into(),
            TopicRecord {
                topic_id: Uuid::new_v4(),
                partitions: 3,
                configs: BTreeMap::new(),
            },
        );
        store.save().unwrap();
        let cluster = store.doc.cluster_id.clone();
        let reopened = MetadataStore::open(dir.path(), Some(&cluster)).unwrap();
        assert_eq!(reopened.doc, store.doc);
        assert!(MetadataStore::open(dir.path(), Some("another")).is_err());
    }
}
