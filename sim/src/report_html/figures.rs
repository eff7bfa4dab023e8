//! The report's figures, each an SVG document.

use super::svg::{tick_label, Scale, Svg};
use super::{RunData, BIN_MS, K_BUCKETS, TVIS_EDGES_MS};
use crate::engine::Side;
use crate::report::FaultLine;
use std::collections::BTreeSet;

const W: f64 = 860.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const PANEL_H: f64 = 130.0;
const GAP: f64 = 34.0;

/// A protocol's colour in figures that overlay protocols.
pub fn colour(i: usize) -> &'static str {
    [
        "#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#57606a", "#e16f24",
    ][i % 7]
}

/// Faults as bands: each fault in force from when it fired until the next (a heal is a
/// line), labelled.
fn bands(svg: &mut Svg, faults: &[FaultLine], x: &Scale, top: f64, h: f64, labels: bool) {
    for (i, f) in faults.iter().enumerate() {
        let a = f.at_ms / 1000.0;
        let name = f.action.split(':').next().unwrap_or("");
        if f.action.starts_with("heal") {
            svg.line(
                x.at(a),
                top,
                x.at(a),
                top + h,
                "stroke=\"#1a7f37\" stroke-dasharray=\"4 2\"",
            );
            if labels {
                svg.text(x.at(a) + 3.0, top + 11.0, "start", "fill=\"#1a7f37\"", name);
            }
            continue;
        }
        let b = faults.get(i + 1).map_or(x.hi, |n| n.at_ms / 1000.0);
        svg.rect(
            x.at(a),
            top,
            x.at(b) - x.at(a),
            h,
            "fill=\"#cf222e\" fill-opacity=\"0.10\"",
        );
        if labels {
            svg.text(x.at(a) + 3.0, top + 11.0, "start", "fill=\"#cf222e\"", name);
        }
    }
}

fn x_axis(svg: &mut Svg, x: &Scale, y: f64, unit: &str) {
    svg.line(x.from, y, x.to, y, "stroke=\"#24292f\"");
    for t in x.ticks(10) {
        svg.line(x.at(t), y, x.at(t), y + 4.0, "stroke=\"#24292f\"");
        svg.text(
            x.at(t),
            y + 15.0,
            "middle",
            "",
            &format!("{}{unit}", tick_label(t)),
        );
    }
}

fn y_axis(svg: &mut Svg, y: &Scale, n: usize, unit: &str) {
    for v in y.ticks(n) {
        svg.line(
            LEFT - 4.0,
            y.at(v),
            W - RIGHT,
            y.at(v),
            "stroke=\"#eaeef2\"",
        );
        svg.text(
            LEFT - 6.0,
            y.at(v) + 4.0,
            "end",
            "",
            &format!("{}{unit}", tick_label(v)),
        );
    }
}

/// Jepsen's latency-raw: per protocol, each operation of the first seed a point at its
/// invocation, its latency on a log axis, coloured by outcome; faults shaded.
pub fn latency(first: &[&RunData]) -> String {
    let h = GAP + first.len() as f64 * (PANEL_H + GAP) + 10.0;
    let mut svg = Svg::new(W, h, "latency over time, first seed");
    let end_s = first
        .iter()
        .map(|r| r.report.virtual_time_ms / 1000.0)
        .fold(1.0, f64::max);
    let max_ms = first
        .iter()
        .filter_map(|r| r.detail.as_ref())
        .flat_map(|d| d.ops.iter().map(|o| o.latency_ms))
        .fold(10.0, f64::max);
    legend_outcomes(&mut svg);
    for (i, r) in first.iter().enumerate() {
        let top = GAP + i as f64 * (PANEL_H + GAP);
        let x = Scale {
            lo: 0.0,
            hi: end_s,
            from: LEFT,
            to: W - RIGHT,
            log: false,
        };
        let y = Scale {
            lo: 0.1,
            hi: max_ms,
            from: top + PANEL_H,
            to: top,
            log: true,
        };
        svg.text(
            LEFT,
            top - 6.0,
            "start",
            "font-weight=\"bold\"",
            &r.protocol,
        );
        bands(&mut svg, &r.report.faults, &x, top, PANEL_H, true);
        y_axis(&mut svg, &y, 0, "ms");
        x_axis(&mut svg, &x, top + PANEL_H, "s");
        let Some(d) = &r.detail else { continue };
        for (outcome, fill) in [(0u8, "#1a7f37"), (2, "#bf8700"), (1, "#cf222e")] {
            // Points that land in the same 2-pixel cell are drawn once: the file stays
            // small, and a cell holding a thousand operations looks as one holding one
            // would (the availability figure gives the rates).
            let cells: BTreeSet<(i64, i64)> = d
                .ops
                .iter()
                .filter(|o| o.outcome == outcome)
                .map(|o| {
                    let cell = |v: f64| (v / 2.0).round() as i64;
                    (cell(x.at(o.at_s)), cell(y.at(o.latency_ms)))
                })
                .collect();
            let points: Vec<(f64, f64)> = cells
                .iter()
                .map(|&(a, b)| (a as f64 * 2.0, b as f64 * 2.0))
                .collect();
            svg.dots(&points, 2.0, fill);
        }
    }
    svg.finish()
}

fn legend_outcomes(svg: &mut Svg) {
    let items = [
        ("ok", "#1a7f37"),
        ("info (timed out)", "#bf8700"),
        ("fail", "#cf222e"),
    ];
    let mut x = W - RIGHT - 330.0;
    for (label, fill) in items {
        svg.rect(x, 8.0, 9.0, 9.0, &format!("fill=\"{fill}\""));
        svg.text(x + 13.0, 16.0, "start", "", label);
        x += 110.0;
    }
}

/// Jepsen's rate: ok operations per second over time, by the side of the partition the
/// operation was invoked on, averaged over the seeds; faults shaded (the first seed's).
pub fn availability(by_protocol: &[Vec<&RunData>]) -> String {
    let h = GAP + by_protocol.len() as f64 * (PANEL_H + GAP) + 10.0;
    let mut svg = Svg::new(W, h, "ok operations per second by side, mean over seeds");
    let sides = [
        (Side::Whole, "no fault", "#57606a"),
        (Side::Majority, "majority side", "#0969da"),
        (Side::Minority, "minority side", "#e16f24"),
        (Side::Down, "down node", "#8250df"),
    ];
    let mut lx = W - RIGHT - 420.0;
    for (_, label, c) in sides {
        svg.line(
            lx,
            12.0,
            lx + 16.0,
            12.0,
            &format!("stroke=\"{c}\" stroke-width=\"2\""),
        );
        svg.text(lx + 20.0, 16.0, "start", "", label);
        lx += 105.0;
    }
    let per_s = 1000.0 / BIN_MS as f64;
    let means: Vec<Vec<(Side, Vec<f64>)>> = by_protocol
        .iter()
        .map(|runs| {
            sides
                .iter()
                .filter_map(|(side, _, _)| {
                    let bins = runs
                        .iter()
                        .filter_map(|r| r.rate.get(side).map(Vec::len))
                        .max()?;
                    let mut sum = vec![0.0; bins];
                    for r in runs {
                        for (b, n) in r.rate.get(side).into_iter().flatten().enumerate() {
                            sum[b] += f64::from(*n) * per_s;
                        }
                    }
                    let n = runs.len().max(1) as f64;
                    Some((*side, sum.into_iter().map(|s| s / n).collect()))
                })
                .collect()
        })
        .collect();
    let max = means
        .iter()
        .flatten()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(1.0, f64::max);
    for (i, runs) in by_protocol.iter().enumerate() {
        let Some(first) = runs.first() else { continue };
        let top = GAP + i as f64 * (PANEL_H + GAP);
        let end_s = first.report.virtual_time_ms / 1000.0;
        let x = Scale {
            lo: 0.0,
            hi: end_s,
            from: LEFT,
            to: W - RIGHT,
            log: false,
        };
        let y = Scale {
            lo: 0.0,
            hi: max * 1.05,
            from: top + PANEL_H,
            to: top,
            log: false,
        };
        svg.text(
            LEFT,
            top - 6.0,
            "start",
            "font-weight=\"bold\"",
            &first.protocol,
        );
        bands(&mut svg, &first.report.faults, &x, top, PANEL_H, true);
        y_axis(&mut svg, &y, 4, "/s");
        x_axis(&mut svg, &x, top + PANEL_H, "s");
        for (side, values) in &means[i] {
            let c = sides.iter().find(|s| s.0 == *side).map_or("#000", |s| s.2);
            let bin_s = BIN_MS as f64 / 1000.0;
            let points: Vec<(f64, f64)> = values
                .iter()
                .enumerate()
                .flat_map(|(b, v)| {
                    let t = b as f64 * bin_s;
                    [(x.at(t), y.at(*v)), (x.at(t + bin_s), y.at(*v))]
                })
                .collect();
            svg.polyline(&points, &format!("stroke=\"{c}\" stroke-width=\"1.5\""));
        }
    }
    svg.finish()
}

/// Convergence over time: how many keys the running replicas disagree on, sampled every
/// [`BIN_MS`], mean over the seeds, one panel per protocol with the faults shaded (the
/// first seed's): divergence grows while a partition cuts replicas off from the writes
/// (or lets each side take its own) and falls as the protocol repairs it after the heal.
pub fn convergence(by_protocol: &[Vec<&RunData>]) -> String {
    let h = GAP + by_protocol.len() as f64 * (PANEL_H + GAP) + 10.0;
    let mut svg = Svg::new(W, h, "keys the replicas disagree on, mean over seeds");
    let means: Vec<Vec<f64>> = by_protocol
        .iter()
        .map(|runs| {
            let bins = runs.iter().map(|r| r.diverged.len()).max().unwrap_or(0);
            let mut sum = vec![0.0; bins];
            for r in runs {
                for (b, n) in r.diverged.iter().enumerate() {
                    sum[b] += f64::from(*n);
                }
            }
            let n = runs.len().max(1) as f64;
            sum.into_iter().map(|s| s / n).collect()
        })
        .collect();
    let max = means.iter().flatten().copied().fold(1.0, f64::max);
    for (i, runs) in by_protocol.iter().enumerate() {
        let Some(first) = runs.first() else { continue };
        let top = GAP + i as f64 * (PANEL_H + GAP);
        let end_s = first.report.virtual_time_ms / 1000.0;
        let x = Scale {
            lo: 0.0,
            hi: end_s,
            from: LEFT,
            to: W - RIGHT,
            log: false,
        };
        let y = Scale {
            lo: 0.0,
            hi: max * 1.05,
            from: top + PANEL_H,
            to: top,
            log: false,
        };
        svg.text(
            LEFT,
            top - 6.0,
            "start",
            "font-weight=\"bold\"",
            &first.protocol,
        );
        bands(&mut svg, &first.report.faults, &x, top, PANEL_H, true);
        y_axis(&mut svg, &y, 4, " keys");
        x_axis(&mut svg, &x, top + PANEL_H, "s");
        let bin_s = BIN_MS as f64 / 1000.0;
        let points: Vec<(f64, f64)> = means[i]
            .iter()
            .enumerate()
            .map(|(b, v)| (x.at((b as f64 * bin_s).min(end_s)), y.at(*v)))
            .collect();
        svg.polyline(
            &points,
            &format!("stroke=\"{}\" stroke-width=\"1.5\"", colour(i)),
        );
    }
    svg.finish()
}

/// PBS's t-visibility: the probability that a read invoked t after a write completed saw
/// it or newer, per protocol, pooled over the seeds.
pub fn t_visibility(by_protocol: &[Vec<&RunData>]) -> String {
    let h = 320.0;
    let mut svg = Svg::new(W, h, "t-visibility: P(read sees the write or newer)");
    let (top, bottom) = (40.0, h - 50.0);
    let x = Scale {
        lo: 0.5,
        hi: *TVIS_EDGES_MS.last().unwrap_or(&1000) as f64,
        from: LEFT,
        to: W - RIGHT - 120.0,
        log: true,
    };
    let y = Scale {
        lo: 0.0,
        hi: 100.0,
        from: bottom,
        to: top,
        log: false,
    };
    y_axis(&mut svg, &y, 5, "%");
    svg.line(x.from, bottom, x.to, bottom, "stroke=\"#24292f\"");
    for (i, e) in TVIS_EDGES_MS.iter().enumerate() {
        let v = if i == 0 { 0.5 } else { *e as f64 };
        svg.line(x.at(v), bottom, x.at(v), bottom + 4.0, "stroke=\"#24292f\"");
        svg.text(x.at(v), bottom + 15.0, "middle", "", &format!("{e}ms"));
    }
    svg.text(
        (x.from + x.to) / 2.0,
        h - 12.0,
        "middle",
        "",
        "t: time from a write's completion to a read's invocation (bucket start)",
    );
    for (i, runs) in by_protocol.iter().enumerate() {
        let Some(first) = runs.first() else { continue };
        let mut pooled = vec![(0u64, 0u64); TVIS_EDGES_MS.len() - 1];
        for r in runs {
            for (b, (f, n)) in r.tvis.iter().enumerate() {
                pooled[b].0 += f;
                pooled[b].1 += n;
            }
        }
        let points: Vec<(f64, f64)> = pooled
            .iter()
            .enumerate()
            .filter(|(_, (_, n))| *n > 0)
            .map(|(b, (f, n))| {
                let lo = if b == 0 { 0.5 } else { TVIS_EDGES_MS[b] as f64 };
                (x.at(lo), y.at(100.0 * *f as f64 / *n as f64))
            })
            .collect();
        let c = colour(i);
        svg.polyline(&points, &format!("stroke=\"{c}\" stroke-width=\"2\""));
        svg.dots(&points, 4.0, c);
        let ly = top + 16.0 * i as f64;
        svg.line(
            W - RIGHT - 110.0,
            ly,
            W - RIGHT - 94.0,
            ly,
            &format!("stroke=\"{c}\" stroke-width=\"2\""),
        );
        svg.text(W - RIGHT - 90.0, ly + 4.0, "start", "", &first.protocol);
    }
    svg.finish()
}

/// k-staleness: for each protocol, the share of reads that were k completed writes behind,
/// pooled over the seeds, as one stacked bar.
pub fn k_staleness(by_protocol: &[Vec<&RunData>]) -> String {
    let bar_h = 22.0;
    let h = 60.0 + by_protocol.len() as f64 * (bar_h + 10.0) + 20.0;
    let mut svg = Svg::new(W, h, "k-staleness: versions behind per read");
    let colours = [
        "#1a7f37", "#fff8c5", "#ffd8b5", "#ffb3b3", "#ff8182", "#a40e26",
    ];
    let x = Scale {
        lo: 0.0,
        hi: 100.0,
        from: LEFT + 40.0,
        to: W - RIGHT - 190.0,
        log: false,
    };
    let mut lx = x.from;
    for (label, c) in K_BUCKETS.iter().zip(colours) {
        svg.rect(
            lx,
            8.0,
            10.0,
            10.0,
            &format!("fill=\"{c}\" stroke=\"#57606a\""),
        );
        let text = format!("{label} behind");
        svg.text(lx + 14.0, 17.0, "start", "", &text);
        lx += 95.0;
    }
    for (i, runs) in by_protocol.iter().enumerate() {
        let Some(first) = runs.first() else { continue };
        let mut pooled = vec![0u64; K_BUCKETS.len()];
        for r in runs {
            for (b, n) in r.kstale.iter().enumerate() {
                pooled[b] += n;
            }
        }
        let total = pooled.iter().sum::<u64>().max(1) as f64;
        let top = 40.0 + i as f64 * (bar_h + 10.0);
        svg.text(
            x.from - 6.0,
            top + 15.0,
            "end",
            "font-weight=\"bold\"",
            &first.protocol,
        );
        let mut acc = 0.0;
        for (b, n) in pooled.iter().enumerate() {
            let share = 100.0 * *n as f64 / total;
            let style = format!(
                "fill=\"{}\" stroke=\"#57606a\" stroke-width=\"0.5\"",
                colours[b]
            );
            svg.rect(x.at(acc), top, x.at(acc + share) - x.at(acc), bar_h, &style);
            acc += share;
        }
        let fresh = 100.0 * pooled[0] as f64 / total;
        let note = format!("{fresh:.1}% fresh of {} reads", total as u64);
        svg.text(x.to + 6.0, top + 15.0, "start", "fill=\"#24292f\"", &note);
    }
    let axis_y = 40.0 + by_protocol.len() as f64 * (bar_h + 10.0);
    x_axis(&mut svg, &x, axis_y, "%");
    svg.finish()
}
