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
    if running.iter().any(|r| !r.foreign.is_empty()) {
        return convergence_per_key(&running);
    }
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
                let show = |v: Option<&Value>| v.map_or("absent".to_string(), |v| v.to_string());
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

/// Convergence when a ring partitions the keys: each key's running replicas (the nodes that
/// replicate it, in their own view) end with the same value and the same siblings.
fn convergence_per_key(running: &[&FinalReplica]) -> (Verdict, String) {
    let mut keys: Vec<Key> = running
        .iter()
        .flat_map(|r| r.store.keys().chain(r.siblings.keys()).chain(r.foreign.iter()))
        .copied()
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let show = |v: Option<&Value>| v.map_or("absent".to_string(), |v| v.to_string());
    let mut judged = 0;
    let mut differing: Vec<String> = Vec::new();
    for k in keys {
        let owners: Vec<&&FinalReplica> =
            running.iter().filter(|r| !r.foreign.contains(&k)).collect();
        let Some(first) = owners.first() else {
            continue;
        };
        judged += 1;
        let state = |r: &FinalReplica| (r.store.get(&k).cloned(), r.siblings.get(&k).cloned());
        let want = state(first);
        for other in owners.iter().skip(1).filter(|o| state(o) != want) {
            differing.push(format!(
                "k{k}: {}={} {}={}",
                first.node,
                show(first.store.get(&k)),
                other.node,
                show(other.store.get(&k))
            ));
        }
    }
    if differing.is_empty() {
        let detail = format!("every key's replicas hold the same state ({judged} keys)");
        return (Verdict::Pass, detail);
    }
    let shown: Vec<String> = differing.iter().take(5).cloned().collect();
    let detail = format!(
        "{} key replicas differ from their first replica\n{}",
        differing.len(),
        shown.join("\n")
    );
    (Verdict::Fail, detail)
}
