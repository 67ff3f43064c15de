//! Admin commands of the `strata` binary that talk to a running broker.

pub mod acl;
pub mod cluster;
pub mod config;
pub mod consume;
pub mod groups;
pub mod http;
pub mod link;
pub mod partitions;
pub mod produce;
pub mod reassign;
pub mod tiering;
pub mod topic;
pub mod user;

/// How a command prints its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Output {
    /// Tables and sentences for people.
    #[default]
    Text,
    /// JSON for scripts (one document; `consume`: one object per record per line).
    Json,
}

impl Output {
    /// `value` as pretty JSON and a newline.
    pub fn json(self, value: &impl serde::Serialize) -> anyhow::Result<String> {
        Ok(serde_json::to_string_pretty(value)? + "\n")
    }
}

/// Columns padded to their widest cell.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out.push('\n');
    out
}
