//! Space-time (Lamport) diagrams, as Maelstrom draws them: one vertical line per node, time
//! running down, each message an arrow from where it was sent to where it arrived, messages
//! a link lost marked with a cross at the sender, faults shaded from the moment they fire,
//! and the clients' requests and replies on the left.
//!
//! The data comes from the run's trace ([`DiagramTrace`]), with `send` lines switched on
//! ([`Trace::with_sends`]) and only the lines inside the window kept, so a long run costs
//! no memory beyond its window.

use super::svg::{esc, Svg};
use crate::report::RunReport;
use crate::trace::Trace;
use serde_json::Value as Json;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// A stretch of virtual time, microseconds, inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// From.
    pub from_us: u64,
    /// To.
    pub to_us: u64,
}

impl Window {
    /// Parses `FROM..TO` with durations (`10s..10.05s`, `9990ms..10040ms`).
    pub fn parse(text: &str) -> Result<Window, String> {
        let bad =
            || format!("--diagram window {text:?}: expected FROM..TO, e.g. 10s..10.05s, FROM < TO");
        let (a, b) = text.split_once("..").ok_or_else(bad)?;
        let (from_us, to_us) = (
            duration_us(a).ok_or_else(bad)?,
            duration_us(b).ok_or_else(bad)?,
        );
        if from_us >= to_us {
            return Err(bad());
        }
        Ok(Window { from_us, to_us })
    }

    fn contains(&self, t: u64) -> bool {
        t >= self.from_us && t <= self.to_us
    }
}

/// `12`, `12us`, `3.5ms`, `10s`: microseconds.
fn duration_us(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1e6)
    } else {
        (s, 1e6)
    };
    let v: f64 = num.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| (v * scale).round() as u64)
}

/// The trace lines a diagram draws, captured while the run goes.
#[derive(Clone)]
pub struct DiagramTrace {
    lines: Arc<Mutex<Vec<Json>>>,
}

impl DiagramTrace {
    /// A trace for the run, and the handle that reads what it captured in `window`.
    pub fn new(window: Window) -> (Trace, DiagramTrace) {
        let captured = DiagramTrace {
            lines: Arc::new(Mutex::new(Vec::new())),
        };
        let writer = WindowWriter {
            window,
            buf: Vec::new(),
            keep: captured.clone(),
        };
        (Trace::new(Box::new(writer)).with_sends(), captured)
    }

    /// The lines captured, in trace order.
    pub fn lines(&self) -> Vec<Json> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// Splits the trace into lines and keeps those the window shows.
struct WindowWriter {
    window: Window,
    buf: Vec<u8>,
    keep: DiagramTrace,
}

impl WindowWriter {
    fn take_line(&mut self, line: &[u8]) {
        // Most lines are deliveries, timers and client wakes, which a diagram does not draw
        // (a delivery is drawn from its send line): skip them without parsing.
        const WANTED: [&[u8]; 5] = [
            b"\"ev\":\"send\"",
            b"\"ev\":\"drop\"",
            b"\"ev\":\"request\"",
            b"\"ev\":\"reply\"",
            b"\"ev\":\"role\"",
        ];
        let head = &line[..line.len().min(48)];
        if !WANTED
            .iter()
            .any(|w| head.windows(w.len()).any(|x| x == *w))
        {
            return;
        }
        let Ok(json) = serde_json::from_slice::<Json>(line) else {
            return;
        };
        let t = json["t"].as_u64().unwrap_or(0);
        let wanted = match json["ev"].as_str() {
            Some("send") => {
                t <= self.window.to_us && json["at"].as_u64().unwrap_or(0) >= self.window.from_us
            }
            Some("drop" | "request" | "reply" | "role") => self.window.contains(t),
            _ => false,
        };
        if wanted {
            if let Ok(mut lines) = self.keep.lines.lock() {
                lines.push(json);
            }
        }
    }
}

impl Write for WindowWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        for &b in data {
            if b == b'\n' {
                let line = std::mem::take(&mut self.buf);
                self.take_line(&line);
            } else {
                self.buf.push(b);
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const TOP: f64 = 60.0;
const PX_PER_MS: f64 = 14.0;
const CLIENTS_X: f64 = 120.0;
const FIRST_NODE_X: f64 = 220.0;
const NODE_GAP: f64 = 120.0;

/// Draws the window of a run: its trace lines (from [`DiagramTrace`]) and its faults.
pub fn spacetime(lines: &[Json], report: &RunReport, window: Window) -> String {
    let nodes = usize::from(report.nodes_count.max(1));
    let width = FIRST_NODE_X + NODE_GAP * (nodes as f64 - 1.0) + 200.0;
    let span_ms = (window.to_us - window.from_us) as f64 / 1000.0;
    let height = TOP + span_ms * PX_PER_MS + 30.0;
    let y = |t: u64| TOP + (t.saturating_sub(window.from_us) as f64 / 1000.0) * PX_PER_MS;
    let node_x = |name: &str| -> Option<f64> {
        let i: usize = name.strip_prefix('n')?.parse().ok()?;
        (i >= 1 && i <= nodes).then(|| FIRST_NODE_X + NODE_GAP * (i - 1) as f64)
    };
    let id = format!("arrow-{}", report.protocol);
    let title = format!(
        "{} seed {}: messages from {:.3}s to {:.3}s",
        report.protocol,
        report.seed,
        window.from_us as f64 / 1e6,
        window.to_us as f64 / 1e6
    );
    let mut svg = Svg::new(width, height, &title);
    svg.raw(&format!(
        "<defs><marker id=\"{id}\" viewBox=\"0 0 8 8\" refX=\"8\" refY=\"4\" markerWidth=\"6\" \
         markerHeight=\"6\" orient=\"auto\"><path d=\"M0 0L8 4L0 8z\" fill=\"#57606a\"/>\
         </marker></defs>\n"
    ));
    svg.text(
        8.0,
        16.0,
        "start",
        "font-weight=\"bold\" font-size=\"13\"",
        &title,
    );
    fault_bands(&mut svg, report, window, width, &y);
    // Time ticks every 5ms.
    let mut t = window.from_us.div_ceil(5000) * 5000;
    while t <= window.to_us {
        svg.line(60.0, y(t), width - 10.0, y(t), "stroke=\"#f0f0f0\"");
        svg.text(
            56.0,
            y(t) + 4.0,
            "end",
            "fill=\"#57606a\"",
            &format!("{:.3}s", t as f64 / 1e6),
        );
        t += 5000;
    }
    let bottom = height - 20.0;
    svg.line(
        CLIENTS_X,
        TOP,
        CLIENTS_X,
        bottom,
        "stroke=\"#8c959f\" stroke-dasharray=\"3 3\"",
    );
    svg.text(
        CLIENTS_X,
        TOP - 8.0,
        "middle",
        "font-weight=\"bold\"",
        "clients",
    );
    for i in 1..=nodes {
        let x = FIRST_NODE_X + NODE_GAP * (i - 1) as f64;
        svg.line(x, TOP, x, bottom, "stroke=\"#24292f\" stroke-width=\"1.5\"");
        svg.text(
            x,
            TOP - 8.0,
            "middle",
            "font-weight=\"bold\"",
            &format!("n{i}"),
        );
    }
    let clip = |t: u64| t.clamp(window.from_us, window.to_us);
    for l in lines {
        let t = l["t"].as_u64().unwrap_or(0);
        let s = |k: &str| l[k].as_str().unwrap_or("").to_string();
        match l["ev"].as_str() {
            Some("send") => {
                let (Some(x1), Some(x2)) = (node_x(&s("from")), node_x(&s("to"))) else {
                    continue;
                };
                let at = l["at"].as_u64().unwrap_or(t);
                svg.line(
                    x1,
                    y(clip(t)),
                    x2,
                    y(clip(at)),
                    &format!("stroke=\"#57606a\" stroke-width=\"0.8\" marker-end=\"url(#{id})\""),
                );
            }
            Some("drop") => {
                let Some(x) = node_x(&s("from")) else {
                    continue;
                };
                let (yy, d) = (y(t), 4.0);
                let cross = format!(
                    "<path d=\"M{:.1} {:.1}l{d:.1} {d:.1}m0 -{d:.1}l-{d:.1} {d:.1}\" \
                     stroke=\"#cf222e\" stroke-width=\"1.5\"><title>{}</title></path>\n",
                    x + 3.0,
                    yy - d / 2.0,
                    esc(&format!(
                        "{} -> {} dropped: {}",
                        s("from"),
                        s("to"),
                        s("reason")
                    ))
                );
                svg.raw(&cross);
            }
            Some("request") => {
                let Some(x) = node_x(&s("node")) else {
                    continue;
                };
                svg.line(
                    CLIENTS_X,
                    y(t),
                    x,
                    y(t),
                    "stroke=\"#0969da\" stroke-width=\"0.8\"",
                );
                svg.text(
                    CLIENTS_X - 4.0,
                    y(t) + 3.0,
                    "end",
                    "fill=\"#0969da\"",
                    &s("request"),
                );
            }
            Some("reply") => {
                let Some(x) = node_x(&s("node")) else {
                    continue;
                };
                let style = "stroke=\"#1a7f37\" stroke-width=\"0.8\" stroke-dasharray=\"2 2\"";
                svg.line(x, y(t), CLIENTS_X, y(t), style);
            }
            Some("role") => {
                let Some(x) = node_x(&s("node")) else {
                    continue;
                };
                let role = l["role"].as_str().unwrap_or("crashed");
                let label = format!("{role} t{}", l["term"].as_u64().unwrap_or(0));
                svg.text(x + 4.0, y(t) - 2.0, "start", "fill=\"#8250df\"", &label);
            }
            _ => {}
        }
    }
    legend(&mut svg, height);
    svg.finish()
}

/// Each fault in force in the window, shaded from when it fired to the next fault.
fn fault_bands(
    svg: &mut Svg,
    report: &RunReport,
    window: Window,
    width: f64,
    y: &dyn Fn(u64) -> f64,
) {
    let faults: Vec<(u64, &str)> = report
        .faults
        .iter()
        .map(|f| ((f.at_ms * 1000.0).round() as u64, f.action.as_str()))
        .collect();
    for (i, (at, action)) in faults.iter().enumerate() {
        let until = faults.get(i + 1).map_or(u64::MAX, |f| f.0);
        if action.starts_with("heal") || until < window.from_us || *at > window.to_us {
            if window.contains(*at) {
                svg.line(60.0, y(*at), width - 10.0, y(*at), "stroke=\"#1a7f37\"");
                svg.text(
                    width - 12.0,
                    y(*at) - 3.0,
                    "end",
                    "fill=\"#1a7f37\"",
                    action,
                );
            }
            continue;
        }
        let (a, b) = ((*at).max(window.from_us), until.min(window.to_us));
        svg.rect(
            60.0,
            y(a),
            width - 70.0,
            y(b) - y(a),
            "fill=\"#cf222e\" fill-opacity=\"0.07\"",
        );
        svg.text(width - 12.0, y(a) + 12.0, "end", "fill=\"#cf222e\"", action);
    }
}

fn legend(svg: &mut Svg, height: f64) {
    let y = height - 6.0;
    svg.text(
        8.0,
        y,
        "start",
        "fill=\"#57606a\"",
        "arrows: messages (sent -> arrived); red x: lost at the sender; blue: a client's \
         request reaching a node; green dashes: its reply; shaded: a fault in force",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_durations() {
        assert_eq!(
            Window::parse("10s..10.05s"),
            Ok(Window {
                from_us: 10_000_000,
                to_us: 10_050_000
            })
        );
        assert_eq!(
            Window::parse("9990ms..10040ms").map(|w| w.to_us),
            Ok(10_040_000)
        );
        assert!(Window::parse("2s..1s").is_err());
        assert!(Window::parse("x..1s").is_err());
        assert!(Window::parse("1s").is_err());
    }
}
