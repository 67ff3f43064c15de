//! Where each setting came from — a line of the TOML file, a flag — so that every error names
//! the key as the user wrote it and where, and unknown keys get a "did you mean".
//!
//! The TOML file may write names flat and quoted (`"log.retention.ms" = 1000`), as dotted keys
//! (`log.retention.ms = 1000`) or in tables (`[log] retention.ms = 1000`): all are flattened to
//! Kafka's dotted names.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::ConfigError;

/// Where a setting was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of the config file.
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
    },
    /// A command-line flag, as typed (`--set log.retention.ms=-5`, `--data-dir d`).
    Flag(String),
    /// Not given: the default.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File { path, line } => write!(f, "{} line {line}", path.display()),
            Self::Flag(flag) => f.write_str(flag),
            Self::Default => f.write_str("default"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The value, as text.
    pub value: String,
    /// Where it was given.
    pub origin: Origin,
}

/// A setting given on the command line: `--set key=value`, or a flag standing for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// Kafka name.
    pub key: String,
    /// Value.
    pub value: String,
    /// The flag as typed, for messages.
    pub flag: String,
}

impl Override {
    /// `--set key=value`.
    pub fn set(key: &str, value: &str) -> Self {
        Self {
            key: key.to_owned(),
            value: value.to_owned(),
            flag: format!("--set {key}={value}"),
        }
    }

    /// A flag that stands for `key` (`--data-dir` for `log.dirs`).
    pub fn flag(flag: &str, key: &str, value: &str) -> Self {
        Self {
            key: key.to_owned(),
            value: value.to_owned(),
            flag: format!("{flag} {value}"),
        }
    }
}

/// Reads a TOML config file into flat Kafka-named settings, each with its line.
pub fn read_file(path: &Path) -> Result<BTreeMap<String, Setting>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_owned(),
        error,
    })?;
    let parse_error = |e: toml::de::Error| {
        let line = e.span().map_or(0, |span| line_of(&text, span.start));
        let mut message = e.message().to_owned();
        if message.contains("duplicate key") {
            message.push_str(
                ": a dotted key such as `log.dirs` already defines the table `log`; write the \
                 settings of a table either all as dotted keys or all under its [header]",
            );
        }
        ConfigError::Parse {
            path: path.to_owned(),
            line,
            message,
        }
    };
    let table: toml::Table = text.parse().map_err(parse_error)?;
    let mut lines = BTreeMap::new();
    let spanned = toml::de::DeTable::parse(&text).map_err(parse_error)?;
    locate("", spanned.get_ref(), &text, &mut lines);
    let mut values = BTreeMap::new();
    flatten("", &toml::Value::Table(table), &mut values);
    Ok(values
        .into_iter()
        .map(|(key, value)| {
            let line = lines.get(&key).copied().unwrap_or(0);
            let origin = Origin::File {
                path: path.to_owned(),
                line,
            };
            (key, Setting { value, origin })
        })
        .collect())
}

fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Records the line of every leaf of `table` under its flattened name.
fn locate(
    prefix: &str,
    table: &toml::de::DeTable<'_>,
    text: &str,
    out: &mut BTreeMap<String, usize>,
) {
    for (key, value) in table.iter() {
        let name = join(prefix, key.get_ref());
        match value.get_ref() {
            toml::de::DeValue::Table(inner) => locate(&name, inner, text, out),
            _ => {
                out.insert(name, line_of(text, key.span().start));
            }
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn flatten(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                flatten(&join(prefix, key), value, out);
            }
        }
        toml::Value::String(text) => {
            out.insert(prefix.to_owned(), text.clone());
        }
        toml::Value::Array(items) => {
            let joined: Vec<String> = items
                .iter()
                .map(|item| match item {
                    toml::Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
                .collect();
            out.insert(prefix.to_owned(), joined.join(","));
        }
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

/// The known key closest to `unknown`, if one is close enough to be a typo of it.
pub fn did_you_mean<'a>(unknown: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (unknown.len() / 4).clamp(2, 5);
    known
        .map(|k| (edit_distance(unknown, k), k))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_and_suggestions() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        let known = ["log.retention.ms", "log.retention.bytes", "num.partitions"];
        assert_eq!(
            did_you_mean("log.retention.msec", known.into_iter()),
            Some("log.retention.ms")
        );
        assert_eq!(
            did_you_mean("num.partition", known.into_iter()),
            Some("num.partitions")
        );
        assert_eq!(did_you_mean("something.else", known.into_iter()), None);
    }

    #[test]
    fn every_setting_knows_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strata.toml");
        std::fs::write(
            &path,
            "node.id = 1\n\n[log]\nretention.ms = 5\n\"segment.bytes\" = 4096\n",
        )
        .unwrap();
        let settings = read_file(&path).unwrap();
        let line = |key: &str| match &settings[key].origin {
            Origin::File { line, .. } => *line,
            other => panic!("{other:?}"),
        };
        assert_eq!(line("node.id"), 1);
        assert_eq!(line("log.retention.ms"), 4);
        assert_eq!(line("log.segment.bytes"), 5);
        assert_eq!(settings["log.segment.bytes"].value, "4096");
    }

    #[test]
    fn a_table_redefined_by_a_header_is_explained_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strata.toml");
        std::fs::write(&path, "log.dirs = \"/d\"\n\n[log]\nretention.ms = 1\n").unwrap();
        let message = read_file(&path).unwrap_err().to_string();
        assert!(message.contains("line 3"), "{message}");
        assert!(message.contains("dotted key"), "{message}");
    }
}
