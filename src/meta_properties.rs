//! `meta.properties`: which cluster and node a data directory belongs to, in Kafka's format.
//!
//! Written once the broker has registered with the quorum and learnt the cluster id; checked at
//! every start, so a directory is never served under another node id or joined to another
//! cluster by mistake.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::log::LogError;
use crate::log::local_log::sync_dir;

/// File name in the data directory.
pub const META_PROPERTIES: &str = "meta.properties";

/// The identity recorded in a data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    /// The cluster the data belongs to.
    pub cluster_id: String,
    /// The node that owns the directory.
    pub node_id: i32,
}

fn invalid(path: &Path, message: String) -> LogError {
    LogError::io(
        path,
        std::io::Error::new(std::io::ErrorKind::InvalidData, message),
    )
}

impl MetaProperties {
    /// Reads the file of `data_dir`; `None` for a directory never registered.
    pub fn read(data_dir: &Path) -> Result<Option<Self>, LogError> {
        let path = data_dir.join(META_PROPERTIES);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LogError::io(&path, e)),
        };
        let value = |key: &str| {
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .find_map(|l| l.split_once('=').filter(|(k, _)| k.trim() == key))
                .map(|(_, v)| v.trim().to_owned())
        };
        let cluster_id =
            value("cluster.id").ok_or_else(|| invalid(&path, "cluster.id is missing".into()))?;
        let node_id = value("node.id")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| invalid(&path, "node.id is missing or not a number".into()))?;
        Ok(Some(Self {
            cluster_id,
            node_id,
        }))
    }

    /// Writes the file atomically.
    pub fn write(&self, data_dir: &Path) -> Result<(), LogError> {
        let path = data_dir.join(META_PROPERTIES);
        let tmp: PathBuf = data_dir.join("meta.properties.tmp");
        let text = format!(
            "#Written by Strata\nversion=1\ncluster.id={}\nnode.id={}\n",
            self.cluster_id, self.node_id
        );
        let mut file = std::fs::File::create(&tmp).map_err(|e| LogError::io(&tmp, e))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| LogError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| LogError::io(&path, e))?;
        sync_dir(data_dir)
    }

    /// Refuses a directory that belongs to another node.
    pub fn check_node(&self, data_dir: &Path, node_id: i32) -> Result<(), LogError> {
        if self.node_id != node_id {
            return Err(invalid(
                &data_dir.join(META_PROPERTIES),
                format!(
                    "the data directory belongs to node {} but node.id is {node_id}",
                    self.node_id
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_node_check() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(MetaProperties::read(dir.path()).unwrap(), None);
        let props = MetaProperties {
            cluster_id: "abc".into(),
            node_id: 3,
        };
        props.write(dir.path()).unwrap();
        let read = MetaProperties::read(dir.path()).unwrap().unwrap();
        assert_eq!(read, props);
        assert!(read.check_node(dir.path(), 3).is_ok());
        let err = read.check_node(dir.path(), 4).unwrap_err().to_string();
        assert!(
            err.contains("node 3") && err.contains("node.id is 4"),
            "{err}"
        );
    }
}
