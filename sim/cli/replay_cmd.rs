//! `simkv replay FILE`: re-run a replay file and say whether its fingerprint matches; if it
//! does not, name the first event that differs, recorded beside now.

use crate::Exit;
use simkv_sim::engine::{perturbation, Record};
use simkv_sim::replay::{first_divergence, Divergence, ReplayFile};
use simkv_sim::runner::{self, RunOptions};
use simkv_sim::scenario::Scenario;
use std::path::PathBuf;

/// Arguments of `simkv replay`.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// The replay file (`simkv run --save-replay`, `simkv sweep --out`).
    pub file: PathBuf,
    /// Print one JSON object (match, fingerprints, verdict, first differing event) instead
    /// of the text.
    #[arg(long)]
    pub json: bool,
}

/// Records shown before the first differing event, for context.
const CONTEXT: u64 = 2;

/// Runs the command; returns its exit code.
pub fn replay(args: &ReplayArgs) -> Exit {
    let name = args.file.display().to_string();
    let loaded = ReplayFile::load(&args.file).and_then(|file| {
        let records = file.event_records(&name)?;
        let scenario = file.load_scenario(&format!("{name}#scenario"))?;
        Ok((file, records, scenario))
    });
    let (file, records, scenario) = match loaded {
        Ok(loaded) => loaded,
        Err(e) if e.starts_with("error") => {
            // A scenario's diagnostic, already rendered.
            eprintln!("{e}");
            return Exit::BadInput;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::BadInput;
        }
    };
    let version = env!("CARGO_PKG_VERSION");
    if file.simkv_version != version {
        eprintln!(
            "warning: {name} was recorded by simkv {}, this is simkv {version}: a difference \
             may come from the versions",
            file.simkv_version
        );
    }
    if let Some(n) = perturbation() {
        eprintln!("warning: SIMKV_PERTURB={n}: this test build delays event {n} by 1us");
    }
    let bugs = if file.bugs.is_empty() {
        String::new()
    } else {
        format!(" bugs {}", file.bugs.join(","))
    };
    if !args.json {
        println!(
            "replaying {name}: {} seed {} protocol {}{bugs}, {} events recorded",
            file.source, file.seed, file.protocol, file.events
        );
    }
    let result = runner::run(&scenario, RunOptions::recorded());
    let now = result.recording.as_ref().expect("recorded");
    let fingerprint = &result.report.fingerprint;
    let verdict = simkv_sim::replay::verdict_name(result.report.verdict);
    if args.json {
        let matches = *fingerprint == file.fingerprint;
        let divergence = (!matches && !file.checkpoints.is_empty())
            .then(|| first_divergence(&file.checkpoints, &records, now))
            .flatten();
        let record = |r: Option<simkv_sim::engine::recording::EventRecord>| {
            r.map(|r| {
                serde_json::json!({
                    "time_us": r.time_us,
                    "party": r.party.to_string(),
                    "kind": r.kind.name(),
                })
            })
        };
        let divergence = divergence.map(|d| {
            serde_json::json!({
                "event": d.event,
                "exact": d.exact,
                "agreed_through": d.agreed,
                "recorded": record(d.recorded),
                "now": record(d.now),
            })
        });
        let out = serde_json::json!({
            "file": name,
            "source": file.source,
            "seed": file.seed,
            "protocol": file.protocol,
            "bugs": file.bugs,
            "simkv_version_recorded": file.simkv_version,
            "matches": matches,
            "fingerprint_recorded": file.fingerprint,
            "fingerprint_now": fingerprint,
            "events_recorded": file.events,
            "events_now": result.report.events,
            "verdict_recorded": file.verdict,
            "verdict_now": verdict,
            "failed_checks_now": result.report.failed_promises(),
            "first_divergence": divergence,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return if matches { Exit::Pass } else { Exit::Fail };
    }
    if *fingerprint == file.fingerprint {
        println!("replayed: fingerprint {fingerprint} matches");
        let failed = result.report.failed_promises();
        if failed.is_empty() {
            println!("verdict: {verdict}");
        } else {
            println!("verdict: {verdict} ({})", failed.join(", "));
        }
        if verdict != file.verdict {
            println!(
                "note: the file says {}; the checks, not the run, changed",
                file.verdict
            );
        }
        return Exit::Pass;
    }
    println!(
        "replay differs: fingerprint now {fingerprint}, recorded {} ({} events now, {} recorded)",
        file.fingerprint, result.report.events, file.events
    );
    if file.checkpoints.is_empty() {
        println!(
            "the file has no checkpoints to find the first differing event by: save the run \
             with `simkv run ... --save-replay FILE` and replay that"
        );
        return Exit::Fail;
    }
    match first_divergence(&file.checkpoints, &records, now) {
        Some(d) if d.exact => show_event(&scenario, &records, now, &d),
        Some(d) => println!(
            "the runs agree up to event {} and differ at the checkpoint after event {}: the \
             first differing event lies between {} and {}{}",
            d.agreed,
            d.event,
            d.agreed + 1,
            d.event,
            if records.is_empty() {
                " (the file has no per-event records to say which)"
            } else {
                " (their per-event records agree: two contents with one 16-bit hash)"
            }
        ),
        None => println!(
            "every checkpoint and event record agrees: the file's fingerprint field does not \
             match its own recording"
        ),
    }
    Exit::Fail
}

/// Prints the first differing event, recorded beside now, with the events before it.
fn show_event(
    scenario: &Scenario,
    records: &[simkv_sim::engine::recording::EventRecord],
    now: &simkv_sim::engine::Recording,
    d: &Divergence,
) {
    let head = d.recorded.or(d.now).expect("one run has the event");
    println!(
        "first differing event: #{} at {} on {}, {}",
        d.event,
        seconds(head.time_us),
        head.party,
        head.kind.name()
    );
    let width = 44;
    println!("  {:<8} {:<width$} now", "event", "recorded");
    let from = d.event.saturating_sub(CONTEXT).max(1);
    for n in from..d.event {
        let shown = records
            .get(n as usize - 1)
            .map_or_else(|| "-".to_string(), |r| r.to_string());
        println!("  #{n:<7} {shown:<width$} (same)");
    }
    let or_end = |r: Option<simkv_sim::engine::recording::EventRecord>, len: usize| {
        r.map_or_else(
            || format!("(the run ended after {len} events)"),
            |r| r.to_string(),
        )
    };
    println!(
        "  #{:<7} {:<width$} {}",
        d.event,
        or_end(d.recorded, records.len()),
        or_end(d.now, now.events.len())
    );
    if d.now.is_some() {
        // Run again, keeping that one event whole (the file holds only its record).
        let options = RunOptions {
            record: Some(Record {
                capture: Some(d.event),
            }),
            ..RunOptions::default()
        };
        let again = runner::run(scenario, options);
        for line in again.recording.map(|r| r.captured).unwrap_or_default() {
            println!("  now, in full: {line}");
        }
    }
    if d.event > 1 {
        println!(
            "events 1..={} agree (checkpoints up to event {}, then event by event)",
            d.event - 1,
            d.agreed
        );
    }
}

fn seconds(us: u64) -> String {
    format!("{}.{:06}s", us / 1_000_000, us % 1_000_000)
}
