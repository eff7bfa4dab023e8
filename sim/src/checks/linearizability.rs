//! Linearizability: the run's history, checked by [`crate::lincheck`] against the strict kv
//! model (strict serializability where txns join keys).

use super::{Judgement, Promised, RunView, Verdict};
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
pub(super) fn judge(run: &RunView) -> Judgement {
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
