//! A self-contained HTML page (inline SVG, no script, no external file) drawing
//! counterexamples the way Porcupine's visualisation and Jepsen's timeline.html do: one lane
//! per process, each operation a bar from its invocation to its completion, the longest
//! linearizable prefix the search found shaded with its order, the operation that cannot fit
//! after it marked. Bars are placed by the rank of their endpoints, not by time, so short and
//! long gaps take the same room and the order of events is what the eye reads.

use super::counterexample::{columns, Counterexample};
use std::fmt::Write as _;

/// One history's part of the page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// A heading (the file's name).
    pub title: String,
    /// `linearizable`, `not-linearizable` or `unknown`.
    pub verdict: String,
    /// The counterexample, when there is one.
    pub counterexample: Option<Counterexample>,
}

const LANE_PX: usize = 46;
const COL_PX: usize = 34;
const LEFT_PX: usize = 70;

/// Escapes text for HTML and SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page: deterministic bytes for the same sections.
pub fn html(sections: &[Section]) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
         <title>simkv check</title>\n<style>\n\
         body{font-family:sans-serif;margin:2em;color:#222}\n\
         .ok{color:#1a7f37}.bad{color:#cf222e}.unknown{color:#9a6700}\n\
         svg text{font-family:monospace;font-size:12px}\n\
         pre{background:#f6f8fa;padding:1em;overflow:auto}\n\
         .why{background:#fff8c5;padding:.5em 1em;border-left:4px solid #bf8700}\n\
         .zoom .cx{overflow:auto;border:1px solid #d0d7de}\n\
         .zoom input.x2:checked~.cx svg{width:200%}\n\
         .zoom input.x4:checked~.cx svg{width:400%}\n\
         </style></head><body>\n<h1>simkv check</h1>\n",
    );
    out.push_str(
        "<p>Each lane is a process; each bar an operation, from invocation to completion \
         (a bar running off the right edge never completed). Green bars, numbered, are the \
         longest linearization the search found; the red bar is the operation that cannot be \
         linearized after them.</p>\n",
    );
    for (n, s) in sections.iter().enumerate() {
        let class = match s.verdict.as_str() {
            "linearizable" => "ok",
            "not-linearizable" => "bad",
            _ => "unknown",
        };
        let _ = writeln!(
            out,
            "<h2>{} <span class=\"{class}\">{}</span></h2>",
            esc(&s.title),
            esc(&s.verdict)
        );
        if let Some(cx) = &s.counterexample {
            if let Some(why) = why(cx) {
                let _ = writeln!(out, "<p class=\"why\">{}</p>", esc(&why));
            }
            let _ = write!(
                out,
                "<div class=\"zoom\">zoom: <input type=\"radio\" name=\"z{n}\" id=\"z{n}a\" \
                 class=\"x1\" checked><label for=\"z{n}a\">fit</label> <input type=\"radio\" \
                 name=\"z{n}\" id=\"z{n}b\" class=\"x2\"><label for=\"z{n}b\">2x</label> \
                 <input type=\"radio\" name=\"z{n}\" id=\"z{n}c\" class=\"x4\">\
                 <label for=\"z{n}c\">4x</label>\n<div class=\"cx\">\n"
            );
            out.push_str(&svg(cx));
            out.push_str("</div></div>\n");
            let _ = writeln!(out, "<pre>{}</pre>", esc(&cx.render()));
        }
    }
    out.push_str("</body></html>\n");
    out
}

/// Why the blocked operation cannot fit, in a sentence.
fn why(cx: &Counterexample) -> Option<String> {
    let blocked = &cx.ops[cx.blocked?];
    let n = cx.linearized.len();
    let before = match n {
        0 => "before any other operation".to_string(),
        1 => "after the 1 operation linearized before it".to_string(),
        n => format!("after the {n} operations linearized before it"),
    };
    let state = cx.state_before_blocked.as_deref()?;
    let read = blocked.op.starts_with("read") || blocked.op.starts_with("get");
    let should = if read {
        ", which is what the read should have returned".to_string()
    } else {
        String::new()
    };
    Some(format!(
        "Why: {} by {} cannot be linearized {before}: the key then holds {state}{should}, \
         and the search found no other order of these operations in which it fits.",
        blocked.op, blocked.process
    ))
}

/// The lanes, in order of first appearance in the counterexample.
fn lanes(cx: &Counterexample) -> Vec<&str> {
    let mut lanes: Vec<&str> = Vec::new();
    for o in &cx.ops {
        if !lanes.contains(&o.process.as_str()) {
            lanes.push(&o.process);
        }
    }
    lanes
}

fn svg(cx: &Counterexample) -> String {
    let cols = columns(cx);
    let lanes = lanes(cx);
    let last = cols.iter().copied().max().unwrap_or(0);
    let bars = LEFT_PX + (last + 2) * COL_PX;
    // Wide enough for every label too (12px monospace: about 7.3px a character), so that
    // the blocked operation's label is never clipped at the edge.
    let labels = cx
        .ops
        .iter()
        .enumerate()
        .map(|(i, o)| LEFT_PX + cols[2 * i] * COL_PX + 3 + (o.op.len() + 14) * 73 / 10)
        .max()
        .unwrap_or(0);
    let width = bars.max(labels) + 8;
    let height = lanes.len() * LANE_PX + 30;
    let mut out = String::new();
    // It fits the window (width 100% of its box, scaled by the viewBox) and zooms with the
    // radio buttons above it.
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" \
         viewBox=\"0 0 {width} {height}\" preserveAspectRatio=\"xMinYMin meet\">"
    );
    for (i, lane) in lanes.iter().enumerate() {
        let y = 20 + i * LANE_PX;
        let _ = writeln!(
            out,
            "<text x=\"8\" y=\"{}\">{}</text><line x1=\"{LEFT_PX}\" y1=\"{}\" x2=\"{width}\" \
             y2=\"{}\" stroke=\"#eee\"/>",
            y + 22,
            esc(lane),
            y + LANE_PX - 4,
            y + LANE_PX - 4
        );
    }
    for (i, o) in cx.ops.iter().enumerate() {
        let lane = lanes.iter().position(|l| *l == o.process).unwrap_or(0);
        let y = 20 + lane * LANE_PX + 14;
        let x1 = LEFT_PX + cols[2 * i] * COL_PX;
        let x2 = if o.ret.is_some() {
            LEFT_PX + cols[2 * i + 1] * COL_PX
        } else {
            bars - 4
        };
        let order = cx.linearized.iter().position(|&x| x == i);
        let (fill, mark) = match (order, cx.blocked == Some(i)) {
            (Some(n), _) => ("#aceebb", format!("#{} ", n + 1)),
            (None, true) => ("#ffb3b3", "cannot fit: ".to_string()),
            (None, false) => ("#d8dee4", String::new()),
        };
        let dash = if o.ret.is_none() {
            " stroke-dasharray=\"4 3\""
        } else {
            ""
        };
        let ret = o.ret.map_or("never".to_string(), |r| r.to_string());
        let tip = format!(
            "{} {} {}..{} {} {}",
            o.process, cx.position, o.call, ret, o.outcome, o.op
        );
        let _ = writeln!(
            out,
            "<g><title>{}</title><rect x=\"{x1}\" y=\"{y}\" width=\"{}\" height=\"16\" rx=\"3\" \
             fill=\"{fill}\" stroke=\"#57606a\"{dash}/><text x=\"{}\" y=\"{}\">{}{}</text></g>",
            esc(&tip),
            x2.saturating_sub(x1).max(4),
            x1 + 3,
            y - 3,
            esc(&mark),
            esc(&o.op)
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lincheck::CounterOp;

    #[test]
    fn page_is_self_contained_and_marks_the_blocked_operation() {
        let op = |p: &str, call, ret, what: &str| CounterOp {
            process: p.into(),
            call,
            ret,
            op: what.into(),
            outcome: if ret.is_some() { "ok" } else { "info" },
        };
        let cx = Counterexample {
            key: "3".into(),
            ops: vec![
                op("c1", 0, Some(1), "write <a>"),
                op("c2", 2, None, "write b"),
                op("c3", 3, Some(4), "read a"),
            ],
            linearized: vec![0, 1],
            blocked: Some(2),
            minimal: true,
            shrunk: true,
            shrunk_from: 9,
            position: "event",
            state_before_blocked: Some("b".into()),
        };
        let page = html(&[Section {
            title: "h.json".into(),
            verdict: "not-linearizable".into(),
            counterexample: Some(cx),
        }]);
        assert!(page.contains("cannot fit: read a"));
        assert!(page.contains("Why: read a by c3"), "{page}");
        assert!(page.contains("width=\"100%\""));
        assert!(page.contains("write &lt;a&gt;"));
        assert!(page.contains("stroke-dasharray"));
        assert!(
            !page.contains("http://") || page.matches("http://").count() == 1,
            "only the SVG namespace"
        );
        assert!(!page.contains("<script"));
    }
}
