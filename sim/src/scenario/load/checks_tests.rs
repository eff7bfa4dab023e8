//! The stated checks of `[checks]` and the leader's side of a partition: what loads, what
//! `--explain` prints back, and where each bad value is pointed at.

use super::fixtures::{fail, load, pos, MINIMAL};
use crate::scenario::model::{Fault, LeaderSide, PartitionShape, Scenario, StatedChecks};
use crate::scenario::Overrides;
use simkv_protocols::Span;

fn ok(text: &str) -> Scenario {
    load(text, &Overrides::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// `MINIMAL` on raft (which has a leading role) with `extra` appended.
fn raft(extra: &str) -> String {
    format!("{}{extra}", MINIMAL.replace("\"primary\"", "\"raft\""))
}

/// Fails, pointed at the first `needle`, saying `expected`.
fn fails_at(text: &str, needle: &str, expected: &str) {
    let e = fail(text, &Overrides::default());
    assert_eq!((e.line, e.column), pos(text, needle), "{e}");
    assert!(e.message.contains(expected), "{e}\nexpected: {expected}");
}

#[test]
fn stated_checks_load_and_explain_back() {
    let text =
        raft("\n[checks]\nmax_messages_per_op = 12\nleader_within = \"5s\"\none_leader = true\nfalse_deaths = true\n");
    let s = ok(&text);
    let stated = StatedChecks {
        max_messages_per_op: Some(12.0),
        leader_within: Some(Span::secs(5)),
        one_leader: true,
        false_deaths: true,
    };
    assert_eq!(s.checks.stated, stated);
    let explained = s.explain();
    assert!(
        explained
            .contains("max_messages_per_op = 12.0\nleader_within = \"5s\"\none_leader = true\nfalse_deaths = true\n"),
        "{explained}"
    );
    assert_eq!(ok(&explained).checks, s.checks, "explain loads back");
    // A fraction, and nothing stated by default.
    let s = ok(&raft(
        "\n[checks]\nmax_messages_per_op = 4.5\none_leader = false\n",
    ));
    assert_eq!(s.checks.stated.max_messages_per_op, Some(4.5));
    assert!(!s.checks.stated.one_leader);
    assert_eq!(ok(MINIMAL).checks.stated, StatedChecks::default());
}

#[test]
fn leadership_checks_are_refused_for_a_protocol_without_a_leading_role() {
    let text = format!("{MINIMAL}\n[checks]\nleader_within = \"5s\"\n");
    fails_at(
        &text,
        "\"5s\"",
        "leader_within judges leaders, but protocol `primary` has no leading role",
    );
    let text = format!("{MINIMAL}\n[checks]\none_leader = true\n");
    fails_at(&text, "true", "one_leader judges leaders");
    // Stating that there is no such check is no claim about leaders.
    ok(&format!("{MINIMAL}\n[checks]\none_leader = false\n"));
}

#[test]
fn stated_values_must_be_positive() {
    for bad in ["0", "-3", "0.0", "-0.5", "nan"] {
        let text = raft(&format!("\n[checks]\nmax_messages_per_op = {bad}\n"));
        let needle = format!("= {bad}");
        let e = fail(&text, &Overrides::default());
        let (line, column) = pos(&text, &needle);
        assert_eq!(
            (e.line, e.column),
            (line, column.map(|c| c + 2)),
            "{bad}: {e}"
        );
        assert!(e.message.contains("above 0"), "{bad}: {e}");
    }
    let text = raft("\n[checks]\nmax_messages_per_op = \"lots\"\n");
    fails_at(&text, "\"lots\"", "a number");
    let text = raft("\n[checks]\nleader_within = \"0s\"\n");
    fails_at(
        &text,
        "\"0s\"",
        "expected a leader_within bound longer than 0s",
    );
    let text = raft("\n[checks]\nleader_within = \"-5s\"\n");
    fails_at(&text, "\"-5s\"", "duration");
    let text = raft("\n[checks]\none_leader = \"yes\"\n");
    fails_at(&text, "\"yes\"", "boolean");
}

#[test]
fn a_partition_may_put_the_leader_on_a_side() {
    for side in [LeaderSide::Minority, LeaderSide::Majority] {
        let text = raft(&format!(
            "\n[[fault]]\nat = \"1s\"\npartition = {{ shape = \"majority-minority\", leader = \"{}\" }}\n",
            side.name()
        ));
        let s = ok(&text);
        let Fault::Partition(p) = &s.faults[0].fault else {
            panic!("{:?}", s.faults[0]);
        };
        assert_eq!(p.0, PartitionShape::LeaderOn(side));
        let explained = s.explain();
        let line = format!(
            "partition = {{ shape = \"majority-minority\", leader = \"{}\" }}\n",
            side.name()
        );
        assert!(explained.contains(&line), "{explained}");
        assert_eq!(ok(&explained).faults[0].fault, s.faults[0].fault);
    }
}

#[test]
fn a_leader_side_needs_a_leader_a_minority_and_the_majority_minority_shape() {
    let led = "\n[[fault]]\nat = \"1s\"\npartition = { shape = \"ring\", leader = \"minority\" }\n";
    fails_at(
        &raft(led),
        "\"ring\"",
        "expected shape = \"majority-minority\"",
    );
    let led = "\n[[fault]]\nat = \"1s\"\npartition = { shape = \"majority-minority\", leader = \"middle\" }\n";
    fails_at(&raft(led), "\"middle\"", "unknown variant `middle`");
    let led = "\n[[fault]]\nat = \"1s\"\npartition = { shape = \"majority-minority\", leader = \"minority\" }\n";
    fails_at(
        &format!("{MINIMAL}{led}"),
        "\"minority\"",
        "protocol `primary` has no leading role",
    );
    let two = raft(led).replace("nodes = 3", "nodes = 2");
    fails_at(&two, "\"minority\"", "at least 3 nodes");
    let extra = "\n[[fault]]\nat = \"1s\"\npartition = { shape = \"majority-minority\", leader = \"minority\", size = 2 }\n";
    fails_at(&raft(extra), "size", "unknown field `size`");
}

/// A fault's `if_none` is printed back by `--explain` (when not the default `wait`), so that
/// a leader's side that must not wait loads back the same.
#[test]
fn explain_prints_if_none_back() {
    let text = raft(
        "\n[[fault]]\nat = \"1s\"\npartition = { shape = \"majority-minority\", leader = \"minority\" }\nif_none = \"skip\"\n",
    );
    let s = ok(&text);
    let explained = s.explain();
    assert!(
        explained.contains("leader = \"minority\" }\nif_none = \"skip\"\n"),
        "{explained}"
    );
    let back = &ok(&explained).faults[0];
    assert_eq!(
        (&back.fault, back.if_none),
        (&s.faults[0].fault, s.faults[0].if_none)
    );
    let waits = ok(&text.replace("if_none = \"skip\"\n", "")).explain();
    assert!(!waits.contains("if_none"), "{waits}");
}
