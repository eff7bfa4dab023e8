//! The report's text: the table across seeds, the conclusions drawn from it, the Markdown
//! summary and the HTML page around the figures.

use super::stats::{fmt_mean, fmt_spread, mean_ci, spread, MeanCi};
use super::svg::esc;
use super::{diagram_window, figures, Plan, RunData};
use crate::checks::Verdict;
use crate::engine::Side;
use crate::lincheck::explain;
use crate::report::RunVerdict;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One protocol's numbers across seeds.
struct Row {
    protocol: String,
    seeds: usize,
    majority: Option<MeanCi>,
    minority: Option<MeanCi>,
    whole: Option<MeanCi>,
    stale_pct: Option<MeanCi>,
    stale_total: u64,
    lost: Vec<f64>,
    diverged: Vec<f64>,
    converged_ms: Vec<f64>,
    never_converged: usize,
    p50: Vec<f64>,
    p99: Vec<f64>,
    msgs: Option<MeanCi>,
    kept: usize,
    broken: BTreeMap<String, usize>,
}

fn side_pct(r: &RunData, side: Side) -> Option<f64> {
    let c = r.report.measures.by_side.get(&side)?;
    (c.invoked > 0).then(|| 100.0 * c.ok as f64 / c.invoked as f64)
}

fn row(runs: &[&RunData]) -> Row {
    let col = |f: &dyn Fn(&RunData) -> Option<f64>| -> Vec<f64> {
        runs.iter().filter_map(|r| f(r)).collect()
    };
    let mut broken = BTreeMap::new();
    for r in runs {
        for c in &r.report.checks {
            if c.promised && matches!(c.verdict, Verdict::Fail | Verdict::Unknown) {
                *broken.entry(c.name.as_str().to_string()).or_insert(0) += 1;
            }
        }
    }
    let m = |r: &RunData| r.report.measures.clone();
    Row {
        protocol: runs.first().map_or(String::new(), |r| r.protocol.clone()),
        seeds: runs.len(),
        majority: mean_ci(&col(&|r| side_pct(r, Side::Majority))),
        minority: mean_ci(&col(&|r| side_pct(r, Side::Minority))),
        whole: mean_ci(&col(&|r| side_pct(r, Side::Whole))),
        stale_pct: mean_ci(&col(&|r| {
            let m = m(r);
            (m.reads > 0).then(|| 100.0 * m.stale_reads as f64 / m.reads as f64)
        })),
        stale_total: runs.iter().map(|r| r.report.measures.stale_reads).sum(),
        lost: col(&|r| Some(r.report.measures.lost_acknowledged_writes as f64)),
        diverged: col(&|r| Some(r.report.measures.diverged_keys_at_heal as f64)),
        converged_ms: col(&|r| r.report.measures.converged_after_stop_ms),
        never_converged: runs
            .iter()
            .filter(|r| r.report.measures.converged_after_stop_ms.is_none())
            .count(),
        p50: col(&|r| Some(r.report.latency_ms.p50)),
        p99: col(&|r| Some(r.report.latency_ms.p99)),
        msgs: mean_ci(&col(&|r| Some(r.report.measures.messages_per_op))),
        kept: runs
            .iter()
            .filter(|r| r.report.verdict == RunVerdict::Kept)
            .count(),
        broken,
    }
}

fn rows(runs: &[&[RunData]]) -> Vec<Row> {
    runs.iter()
        .map(|g| row(&g.iter().collect::<Vec<_>>()))
        .collect()
}

/// Runs grouped by protocol, in plan order (runs arrive sorted by protocol, then seed).
fn groups<'a>(plan: &Plan, runs: &'a [RunData]) -> Vec<&'a [RunData]> {
    let per = (plan.seeds.1 - plan.seeds.0 + 1) as usize;
    runs.chunks(per.max(1)).collect()
}

const HEADER: [&str; 13] = [
    "protocol",
    "majority side",
    "minority side",
    "no fault",
    "stale reads",
    "lost acked writes",
    "keys diverged at heal",
    "converged after stop",
    "p50 latency",
    "p99 latency",
    "msgs/op",
    "promises kept",
    "",
];

fn cells(r: &Row) -> Vec<String> {
    let converged = if r.never_converged > 0 {
        format!(
            "{} (never in {})",
            fmt_spread(spread(&r.converged_ms), 1, "ms"),
            r.never_converged
        )
    } else {
        fmt_spread(spread(&r.converged_ms), 1, "ms")
    };
    let promises = if r.broken.is_empty() {
        format!("{}/{} seeds", r.kept, r.seeds)
    } else {
        let what: Vec<String> = r
            .broken
            .iter()
            .map(|(k, n)| format!("{k} in {n}"))
            .collect();
        format!("{}/{} seeds; broken: {}", r.kept, r.seeds, what.join(", "))
    };
    vec![
        r.protocol.clone(),
        fmt_mean(r.majority, 1, "%"),
        fmt_mean(r.minority, 1, "%"),
        fmt_mean(r.whole, 1, "%"),
        fmt_mean(r.stale_pct, 1, "%"),
        fmt_spread(spread(&r.lost), 0, ""),
        fmt_spread(spread(&r.diverged), 0, ""),
        converged,
        fmt_spread(spread(&r.p50), 2, "ms"),
        fmt_spread(spread(&r.p99), 2, "ms"),
        fmt_mean(r.msgs, 2, ""),
        promises,
    ]
}

fn list(names: &[String]) -> String {
    match names.len() {
        0 => String::new(),
        1 => names[0].clone(),
        n => format!("{} and {}", names[..n - 1].join(", "), names[n - 1]),
    }
}

fn pct(m: Option<MeanCi>) -> String {
    m.map_or("-".into(), |m| format!("{:.1}%", m.mean))
}

/// Two or three sentences a reader should take away, computed from the rows.
fn conclusions(rows: &[Row], seeds: usize) -> Vec<String> {
    let mut out = Vec::new();
    let has_minority = rows.iter().any(|r| r.minority.is_some());
    if !has_minority {
        out.push(
            "No operation was invoked on the minority side of a partition, so the table \
                  shows no availability trade-off."
                .to_string(),
        );
    }
    let available: Vec<&Row> = rows
        .iter()
        .filter(|r| r.minority.is_some_and(|m| m.mean >= 90.0))
        .collect();
    let consistent: Vec<&Row> = rows
        .iter()
        .filter(|r| r.stale_total == 0 && r.lost.iter().all(|l| *l == 0.0))
        .collect();
    if has_minority && !available.is_empty() {
        let what: Vec<String> = available
            .iter()
            .map(|r| {
                let stale = r.stale_pct.map_or(0.0, |m| m.mean);
                let lost = spread(&r.lost).map_or(0.0, |s| s.p50);
                if stale > 0.0 || lost > 0.0 {
                    format!(
                        "{} ({} ok, but {stale:.1}% of reads stale and {lost:.0} acknowledged \
                         writes lost per seed, median)",
                        r.protocol,
                        pct(r.minority)
                    )
                } else {
                    format!("{} ({} ok)", r.protocol, pct(r.minority))
                }
            })
            .collect();
        out.push(format!(
            "Available: {} stayed available on the minority side of the partition.",
            list(&what)
        ));
    }
    if !consistent.is_empty() {
        let what: Vec<String> = consistent
            .iter()
            .map(|r| format!("{} ({} on the minority side)", r.protocol, pct(r.minority)))
            .collect();
        out.push(format!(
            "Consistent: {} served no stale read and lost no acknowledged write in any of the \
             {seeds} seeds, and paid with availability where the partition cut them off.",
            list(&what)
        ));
    }
    let weak_majority: Vec<String> = rows
        .iter()
        .filter(|r| r.majority.is_some_and(|m| m.mean < 90.0))
        .map(|r| format!("{} ({} ok)", r.protocol, pct(r.majority)))
        .collect();
    if !weak_majority.is_empty() {
        out.push(format!(
            "Even the majority side lost availability with {}.",
            list(&weak_majority)
        ));
    }
    out
}

/// The Markdown summary: conclusions, how it was made, the table.
pub fn summary(plan: &Plan, runs: &[RunData]) -> String {
    let groups = groups(plan, runs);
    let rows = rows(&groups);
    let seeds = (plan.seeds.1 - plan.seeds.0 + 1) as usize;
    let mut out = String::new();
    let first = runs.first().map(|r| &r.report);
    let title = first.map_or(String::new(), |r| {
        format!("{}: {}", r.scenario, r.description)
    });
    let _ = writeln!(out, "# {title}\n");
    for c in conclusions(&rows, seeds) {
        let _ = writeln!(out, "{c}");
    }
    let _ = writeln!(
        out,
        "\nSeeds {}..={} ({seeds} runs per protocol). Made by:\n\n    {}\n",
        plan.seeds.0,
        plan.seeds.1,
        plan.command()
    );
    out.push_str(
        "Availability is ok / invoked for operations invoked on that side of a partition \
         (majority, minority) or with no fault in force; stale reads are % of reads, msgs/op \
         node-to-node messages per invoked operation: each a mean over the seeds ± the half \
         width of its 95% interval. Counts and times, which are skewed, are the median \
         [5th–95th percentile] over the seeds.\n\n",
    );
    let _ = writeln!(out, "| {} |", HEADER[..12].join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(12));
    for r in &rows {
        let _ = writeln!(out, "| {} |", cells(r).join(" | "));
    }
    out
}

const CSS: &str = "body{font-family:sans-serif;margin:1.5em auto;max-width:1100px;\
color:#24292f;padding:0 1em}\ntable{border-collapse:collapse;font-size:13px}\n\
td,th{border:1px solid #d0d7de;padding:3px 6px;text-align:right}\n\
td:first-child,th:first-child{text-align:left;font-weight:bold}\n\
th{background:#f6f8fa}\n.conclusions{font-size:16px;background:#ddf4ff;padding:.6em 1em;\
border-left:4px solid #0969da}\ncode,pre{background:#f6f8fa;padding:2px 4px}\n\
figure{margin:1em 0}\nfigcaption{color:#57606a;font-size:13px}\n\
img.diagram{width:100%;border:1px solid #d0d7de}\n";

fn table_html(rows: &[Row], links: &BTreeMap<String, String>) -> String {
    let mut out = String::from("<table>\n<tr>");
    for h in &HEADER[..12] {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("<th>linearizable history?</th></tr>\n");
    for r in rows {
        out.push_str("<tr>");
        for c in cells(r) {
            let _ = write!(out, "<td>{}</td>", esc(&c));
        }
        match links.get(&r.protocol) {
            Some(file) => {
                let _ = write!(
                    out,
                    "<td><a href=\"{file}\">no: counterexample (first seed)</a></td>"
                );
            }
            None => out.push_str("<td>no counterexample found (first seed)</td>"),
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}

fn figure(out: &mut String, svg: &str, caption: &str) {
    let _ = writeln!(
        out,
        "<figure>\n{svg}<figcaption>{}</figcaption></figure>",
        esc(caption)
    );
}

/// Every file of the report, by name.
pub fn build(plan: &Plan, runs: &[RunData]) -> BTreeMap<String, String> {
    let groups = groups(plan, runs);
    let rows = rows(&groups);
    let seeds = (plan.seeds.1 - plan.seeds.0 + 1) as usize;
    let by_protocol: Vec<Vec<&RunData>> = groups.iter().map(|g| g.iter().collect()).collect();
    let first: Vec<&RunData> = groups.iter().filter_map(|g| g.first()).collect();
    let mut files = BTreeMap::new();
    let latency = figures::latency(&first);
    let availability = figures::availability(&by_protocol);
    let tvis = figures::t_visibility(&by_protocol);
    let kstale = figures::k_staleness(&by_protocol);
    let convergence = figures::convergence(&by_protocol);
    let mut links = BTreeMap::new();
    for r in &first {
        let Some(d) = &r.detail else { continue };
        files.insert(format!("spacetime-{}.svg", r.protocol), d.diagram.clone());
        if let Some(cx) = &d.counterexample {
            let name = format!("counterexample-{}.html", r.protocol);
            let section = explain::Section {
                title: format!("{} seed {}: key {}", r.protocol, r.seed, cx.key),
                verdict: "not-linearizable".into(),
                counterexample: Some(cx.clone()),
            };
            files.insert(name.clone(), explain::html(&[section]));
            links.insert(r.protocol.clone(), name);
        }
    }
    let summary = summary(plan, runs);
    let head = runs.first().map(|r| &r.report);
    let title = head.map_or(String::new(), |r| {
        format!("{}: {}", r.scenario, r.description)
    });
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>\n{CSS}</style></head><body>\n<h1>{}</h1>\n\
         <div class=\"conclusions\">\n",
        esc(&title),
        esc(&title)
    );
    for c in conclusions(&rows, seeds) {
        let _ = writeln!(html, "<p>{}</p>", esc(&c));
    }
    let _ = write!(
        html,
        "</div>\n<p>Seeds {}..={} ({seeds} runs per protocol). Made by <code>{}</code>. \
         The same command gives the same bytes.</p>\n<h2>Across seeds</h2>\n\
         <p>Availability (ok / invoked, by the side of the partition the operation was invoked \
         on), stale reads (% of reads) and messages per operation: mean ± half the 95% \
         interval. Counts and times: median [5th–95th percentile].</p>\n",
        plan.seeds.0,
        plan.seeds.1,
        esc(&plan.command())
    );
    html.push_str(&table_html(&rows, &links));
    html.push_str("<h2>Availability over time</h2>\n");
    figure(
        &mut html,
        &availability,
        "Ok operations per second, by the side of the partition \
        they were invoked on, mean over the seeds; faults shaded (red) until the heal (green).",
    );
    html.push_str("<h2>Latency over time</h2>\n");
    figure(
        &mut html,
        &latency,
        "Every operation of the first seed at its invocation, its \
        latency on a log scale: ok green, timed out (unknown) yellow, refused red.",
    );
    html.push_str("<h2>Staleness</h2>\n");
    figure(
        &mut html,
        &tvis,
        "PBS t-visibility, pooled over the seeds: of the reads invoked t \
        after a write completed, the share that returned that write or a newer one. A \
        linearizable store stays at 100%.",
    );
    figure(
        &mut html,
        &kstale,
        "k-staleness, pooled over the seeds: how many completed writes \
        each read was behind (0: fresh).",
    );
    html.push_str("<h2>Convergence</h2>\n");
    figure(
        &mut html,
        &convergence,
        "Keys the running replicas disagree on, sampled every half second, mean over the \
        seeds; faults shaded. Any difference counts: replicas cut off from the side that \
        takes writes lag behind it (raft, majority, primary), the sides of a leaderless store \
        take different writes (sloppy, dynamo), and a protocol that takes no write without \
        every node stays level (twopc). The fall after the heal is the repair; the table's \
        two columns give divergence at the heal and the time to agree once clients stop.",
    );
    let window = diagram_window(first.first().and_then(|r| {
        r.report
            .faults
            .first()
            .map(|f| (f.at_ms * 1000.0).round() as u64)
    }));
    let _ = writeln!(
        html,
        "<h2>Messages around the first fault</h2>\n<p>Space-time diagrams of the first seed from \
         {:.3}s to {:.3}s (<code>simkv run SCENARIO --protocol P --seed N --diagram FROM..TO \
         out.svg</code> draws any window).</p>",
        window.from_us as f64 / 1e6,
        window.to_us as f64 / 1e6
    );
    for r in &first {
        if r.detail.is_some() {
            let _ = writeln!(
                html,
                "<h3>{p}</h3>\n<img class=\"diagram\" src=\"spacetime-{p}.svg\" alt=\"space-time \
                 diagram of {p}\">",
                p = esc(&r.protocol)
            );
        }
    }
    html.push_str("</body></html>\n");
    files.insert("index.html".into(), html);
    files.insert("latency.svg".into(), latency);
    files.insert("availability.svg".into(), availability);
    files.insert("t-visibility.svg".into(), tvis);
    files.insert("k-staleness.svg".into(), kstale);
    files.insert("convergence.svg".into(), convergence);
    files.insert("summary.md".into(), summary);
    files
}
