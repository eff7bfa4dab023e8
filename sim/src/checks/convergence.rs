//! Convergence: every running replica ends with the same state.

use super::{FinalReplica, Judgement, Promised, RunView, Verdict};
use simkv_protocols::{Key, Promise, Value};

pub(super) const PROMISED: Promised = Promised::If(Promise::Convergent);

/// Judges the final replicas, and says when they first agreed after the clients stopped.
pub(super) fn judge(run: &RunView) -> Judgement {
    let (verdict, mut detail) = convergence(run.replicas);
    if let Some(after) = run.converged_after_stop {
        detail.push_str(&format!("; converged {after} after clients stopped"));
    }
    Judgement::new(verdict, detail)
}

/// Convergence: every running replica ends with the same digest.
fn convergence(replicas: &[FinalReplica]) -> (Verdict, String) {
    let running: Vec<&FinalReplica> = replicas.iter().filter(|r| r.digest.is_some()).collect();
    let Some(first) = running.first() else {
        return (Verdict::Skipped, "no node was running at the end".into());
    };
    let diverged: Vec<&&FinalReplica> = running
        .iter()
        .filter(|r| r.digest != first.digest)
        .collect();
    if diverged.is_empty() {
        return (
            Verdict::Pass,
            format!(
                "{} running replicas hold the same state ({} keys)",
                running.len(),
                first.store.len()
            ),
        );
    }
    let mut lines = vec![format!(
        "{} of {} running replicas differ from {}",
        diverged.len(),
        running.len(),
        first.node
    )];
    for other in diverged {
        let mut keys: Vec<Key> = first
            .store
            .keys()
            .chain(other.store.keys())
            .copied()
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let differing: Vec<String> = keys
            .into_iter()
            .filter(|k| first.store.get(k) != other.store.get(k))
            .take(5)
            .map(|k| {
                let show = |v: Option<&Value>| v.map_or("absent".to_string(), |v| v.clone());
                format!(
                    "k{k}: {}={} {}={}",
                    first.node,
                    show(first.store.get(&k)),
                    other.node,
                    show(other.store.get(&k))
                )
            })
            .collect();
        if differing.is_empty() {
            lines.push(format!(
                "{}: same keys and values, different versions or tombstones",
                other.node
            ));
        } else {
            lines.push(format!("{}: {}", other.node, differing.join("; ")));
        }
    }
    (Verdict::Fail, lines.join("\n"))
}
