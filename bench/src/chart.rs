//! The SVG chart of a run: throughput of each workload beside the machine's limits, and the
//! end-to-end latency percentiles beside the target.

use std::path::Path;

use plotters::coord::ranged1d::{IntoSegmentedCoord, SegmentValue};
use plotters::prelude::*;

use crate::latency::Latencies;
use crate::limits::Limits;
use crate::report::median;
use crate::workload::{Measured, Workload};

const PRODUCE: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const CONSUME: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
const LATENCY: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
/// The latency target of the benchmark issue: p99 under 5 ms at 10 MB/s.
const LATENCY_TARGET_MS: f64 = 5.0;

/// Draws the chart into an SVG file at `path`.
pub fn write(
    path: &Path,
    measured: &[(Workload, Vec<Measured>)],
    limits: Option<&Limits>,
    latencies: Option<&Latencies>,
) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (960, 760)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_error)?;
    let (top, bottom) = root.split_vertically(470);
    throughput(&top, measured, limits)?;
    if let Some(latencies) = latencies {
        latency(&bottom, latencies)?;
    }
    root.present().map_err(draw_error)?;
    Ok(())
}

fn throughput<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    measured: &[(Workload, Vec<Measured>)],
    limits: Option<&Limits>,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    // One bar a direction and workload; the colour tells the direction.
    let mut bars: Vec<(String, f64, RGBColor)> = Vec::new();
    for (workload, runs) in measured {
        let produce: Vec<f64> = runs.iter().map(Measured::produce_mb_s).collect();
        let consume: Vec<f64> = runs.iter().map(Measured::consume_mb_s).collect();
        let name = format!(
            "{} B acks={}",
            workload.record_bytes,
            workload.acks.setting()
        );
        bars.push((name.clone(), median(&produce), PRODUCE));
        bars.push((name, median(&consume), CONSUME));
    }
    let limit_lines: Vec<(&str, f64)> = limits.map_or(Vec::new(), |l| {
        vec![
            ("loopback write/read", l.loopback_read_write),
            ("null broker fetch (sendfile)", l.loopback_sendfile),
            ("null broker produce (file append)", l.null_broker_append),
        ]
    });
    let top = bars
        .iter()
        .map(|b| b.1)
        .chain(limit_lines.iter().map(|l| l.1))
        .fold(1.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Throughput (median MB/s) beside this machine's limits",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((0..bars.len().saturating_sub(1)).into_segmented(), 0.0..top)
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc("MB/s")
        .x_label_style(("sans-serif", 12))
        .x_label_formatter(&|x| label(&bars, x, |b| b.0.clone()))
        .draw()
        .map_err(draw_error)?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, bar)| {
            let mut rect = Rectangle::new(
                [
                    (SegmentValue::Exact(i), 0.0),
                    (SegmentValue::Exact(i + 1), bar.1),
                ],
                bar.2.filled(),
            );
            rect.set_margin(0, 0, 6, 6);
            rect
        }))
        .map_err(draw_error)?;
    // Legend entries for the two bar colours, drawn as zero-height series.
    for (name, colour) in [("produce", PRODUCE), ("consume", CONSUME)] {
        chart
            .draw_series(std::iter::empty::<Rectangle<_>>())
            .map_err(draw_error)?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
    }
    for (k, (name, value)) in limit_lines.iter().enumerate() {
        let colour = Palette99::pick(k + 3).to_rgba();
        chart
            .draw_series(LineSeries::new(
                [
                    (SegmentValue::Exact(0), *value),
                    (SegmentValue::Last, *value),
                ],
                colour.stroke_width(2),
            ))
            .map_err(draw_error)?
            .label(format!("{name}: {value:.0} MB/s"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(draw_error)?;
    Ok(())
}

/// The label of the category at the centre of segment `x`.
fn label<T>(items: &[T], x: &SegmentValue<usize>, name: impl Fn(&T) -> String) -> String {
    match x {
        SegmentValue::CenterOf(i) => items.get(*i).map_or(String::new(), name),
        _ => String::new(),
    }
}

fn latency<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    latencies: &Latencies,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let percentiles = latencies.percentiles();
    let top = percentiles
        .iter()
        .map(|p| p.1)
        .fold(LATENCY_TARGET_MS, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("End-to-end latency at {} (ms)", latencies.describe()),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((0..percentiles.len() - 1).into_segmented(), 0.0..top)
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc("ms")
        .x_label_formatter(&|x| label(&percentiles, x, |p| format!("{} = {:.2} ms", p.0, p.1)))
        .draw()
        .map_err(draw_error)?;
    chart
        .draw_series(percentiles.iter().enumerate().map(|(i, p)| {
            let mut rect = Rectangle::new(
                [
                    (SegmentValue::Exact(i), 0.0),
                    (SegmentValue::Exact(i + 1), p.1),
                ],
                LATENCY.filled(),
            );
            rect.set_margin(0, 0, 30, 30);
            rect
        }))
        .map_err(draw_error)?;
    chart
        .draw_series(LineSeries::new(
            [
                (SegmentValue::Exact(0), LATENCY_TARGET_MS),
                (SegmentValue::Last, LATENCY_TARGET_MS),
            ],
            RED.stroke_width(2),
        ))
        .map_err(draw_error)?
        .label("target: p99 under 5 ms")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED.stroke_width(2)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(draw_error)?;
    Ok(())
}

fn draw_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the chart: {e}")
}
