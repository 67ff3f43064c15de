//! The report: one markdown table of figures, the limits each is set beside and the ratios.

use crate::{Options, Scale};

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured.
    pub figure: String,
    /// The value, formatted with its unit.
    pub value: String,
    /// The machine limits it is compared with, by name, with value / limit.
    pub limits: Vec<Limit>,
}

/// A machine limit a figure is compared with.
#[derive(Debug, Clone)]
pub struct Limit {
    /// Short name of the limit.
    pub name: &'static str,
    /// The limit in MB/s.
    pub mb_per_s: f64,
    /// The figure divided by the limit.
    pub ratio: f64,
}

impl Row {
    /// A machine limit in MB/s.
    pub fn limit(figure: &str, mb_per_s: f64) -> Self {
        Self::plain(format!("limit: {figure}"), format!("{mb_per_s:.0} MB/s"))
    }

    /// A throughput in MB/s over `runs` repetitions (median, and the range when there are
    /// several), compared with `limits`.
    pub fn throughput(
        figure: String,
        runs: &[f64],
        records_per_mb: f64,
        limits: &[(&'static str, f64)],
    ) -> Self {
        let median = median(runs);
        let mut value = format!(
            "{median:.0} MB/s ({:.0} records/s)",
            median * records_per_mb
        );
        if runs.len() > 1 {
            let (min, max) = runs
                .iter()
                .fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
            value.push_str(&format!(", median of {}: {min:.0}–{max:.0}", runs.len()));
        }
        Self {
            figure,
            value,
            limits: limits
                .iter()
                .map(|&(name, mb_per_s)| Limit {
                    name,
                    mb_per_s,
                    ratio: median / mb_per_s,
                })
                .collect(),
        }
    }

    /// A plain figure.
    pub fn plain(figure: String, value: String) -> Self {
        Self {
            figure,
            value,
            limits: Vec::new(),
        }
    }
}

/// The median of `values` (the upper one of an even count); 0 for none.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// Renders the table with a header saying how the run was made.
pub fn markdown(rows: &[Row], options: &Options, scale: Scale) -> String {
    let started = if options.brokers > 1 || options.replication_factor > 1 {
        format!(
            "{} strata nodes on this machine (started by the bench), topics with {} replicas, \
             min.insync.replicas={}",
            options.brokers, options.replication_factor, options.min_insync
        )
    } else {
        "strata dev (started by the bench)".to_owned()
    };
    let target = options.bootstrap.as_deref().unwrap_or(&started);
    let mode = if options.smoke {
        "smoke"
    } else if options.quick {
        "quick"
    } else {
        "full"
    };
    let knobs = &options.knobs;
    let mut out = format!(
        "Broker: {target}. Run: {mode}, {} MiB per workload and limit probe, {} run(s) of each \
         workload. Producer: linger.ms={}, batch.size={}, compression={}. Cores: {}.\n\n",
        scale.workload_bytes >> 20,
        scale.repeats,
        knobs.linger_ms,
        knobs.batch_size,
        knobs.compression,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    out.push_str("| figure | value | limit | ratio |\n| --- | --- | --- | --- |\n");
    for row in rows {
        let limit = row
            .limits
            .iter()
            .map(|l| format!("{}: {:.0} MB/s", l.name, l.mb_per_s))
            .collect::<Vec<_>>()
            .join("<br>");
        let ratio = row
            .limits
            .iter()
            .map(|l| format!("{:.0}%", l.ratio * 100.0))
            .collect::<Vec<_>>()
            .join("<br>");
        out.push_str(&format!(
            "| {} | {} | {limit} | {ratio} |\n",
            row.figure, row.value
        ));
    }
    out
}
