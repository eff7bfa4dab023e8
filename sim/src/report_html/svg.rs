//! A small SVG writer: enough for axes, bands, points, lines and labels, with every number
//! printed at a fixed precision so that the same figure is the same bytes.
//!
//! Written by hand rather than through a plotting crate: the figures are a few primitives,
//! the output stays small (points that land on the same pixel are written once) and crisp
//! (no rasterised text), and nothing in it depends on fonts found at build time.

use std::fmt::Write as _;

/// Escapes text for SVG and HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A figure being drawn; [`Svg::finish`] closes it.
pub struct Svg {
    out: String,
}

impl Svg {
    /// A figure `width` x `height` user units, drawn at the width of its container (at most
    /// its own width), with a title for screen readers and tooltips.
    pub fn new(width: f64, height: f64, title: &str) -> Svg {
        let mut out = String::new();
        let _ = write!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width:.0} {height:.0}\" \
             width=\"100%\" style=\"max-width:{width:.0}px\" role=\"img\" \
             font-family=\"sans-serif\" font-size=\"11\">\n<title>{}</title>\n",
            esc(title)
        );
        Svg { out }
    }

    /// A rectangle.
    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, style: &str) {
        let _ = writeln!(
            self.out,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" {style}/>",
            w.max(0.0),
            h.max(0.0)
        );
    }

    /// A line.
    pub fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, style: &str) {
        let _ = writeln!(
            self.out,
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" {style}/>"
        );
    }

    /// Text at `(x, y)`; `anchor` is `start`, `middle` or `end`.
    pub fn text(&mut self, x: f64, y: f64, anchor: &str, style: &str, text: &str) {
        let _ = writeln!(
            self.out,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\" {style}>{}</text>",
            esc(text)
        );
    }

    /// A polyline through `points`.
    pub fn polyline(&mut self, points: &[(f64, f64)], style: &str) {
        if points.is_empty() {
            return;
        }
        self.out.push_str("<polyline fill=\"none\" points=\"");
        for (i, (x, y)) in points.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            let _ = write!(self.out, "{sep}{x:.1},{y:.1}");
        }
        let _ = writeln!(self.out, "\" {style}/>");
    }

    /// A group of small squares centred on `points` (one element: small files).
    pub fn dots(&mut self, points: &[(f64, f64)], size: f64, fill: &str) {
        if points.is_empty() {
            return;
        }
        let _ = write!(self.out, "<path fill=\"{fill}\" d=\"");
        for (x, y) in points {
            let _ = write!(
                self.out,
                "M{} {}h{s}v{s}h-{s}z",
                num(x - size / 2.0),
                num(y - size / 2.0),
                s = num(size)
            );
        }
        self.out.push_str("\"/>\n");
    }

    /// Raw SVG markup (already escaped).
    pub fn raw(&mut self, markup: &str) {
        self.out.push_str(markup);
    }

    /// The finished document.
    pub fn finish(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }
}

/// A number at one decimal, without a trailing `.0`: path data stays short.
fn num(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map_or(s.clone(), str::to_string)
}

/// A linear or logarithmic scale from data to pixels.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// Data domain.
    pub lo: f64,
    /// Data domain.
    pub hi: f64,
    /// Pixel range (may run backwards, for a y axis).
    pub from: f64,
    /// Pixel range.
    pub to: f64,
    /// Logarithmic (base 10; the domain must be positive).
    pub log: bool,
}

impl Scale {
    /// Where `v` lands, clamped to the range.
    pub fn at(&self, v: f64) -> f64 {
        let (lo, hi, v) = if self.log {
            (self.lo.log10(), self.hi.log10(), v.max(self.lo).log10())
        } else {
            (self.lo, self.hi, v)
        };
        let f = if hi > lo { (v - lo) / (hi - lo) } else { 0.0 };
        self.from + f.clamp(0.0, 1.0) * (self.to - self.from)
    }

    /// Tick values: powers of ten on a log scale (and 2, 5 between when `n` > 0), else
    /// about `n` round numbers.
    pub fn ticks(&self, n: usize) -> Vec<f64> {
        if self.log {
            let mut out = Vec::new();
            let mut p = 10f64.powf(self.lo.log10().floor());
            let steps: &[f64] = if n > 0 { &[1.0, 2.0, 5.0] } else { &[1.0] };
            while p <= self.hi * 1.0001 {
                for &m in steps {
                    let v = p * m;
                    if v >= self.lo * 0.9999 && v <= self.hi * 1.0001 {
                        out.push(v);
                    }
                }
                p *= 10.0;
            }
            return out;
        }
        let span = (self.hi - self.lo).max(1e-9);
        let raw = span / n.max(1) as f64;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * mag)
            .find(|s| *s >= raw)
            .unwrap_or(10.0 * mag);
        let mut out = Vec::new();
        let mut v = (self.lo / step).ceil() * step;
        while v <= self.hi + step * 1e-6 {
            out.push(v);
            v += step;
        }
        out
    }
}

/// A tick's label: no needless decimals.
pub fn tick_label(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else if (v * 10.0 - (v * 10.0).round()).abs() < 1e-9 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_map_and_clamp() {
        let s = Scale {
            lo: 0.0,
            hi: 10.0,
            from: 100.0,
            to: 0.0,
            log: false,
        };
        assert_eq!(s.at(0.0), 100.0);
        assert_eq!(s.at(5.0), 50.0);
        assert_eq!(s.at(20.0), 0.0);
        assert_eq!(s.ticks(5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let l = Scale {
            lo: 1.0,
            hi: 100.0,
            from: 0.0,
            to: 200.0,
            log: true,
        };
        assert_eq!(l.at(10.0), 100.0);
        assert_eq!(l.ticks(1), vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]);
        assert_eq!(l.ticks(0), vec![1.0, 10.0, 100.0]);
    }

    #[test]
    fn text_is_escaped() {
        let mut svg = Svg::new(10.0, 10.0, "a<b");
        svg.text(1.0, 2.0, "start", "", "x & y");
        let out = svg.finish();
        assert!(out.contains("a&lt;b") && out.contains("x &amp; y"));
    }
}
