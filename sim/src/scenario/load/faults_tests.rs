//! Several nemeses, `max_down`, ranges of times, `for` and the VOPR liveness mode: what
//! loads, what `--explain` prints back, and where each bad value is pointed at.

use super::super::fixtures::{fail, load, pos, MINIMAL};
use crate::scenario::fault_kinds::{Crash, Restart};
use crate::scenario::model::{FaultOrigin, LivenessMode, NemesisKind, Scenario};
use crate::scenario::Overrides;
use simkv_protocols::{NodeId, Span, SpanRange, Time};

fn ok(text: &str) -> Scenario {
    load(text, &Overrides::default()).unwrap_or_else(|e| panic!("{e}"))
}

const TWO_NEMESES: &str = r#"
[[fault]]
at = "2s..4s"
crash = "n2"
for = "1s..3s"

[[fault]]
at = "5s"
partition = "majority-minority"
for = "500ms"

[[fault]]
at = "6s"
restart = "n2"

[[nemesis]]
kinds = ["partition"]
max_down = 1

[[nemesis]]
kinds = ["crash", "pause"]
interval = "1s"
start = "2s"
stop = "8s"
max_down = 2

[checks]
liveness_mode = "vopr"
"#;

#[test]
fn several_nemeses_ranges_and_for_load() {
    let s = ok(&format!("{MINIMAL}{TWO_NEMESES}"));
    assert_eq!(s.nemeses.len(), 2);
    assert_eq!(s.nemeses[0].kinds, [NemesisKind::Partition]);
    assert_eq!(s.nemeses[0].max_down, Some(1));
    assert_eq!(s.nemeses[1].kinds, [NemesisKind::Crash, NemesisKind::Pause]);
    assert_eq!(s.nemeses[1].interval, SpanRange::exactly(Span::secs(1)));
    assert_eq!(s.nemeses[1].max_down, Some(2));
    let crash = &s.faults[0];
    assert_eq!(crash.fault, Crash(NodeId(1).into()).into());
    assert_eq!(
        (crash.at, crash.at_latest),
        (Time(2_000_000), Time(4_000_000))
    );
    let length = SpanRange {
        min: Span::secs(1),
        max: Span::secs(3),
    };
    assert_eq!(crash.undo_after, Some(length));
    let exact = &s.faults[1];
    assert_eq!(exact.at, exact.at_latest);
    assert_eq!(
        exact.undo_after,
        Some(SpanRange::exactly(Span::millis(500)))
    );
    assert_eq!(s.faults[2].fault, Restart(NodeId(1).into()).into());
    assert_eq!(s.faults[2].undo_after, None);
    assert_eq!(s.checks.liveness_mode, LivenessMode::Vopr);
    // A lone `[nemesis]` is the same as one `[[nemesis]]`.
    let table = ok(&format!("{MINIMAL}[nemesis]\nkinds = [\"crash\"]\n"));
    let array = ok(&format!("{MINIMAL}[[nemesis]]\nkinds = [\"crash\"]\n"));
    assert_eq!(table.nemeses, array.nemeses);
    assert_eq!(table.nemeses[0].max_down, None);
    assert_eq!(ok(MINIMAL).checks.liveness_mode, LivenessMode::Heal);
}

#[test]
fn explain_prints_ranges_for_and_every_nemesis_and_loads_back() {
    let s = ok(&format!("{MINIMAL}{TWO_NEMESES}"));
    let text = s.explain();
    for line in [
        "at = \"2s..4s\"  # s.toml:",
        "for = \"1s..3s\"\n",
        "for = \"500ms\"\n",
        "max_down = 2\n",
        "liveness_mode = \"vopr\"\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from\n{text}");
    }
    assert_eq!(text.matches("[[nemesis]]").count(), 2, "{text}");
    let again = load(&text, &Overrides::default()).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let plain = |mut s: Scenario| {
        s.source.clear();
        for f in &mut s.faults {
            f.origin = FaultOrigin::Scripted(String::new());
        }
        s
    };
    assert_eq!(plain(again), plain(s));
}

/// `MINIMAL` (3 nodes, 10s) with `extra`; `»` marks where the error must point.
const BAD: &[(&str, &str)] = &[
    (
        "[[nemesis]]\nkinds = [\"crash\"]\nmax_down = »4\n",
        "expected a bound on nodes down at once (max_down), at most the cluster's size, from 0 to 3, found 4",
    ),
    (
        "[[nemesis]]\nkinds = [\"crash\"]\n[[nemesis]]\nkinds = [\"pause\"]\nmax_down = »-1\n",
        "from 0 to 3, found -1",
    ),
    (
        "[[fault]]\nat = »\"12s..8s\"\ncrash = \"n1\"\n",
        "the range \"12s..8s\" ends before it starts",
    ),
    (
        "[[fault]]\nat = »\"5s..10s\"\ncrash = \"n1\"\n",
        "expected a fault time before the duration (10s), found 10s",
    ),
    (
        "[[fault]]\nat = \"1s\"\ncrash = \"n1\"\nfor = »\"5s..1s\"\n",
        "ends before it starts",
    ),
    (
        "[[fault]]\nat = \"1s\"\ncrash = \"n1\"\nfor = »\"0s..1s\"\n",
        "expected a `for` longer than 0s",
    ),
    (
        "[[fault]]\nat = \"1s\"\nheal = true\nfor = »\"1s\"\n",
        "expected `for` only on a fault that can be undone",
    ),
    (
        "[[fault]]\nat = \"1s\"\nclock_jump = { node = \"n1\", by = \"1s\" }\nfor = »\"1s\"\n",
        "found `clock_jump`",
    ),
    (
        "[checks]\nliveness_mode = »\"sometimes\"\n",
        "unknown variant `sometimes`, expected `heal` or `vopr`",
    ),
];

#[test]
fn each_bad_value_is_located() {
    for (extra, expected) in BAD {
        let text = format!("{MINIMAL}{extra}");
        let (line, column) = pos(&text, "»");
        let e = fail(&text.replace('»', ""), &Overrides::default());
        assert_eq!((e.line, e.column), (line, column), "{extra}\n{e}");
        assert!(e.message.contains(expected), "{extra}\n{e}");
    }
}

#[test]
fn the_vopr_mode_needs_a_minority_to_write_off() {
    let text = MINIMAL.replace("nodes = 3", "nodes = 2") + "[checks]\nliveness_mode = »\"vopr\"\n";
    let (line, column) = pos(&text, "»");
    let e = fail(&text.replace('»', ""), &Overrides::default());
    assert_eq!((e.line, e.column), (line, column), "{e}");
    assert!(e.message.contains("at least 3 nodes"), "{e}");
}
