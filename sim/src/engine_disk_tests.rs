//! The simulated disk's clock: a sync that takes time holds back what its handler sends
//! after it, and a crash before it completes loses both (`[disk] sync`), run on a journal
//! protocol that acknowledges each request once its record is on disk, and on one that
//! acknowledges first: "acknowledged before durable" is then something the run can see.

use super::*;
use crate::scenario::fault_kinds::{Crash, DiskFault, DiskFaultKind, Restart};
use crate::scenario::NemesisKind;
use std::collections::BTreeSet;

/// One record per request; the durable state is how many the disk holds.
#[derive(Clone, Debug)]
struct Entry;

impl simkv_protocols::Replay<u64> for Entry {
    fn replay(&self, durable: &mut Option<u64>) {
        *durable = Some(durable.unwrap_or(0) + 1);
    }
}

/// Journals every request, and answers it after the sync (`EARLY = false`, the etcd/raft
/// rule) or before it (`EARLY = true`: the planted "acknowledge before sync").
#[derive(Debug)]
struct Journal<const EARLY: bool> {
    /// Records on the disk (recovered ones, and those written since).
    records: u64,
}

impl<const EARLY: bool> Protocol for Journal<EARLY> {
    type Message = Ping;
    type Timer = Tick;
    type Durable = u64;
    type Record = Entry;
    type Role = Replica;

    fn info() -> ProtocolInfo {
        ProtocolInfo {
            name: "journal",
            description: "test",
            promises: &[],
            params: &[],
            bugs: &[],
            roles: <Replica as RoleKind>::SPECS,
            transactions: false,
            contexts: false,
            operators: &[],
            membership: false,
            check_params: simkv_protocols::params::no_param_check,
        }
    }

    fn role(&self) -> Replica {
        Replica::Replica
    }

    fn start(_: &mut Context<'_, Self>, _: &NodeConfig, durable: Option<&u64>) -> Self {
        Journal {
            records: durable.copied().unwrap_or(0),
        }
    }

    fn on_message(&mut self, _: &mut Context<'_, Self>, _: NodeId, _: Ping) {}

    fn on_timer(&mut self, _: &mut Context<'_, Self>, _: Tick) {}

    fn on_request(&mut self, ctx: &mut Context<'_, Self>, request: Request) {
        if let simkv_protocols::Op::Get { .. } = request.op {
            // A read writes nothing: answered at once, unless a sync is under way.
            ctx.reply(request.id, OpResult::NotFound);
            return;
        }
        self.records += 1;
        ctx.write(Entry);
        let ok = OpResult::Ok { value: None };
        if EARLY {
            ctx.reply(request.id, ok);
            ctx.sync();
        } else {
            ctx.sync();
            ctx.reply(request.id, ok);
        }
    }

    fn store(&self) -> BTreeMap<Key, Value> {
        BTreeMap::new()
    }
}

/// One node whose crashes lose every unsynced write, syncs taking `sync`, crashed and
/// restarted every 100 ms.
fn journal(sync: SpanRange, seed: u64) -> Scenario {
    let mut faults = vec![fault(
        0,
        DiskFault {
            node: NodeId(0),
            fault: DiskFaultKind::LoseUnsynced,
        },
    )];
    for i in 1..15 {
        faults.push(fault(i * 100, Crash(NodeId(0).into())));
        faults.push(fault(i * 100 + 7, Restart(NodeId(0).into())));
    }
    let mut s = scenario(1, faults);
    s.seed = seed;
    s.disk.sync = sync;
    s
}

/// Reads answered: a read writes nothing and is answered at once, unless a sync under way
/// holds its answer.
fn reads(out: &RunOutput<impl Protocol>) -> Vec<Span> {
    let mut invoked = BTreeMap::new();
    let mut latencies = Vec::new();
    for e in &out.history.events {
        match &e.outcome {
            None => {
                invoked.insert(e.client, e.time);
            }
            Some(crate::history::Outcome::Ok(OpResult::NotFound)) => {
                latencies.push(e.time.since(invoked[&e.client]));
            }
            Some(_) => {}
        }
    }
    latencies
}

#[test]
fn a_reply_from_a_later_handler_waits_for_a_sync_under_way() {
    let sync = SpanRange::exactly(Span::millis(10));
    let out = Engine::<Journal<false>>::new(&journal(sync, 7), None).run();
    let latencies = reads(&out);
    // 1 ms of client links when no sync is under way; more when one held the answer.
    assert!(
        latencies.iter().any(|l| *l == Span::millis(1)),
        "{latencies:?}"
    );
    assert!(
        latencies.iter().any(|l| *l > Span::millis(2)),
        "{latencies:?}"
    );
    let instant = journal(SpanRange::exactly(Span::ZERO), 7);
    let out = Engine::<Journal<false>>::new(&instant, None).run();
    assert!(reads(&out).iter().all(|l| *l == Span::millis(1)));
}

/// Acknowledged requests, and the times each took from invocation to answer.
fn acked(out: &RunOutput<impl Protocol>) -> (u64, Vec<Span>) {
    let mut invoked = BTreeMap::new();
    let (mut ok, mut latencies) = (0, Vec::new());
    for e in &out.history.events {
        match &e.outcome {
            None => {
                invoked.insert(e.client, e.time);
            }
            Some(crate::history::Outcome::Ok(OpResult::Ok { .. })) => {
                ok += 1;
                latencies.push(e.time.since(invoked[&e.client]));
            }
            Some(_) => {}
        }
    }
    (ok, latencies)
}

fn records<const EARLY: bool>(out: &RunOutput<Journal<EARLY>>) -> u64 {
    out.nodes[0].as_ref().expect("running at the end").records
}

#[test]
fn a_reply_after_a_sync_leaves_when_the_sync_completes() {
    let sync = SpanRange {
        min: Span::millis(4),
        max: Span::millis(6),
    };
    let out = Engine::<Journal<false>>::new(&journal(sync, 7), None).run();
    let (ok, latencies) = acked(&out);
    assert!(ok > 100, "{ok} acknowledged");
    // Client links take 0.5 ms each way: 1 ms plus the sync, at least 4 ms.
    assert!(
        latencies.iter().all(|l| *l >= Span::millis(5)),
        "{latencies:?}"
    );
    let instant =
        Engine::<Journal<false>>::new(&journal(SpanRange::exactly(Span::ZERO), 7), None).run();
    let (_, latencies) = acked(&instant);
    assert!(
        latencies.iter().all(|l| *l == Span::millis(1)),
        "{latencies:?}"
    );
}

#[test]
fn a_crash_during_a_sync_loses_its_records_and_what_waited_for_it_never_an_ack() {
    // Every acknowledged request's record survives every crash: the node's records at the
    // end (recovered, then written since) are at least the acknowledgements.
    let sync = SpanRange {
        min: Span::millis(1),
        max: Span::millis(20),
    };
    let mut lost_some = false;
    for seed in 1..=20 {
        let out = Engine::<Journal<false>>::new(&journal(sync, seed), None).run();
        let (ok, _) = acked(&out);
        let (records, lost) = (records(&out), lost_writes(&out));
        assert!(
            records >= ok,
            "seed {seed}: {records} records, {ok} acknowledged"
        );
        lost_some |= lost;
    }
    assert!(lost_some, "some crash caught a sync under way");
}

/// Whether some crash lost unsynced writes.
fn lost_writes(out: &RunOutput<impl Protocol>) -> bool {
    out.faults
        .iter()
        .any(|f| f.action.contains("lost") && !f.action.contains("lost 0 "))
}

#[test]
fn acknowledging_before_the_sync_loses_acknowledged_writes() {
    let sync = SpanRange {
        min: Span::millis(1),
        max: Span::millis(20),
    };
    let lost = (1..=20).any(|seed| {
        let out = Engine::<Journal<true>>::new(&journal(sync, seed), None).run();
        records(&out) < acked(&out).0
    });
    assert!(
        lost,
        "a crash between an early ack and its sync loses an acknowledged write"
    );
}

#[test]
fn a_torn_last_write_is_cut_off_at_recovery_and_loses_nothing_acknowledged_after_it() {
    // A crash tears the last unsynced record; the recovery reads it as `Read::Torn` (the
    // journal's default recovery stops there) and the log is repaired: what the node writes
    // and acknowledges after the restart is not behind a damaged record, so the next
    // recovery reads it (before, it stopped at the old torn record every time, losing every
    // acknowledged write since).
    let sync = SpanRange {
        min: Span::millis(1),
        max: Span::millis(20),
    };
    let mut tore = 0;
    for seed in 1..=20 {
        let mut s = journal(sync, seed);
        s.faults[0] = fault(
            0,
            DiskFault {
                node: NodeId(0),
                fault: DiskFaultKind::TornWrite,
            },
        );
        let out = Engine::<Journal<false>>::new(&s, None).run();
        let (ok, _) = acked(&out);
        let records = records(&out);
        assert!(
            records >= ok,
            "seed {seed}: {records} records, {ok} acknowledged"
        );
        tore += out
            .faults
            .iter()
            .filter(|f| f.action.contains("tore the last write"))
            .count();
    }
    assert!(tore >= 2, "crashes tore writes ({tore})");
}

#[test]
fn a_sync_that_takes_time_replays_the_same_run() {
    let sync = SpanRange {
        min: Span::millis(1),
        max: Span::millis(20),
    };
    let s = journal(sync, 3);
    let a = Engine::<Journal<false>>::new(&s, None).run();
    let b = Engine::<Journal<false>>::new(&s, None).run();
    assert_eq!(a.fingerprint, b.fingerprint);
    assert_eq!(a.history, b.history);
    let other = Engine::<Journal<false>>::new(&journal(sync, 4), None).run();
    assert_ne!(a.fingerprint, other.fingerprint, "the seed draws the syncs");
}

#[test]
fn the_disk_section_sets_every_nodes_crash_mode_and_healthy_brings_it_back() {
    let sync = SpanRange {
        min: Span::millis(1),
        max: Span::millis(20),
    };
    let healthy_at = |s: &mut Scenario| {
        // Replaces the scripted lose-unsynced: `healthy` now means "as [disk] says".
        s.faults[0] = fault(
            0,
            DiskFault {
                node: NodeId(0),
                fault: DiskFaultKind::Healthy,
            },
        );
    };
    let (mut lost_as_configured, mut lost_by_default) = (false, false);
    for seed in 1..=20 {
        let mut s = journal(sync, seed);
        healthy_at(&mut s);
        s.disk.crash = DiskFaultKind::LoseUnsynced;
        lost_as_configured |= lost_writes(&Engine::<Journal<false>>::new(&s, None).run());
        s.disk.crash = DiskFaultKind::Healthy;
        let out = Engine::<Journal<true>>::new(&s, None).run();
        lost_by_default |= lost_writes(&out);
        // A disk that keeps unsynced writes loses nothing, even acknowledged early.
        assert!(records(&out) >= acked(&out).0, "seed {seed}");
    }
    assert!(
        lost_as_configured,
        "[disk] crash = lose-unsynced, after healthy"
    );
    assert!(!lost_by_default, "keep-unsynced loses nothing");
}

#[test]
fn a_disk_nemesis_draws_crash_modes_undone_by_healthy_never_corruption() {
    let mut s = journal(SpanRange::exactly(Span::ZERO), 5);
    s.nemeses = vec![crate::scenario::Nemesis {
        kinds: vec![NemesisKind::Disk],
        interval: SpanRange {
            min: Span::millis(10),
            max: Span::millis(30),
        },
        duration: SpanRange {
            min: Span::millis(5),
            max: Span::millis(10),
        },
        start: Time::ZERO,
        stop: Time::ZERO + Span::secs(1),
        clock_jump_max: Span::millis(10),
        clock_drift_max: 200_000,
        targets: Vec::new(),
        on_role: None,
        max_down: None,
    }];
    let out = Engine::<Journal<false>>::new(&s, None).run();
    let drawn: BTreeSet<&str> = out
        .faults
        .iter()
        .filter(|f| f.origin == crate::scenario::FaultOrigin::Nemesis)
        .filter_map(|f| f.action.strip_prefix("disk n1 "))
        .map(|a| a.split(' ').next().unwrap_or(a))
        .collect();
    // Never `corrupt`: see the draw.
    let kinds = [
        "healthy",
        "lose-some-unsynced",
        "lose-unsynced",
        "torn-write",
    ];
    assert_eq!(drawn, kinds.into_iter().collect(), "{:?}", out.faults);
}

/// Writes acknowledged, each with the time its answer arrived.
fn acknowledged_at(out: &RunOutput<impl Protocol>) -> Vec<Time> {
    let ok = |e: &&crate::history::HistoryEvent| {
        matches!(
            e.outcome,
            Some(crate::history::Outcome::Ok(OpResult::Ok { .. }))
        )
    };
    out.history
        .events
        .iter()
        .filter(ok)
        .map(|e| e.time)
        .collect()
}

/// A full disk: the next write fails and its node stops there (fail-stop, as etcd's WAL and
/// PostgreSQL do on ENOSPC), so the answer that was to follow never leaves; restarted while
/// the disk is still full, the node stops again at its first write; `healthy` gives it room,
/// and a restart then runs on with every acknowledged write on its disk.
#[test]
fn a_full_disk_stops_its_node_at_its_next_write_until_it_has_room() {
    let full = DiskFault {
        node: NodeId(0),
        fault: DiskFaultKind::Full,
    };
    let healthy = DiskFault {
        node: NodeId(0),
        fault: DiskFaultKind::Healthy,
    };
    let faults = vec![
        fault(300, full),
        fault(600, Restart(NodeId(0).into())),
        fault(900, healthy),
        fault(1200, Restart(NodeId(0).into())),
    ];
    let mut s = scenario(1, faults);
    s.disk.sync = SpanRange::exactly(Span::millis(1));
    let out = Engine::<Journal<false>>::new(&s, None).run();
    let acks = acknowledged_at(&out);
    let ms = |m: u64| Time::ZERO + Span::millis(m);
    let between = |a: u64, b: u64| acks.iter().filter(|t| **t > ms(a) && **t < ms(b)).count();
    assert!(between(0, 300) > 10, "{acks:?}");
    // The first write after 300 ms stops the node; the restart at 600 ms stops at its first.
    assert_eq!(between(310, 1200), 0, "{acks:?}");
    assert!(between(1200, 2000) > 10, "{acks:?}");
    let actions: Vec<&str> = out.faults.iter().map(|f| f.action.as_str()).collect();
    assert!(actions.contains(&"disk n1 full"), "{actions:?}");
    // Nothing acknowledged was lost: the disk holds every write answered, and the failed
    // writes were never answered.
    assert_eq!(records(&out), acks.len() as u64);
    // The same run twice is the same run.
    let again = Engine::<Journal<false>>::new(&s, None).run();
    assert_eq!(out.fingerprint, again.fingerprint);
}

/// A misdirected write lands on an earlier record's place (TigerBeetle's simulator does
/// this): the record that was there is gone and the new one is nowhere else. Every record's
/// checksum covers its place, so the recovery reads that place as `Read::Misplaced` and,
/// checking, stops there: the node comes back with the records before it only, fewer than it
/// acknowledged, and the run says which write it was.
#[test]
fn a_misdirected_write_damages_an_earlier_record_and_recovery_stops_there() {
    let misdirect = DiskFault {
        node: NodeId(0),
        fault: DiskFaultKind::Misdirect,
    };
    let faults = vec![
        fault(500, misdirect),
        fault(700, Crash(NodeId(0).into())),
        fault(710, Restart(NodeId(0).into())),
    ];
    let mut s = scenario(1, faults);
    s.disk.sync = SpanRange::exactly(Span::millis(1));
    let out = Engine::<Journal<false>>::new(&s, None).run();
    let actions: Vec<&str> = out.faults.iter().map(|f| f.action.as_str()).collect();
    assert!(
        actions.contains(&"disk n1 misdirect (its next write lands on an earlier record)"),
        "{actions:?}"
    );
    let (acked, _) = acked(&out);
    assert!(acked > 100, "{acked}");
    // The restart read back the records before the misplaced one, then wrote on.
    assert!(
        records(&out) < acked,
        "{} records, {acked} acknowledged",
        records(&out)
    );
    let again = Engine::<Journal<false>>::new(&s, None).run();
    assert_eq!(out.fingerprint, again.fingerprint);
    // Without the fault, the disk holds every acknowledged write.
    let mut clean = s.clone();
    clean.faults.remove(0);
    let out = Engine::<Journal<false>>::new(&clean, None).run();
    assert_eq!(records(&out), acked_count(&out));
}

fn acked_count(out: &RunOutput<impl Protocol>) -> u64 {
    acked(out).0
}
