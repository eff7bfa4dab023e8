//! Linearizability: the run's history, checked by [`crate::lincheck`] against the strict kv
//! model (strict serializability where txns join keys).

use super::{Judgement, Promised, RunView, TxnAnomalies, Verdict};
use crate::elle::{self, ConsistencyModel::StrictSerializable};
use crate::lincheck::{self, Budget};
use simkv_protocols::Promise;

pub(super) const PROMISED: Promised = Promised::If(Promise::Linearizable);

/// The most lines of a counterexample a run's summary prints.
const MAX_DETAIL_LINES: usize = 24;

/// The budget of the check inside a run: steps and memory only, never wall time, so that a
/// run's verdict cannot depend on the machine.
fn run_budget() -> Budget {
    Budget {
        deadline: None,
        max_steps: 1 << 26,
        max_memo_entries: 1 << 20,
        max_value_bytes: 256 << 20,
        lowest_key: true,
        ..Budget::default()
    }
}

/// Checks the history; a violation's detail is its counterexample, cut to a summary's size.
///
/// A history with transactions goes to Elle's graph checker first
/// ([`crate::elle`], Kingsbury & Alvaro, VLDB 2020) when Elle can read it (gets and
/// appends, or gets and puts): an anomaly that rules out strict serializability fails the
/// check with the anomaly's name and its cycle in words. When Elle finds none, the search
/// still decides (it is exact where it finishes), and the detail says what Elle saw.
pub(super) fn judge(run: &RunView) -> Judgement {
    let elle = elle_report(run);
    let seen = elle.as_ref().map(|r| TxnAnomalies {
        txns: r.txns as u64,
        anomalies: anomaly_names(r),
    });
    let mut judgement = match elle.as_ref().filter(|r| r.violates(StrictSerializable)) {
        Some(report) => Judgement::new(Verdict::Fail, elle_summary(report)),
        None => search(run),
    };
    if let (Some(report), Verdict::Pass) = (&elle, judgement.verdict) {
        judgement.detail.push_str(&format!(
            "; Elle: no anomaly in {} {} txns",
            report.txns,
            report.workload.name()
        ));
    }
    judgement.measured.txn_anomalies = seen;
    judgement
}

/// Each anomaly Elle found, as `name xcount`.
fn anomaly_names(report: &elle::Report) -> Vec<String> {
    let names = report.anomalies.iter();
    names.map(|g| format!("{} x{}", g.name, g.count)).collect()
}

/// Elle's report on the run's history, if it has transactions Elle can read.
fn elle_report(run: &RunView) -> Option<elle::Report> {
    let history = elle::from_simkv(run.history).ok()?;
    Some(elle::check(&history, &elle::Limits::default()))
}

/// Elle's anomalies, named, with their first explanations, cut to a summary's size.
fn elle_summary(report: &elle::Report) -> String {
    let names = anomaly_names(report);
    let head = format!(
        "Elle: {} in {} {} txns (not strictly serializable)",
        names.join(", "),
        report.txns,
        report.workload.name()
    );
    summary(&format!("{head}\n{}", report.render()))
}

/// The Wing and Gong search over the history (keys joined by transactions).
fn search(run: &RunView) -> Judgement {
    let outcome = lincheck::check_simkv_history(run.history, &run_budget());
    let keys = outcome.keys.len();
    let joined = outcome.keys.iter().filter(|k| k.key.contains('+')).count();
    match outcome.verdict {
        lincheck::Verdict::Linearizable if joined > 0 => Judgement::new(
            Verdict::Pass,
            format!(
                "{} operations over {keys} partitions ({joined} of keys joined by txns: \
                 strictly serializable)",
                outcome.ops
            ),
        ),
        lincheck::Verdict::Linearizable => Judgement::new(
            Verdict::Pass,
            format!("{} operations over {keys} keys", outcome.ops),
        ),
        lincheck::Verdict::NotLinearizable(counterexample) => {
            Judgement::new(Verdict::Fail, summary(&counterexample.render()))
        }
        lincheck::Verdict::Unknown(why) => Judgement::new(Verdict::Unknown, why),
    }
}

/// A rendered counterexample's first lines, and how to see the rest.
fn summary(text: &str) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let mut detail = lines[..lines.len().min(MAX_DETAIL_LINES)].join("\n");
    if lines.len() > MAX_DETAIL_LINES {
        detail.push_str(&format!(
            "\n... {} more operations: write the run's --history and draw it with \
             simkv check --explain",
            lines.len() - MAX_DETAIL_LINES
        ));
    }
    detail
}
