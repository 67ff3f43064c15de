//! The report: one markdown table of figures, their limits and the ratio between them.

use crate::{Options, Scale};

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured.
    pub figure: String,
    /// The value, formatted with its unit.
    pub value: String,
    /// The machine limit it is compared with, if any.
    pub limit: Option<(String, f64)>,
    /// value / limit.
    pub ratio: Option<f64>,
}

impl Row {
    /// A machine limit in MB/s.
    pub fn limit(figure: &str, mb_per_s: f64) -> Self {
        Self {
            figure: format!("limit: {figure}"),
            value: format!("{mb_per_s:.0} MB/s"),
            limit: None,
            ratio: None,
        }
    }

    /// A throughput in MB/s, optionally compared with a limit.
    pub fn throughput(
        figure: String,
        mb_per_s: f64,
        records_per_s: f64,
        limit: Option<(&str, f64)>,
    ) -> Self {
        Self {
            figure,
            value: format!("{mb_per_s:.0} MB/s ({records_per_s:.0} records/s)"),
            ratio: limit.map(|(_, l)| mb_per_s / l),
            limit: limit.map(|(name, l)| (name.to_owned(), l)),
        }
    }

    /// A plain figure.
    pub fn plain(figure: String, value: String) -> Self {
        Self {
            figure,
            value,
            limit: None,
            ratio: None,
        }
    }
}

/// Renders the table with a header saying how the run was made.
pub fn markdown(rows: &[Row], options: &Options, scale: Scale) -> String {
    let target = options
        .bootstrap
        .as_deref()
        .unwrap_or("strata dev (started by the bench)");
    let mode = if options.smoke {
        "smoke"
    } else if options.quick {
        "quick"
    } else {
        "full"
    };
    let mut out = format!(
        "Broker: {target}. Run: {mode}, {} MiB per workload, {} MiB per limit probe. Cores: {}.\n\n",
        scale.workload_bytes >> 20,
        scale.limit_bytes >> 20,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    out.push_str("| figure | value | limit | ratio |\n| --- | --- | --- | --- |\n");
    for row in rows {
        let limit = row
            .limit
            .as_ref()
            .map_or(String::new(), |(name, l)| format!("{name}: {l:.0} MB/s"));
        let ratio = row
            .ratio
            .map_or(String::new(), |r| format!("{:.0}%", r * 100.0));
        out.push_str(&format!(
            "| {} | {} | {limit} | {ratio} |\n",
            row.figure, row.value
        ));
    }
    out
}
