//! `simkv check HISTORY... [--model register|kv] [--init VALUE] [--timeout SECONDS] [--json]
//! [--explain FILE.html] [--all-keys] [--no-shrink | --shrink-timeout SECONDS]`: decides
//! whether histories are linearizable.
//!
//! Keys are searched fairly (see [`lincheck::check_prepared`]) and the first violated key
//! ends the check unless `--all-keys`; the output names the keys decided and those left
//! unknown. The decision's time (`check_ms`) and the shrinking's (`shrink_ms`) are reported
//! apart; shrinking has its own budget (`--shrink-timeout`, default four times the decision's
//! time, at least 0.2 s) and a budget-exhausted shrink keeps the smallest counterexample
//! found so far.
//!
//! Formats go by extension: `.edn` is Jepsen's EDN, `.json` simkv's own history. simkv JSON is
//! always checked with the strict kv model. For EDN the model is `kv` when every client
//! operation's value is a `[key value]` tuple (jepsen.independent) and `register` (Knossos's
//! cas-register) otherwise; `--model` overrides. `--init` is an EDN value: each register's (or
//! each key's) value before the history, nil by default.
//!
//! `--timeout` applies to each file separately (default 30 seconds, [`DEFAULT_TIMEOUT`]). With several files the exit code is the worst:
//! bad input (2) over not linearizable (1) over unknown (3) over linearizable (0), so that a
//! definite violation is never hidden behind another file's budget running out.
//!
//! `:txn` histories in EDN (Elle's list-append and rw-register) are checked as Elle does
//! ([`maybe_check_txns`]) against `--consistency-model` (strict-serializable by default);
//! `--model kv` sends them to the strict-serializability search instead.
//!
//! `--explain FILE.html` writes one self-contained page with a section per history; an
//! existing file is replaced only with `--force`, and never one of the histories.

use crate::Exit;
use clap::builder::{EnumValueParser, TypedValueParser};
use simkv_sim::elle;
use simkv_sim::history::{History, HistoryError};
use simkv_sim::lincheck::{
    self, edn, explain, Budget, CheckOutcome, Counterexample, Shrink, Verdict,
};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The models `--model` accepts, spelt as `--model` takes them.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// Knossos's cas-register.
    Register,
    /// Independent keys (jepsen.independent).
    Kv,
}

impl From<Model> for edn::EdnModel {
    fn from(model: Model) -> edn::EdnModel {
        match model {
            Model::Register => edn::EdnModel::Register,
            Model::Kv => edn::EdnModel::Kv,
        }
    }
}

/// Parses `--model` as clap's [`EnumValueParser`] does (and lists the same values in
/// `--help`), but says what was expected in words on a bad value.
#[derive(Clone, Copy, Debug)]
pub struct ModelParser;

impl TypedValueParser for ModelParser {
    type Value = Model;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Model, clap::Error> {
        EnumValueParser::<Model>::new()
            .parse_ref(cmd, arg, value)
            .map_err(|_| {
                let message = format!(
                    "--model {:?}: expected register or kv\n",
                    value.to_string_lossy()
                );
                clap::Error::raw(clap::error::ErrorKind::InvalidValue, message).with_cmd(cmd)
            })
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        use clap::ValueEnum;
        let values = Model::value_variants().iter();
        Some(Box::new(values.filter_map(Model::to_possible_value)))
    }
}

/// The arguments of `simkv check`, as parsed by the command line.
#[derive(Clone, Debug, Default)]
pub struct CheckArgs {
    /// History files.
    pub files: Vec<PathBuf>,
    /// The model, if not guessed from the history.
    pub model: Option<Model>,
    /// Each register's value before the history, in EDN.
    pub init: Option<String>,
    /// Per-file time limit of the search, in seconds.
    pub timeout_s: Option<f64>,
    /// One JSON object per file instead of text.
    pub json: bool,
    /// Where to write the HTML picture of the counterexamples.
    pub explain: Option<PathBuf>,
    /// Replace an existing `explain` file.
    pub force: bool,
    /// The consistency model `:txn` histories are checked against (Elle's checker).
    pub consistency_model: Option<String>,
    /// Search every key even after one is found violated.
    pub all_keys: bool,
    /// Do not shrink the counterexample.
    pub no_shrink: bool,
    /// Shrinking's own time limit, in seconds.
    pub shrink_timeout_s: Option<f64>,
}

/// Runs the command: results on stdout, errors on stderr; returns the exit code.
pub fn check_command(args: &CheckArgs) -> Exit {
    let setup = match Setup::new(args) {
        Ok(s) => s,
        Err(msg) => {
            eprintln!("simkv check: {msg}");
            return Exit::BadInput;
        }
    };
    let mut worst = Exit::Pass;
    let mut pictures: Vec<explain::Section> = Vec::new();
    for file in &args.files {
        // An EDN file without txns is streamed and paired as it is read (the txn checker
        // does not apply to it); any other is read and parsed once, for both checkers.
        let streamed = stream_edn(file, &setup);
        let parsed = match streamed.is_none().then(|| read_edn(file)).flatten() {
            Some(Ok(history)) => Some(history),
            Some(Err(msg)) => {
                eprintln!("simkv check: {msg}");
                worst = worst.worst(Exit::BadInput);
                continue;
            }
            None => None,
        };
        if let Some(code) = parsed
            .as_ref()
            .and_then(|h| maybe_check_txns(file, h, &setup, args.json))
        {
            worst = worst.worst(code);
            continue;
        }
        let code = match check_file(file, parsed, streamed, &setup) {
            Ok(done) => {
                report(file, &done, args.json);
                let code = exit_code(&done.outcome.verdict);
                pictures.push(section(file, &done));
                code
            }
            Err(msg) => {
                eprintln!("simkv check: {msg}");
                Exit::BadInput
            }
        };
        worst = worst.worst(code);
    }
    if let Some(path) = &args.explain {
        if let Err(e) = std::fs::write(path, explain::html(&pictures)) {
            eprintln!("simkv check: cannot write {}: {e}", path.display());
            return Exit::BadInput;
        }
    }
    worst
}

fn exit_code(verdict: &Verdict) -> Exit {
    match verdict {
        Verdict::Linearizable => Exit::Pass,
        Verdict::NotLinearizable(_) => Exit::Fail,
        Verdict::Unknown(_) => Exit::Unknown,
    }
}

/// Each file's search gives up with "unknown" (exit 3) after this long unless `--timeout`
/// says otherwise: a history whose search explodes ends in bounded time.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The values each key's search may make, in bytes: with the memo's 128 MiB, a key's search
/// stays well under 1 GB of memory.
const MAX_VALUE_BYTES: usize = 256 << 20;

/// Options validated once for all files.
struct Setup {
    model: Option<edn::EdnModel>,
    consistency: elle::ConsistencyModel,
    init: Option<edn::Edn>,
    budget: Budget,
}

impl Setup {
    fn new(args: &CheckArgs) -> Result<Setup, String> {
        let model = args.model.map(edn::EdnModel::from);
        let consistency = match &args.consistency_model {
            None => elle::ConsistencyModel::StrictSerializable,
            Some(name) => elle::ConsistencyModel::parse(name).ok_or_else(|| {
                let all: Vec<&str> = elle::ConsistencyModel::ALL.map(|m| m.name()).to_vec();
                format!(
                    "--consistency-model {name:?}: expected one of {}",
                    all.join(", ")
                )
            })?,
        };
        let init = match &args.init {
            None => None,
            Some(text) => Some(
                edn::parse_value(text)
                    .map_err(|e| format!("--init {text:?}: column {}: {}", e.column, e.message))?,
            ),
        };
        let deadline = match args.timeout_s {
            None => Some(DEFAULT_TIMEOUT),
            Some(s) => match Duration::try_from_secs_f64(s) {
                Ok(d) if s > 0.0 => Some(d),
                _ => {
                    return Err(format!(
                        "--timeout {s}: expected a positive number of seconds"
                    ))
                }
            },
        };
        let shrink = match (args.no_shrink, args.shrink_timeout_s) {
            (true, _) => Shrink::Off,
            (false, None) => Shrink::Default,
            (false, Some(s)) => match Duration::try_from_secs_f64(s) {
                Ok(d) if s > 0.0 => Shrink::Timeout(d),
                _ => {
                    return Err(format!(
                        "--shrink-timeout {s}: expected a positive number of seconds"
                    ))
                }
            },
        };
        if let Some(out) = &args.explain {
            let inputs: Vec<(&str, &Path)> = args
                .files
                .iter()
                .map(|f| ("a history being checked", f.as_path()))
                .collect();
            crate::outputs::distinct(&[("--explain", Some(out.as_path()))], &inputs)?;
            if out.exists() && !args.force {
                return Err(format!(
                    "--explain {}: exists; pass --force to replace it",
                    out.display()
                ));
            }
        }
        Ok(Setup {
            model,
            consistency,
            init,
            budget: Budget {
                deadline,
                max_value_bytes: MAX_VALUE_BYTES,
                all_keys: args.all_keys,
                shrink,
                ..Budget::default()
            },
        })
    }
}

/// One file checked.
struct Done {
    outcome: CheckOutcome,
}

fn located(file: &Path, e: &HistoryError) -> String {
    format!("{}:{}:{}: {}", file.display(), e.line, e.column, e.message)
}

/// A `.edn` file read and parsed (`None` for other files).
fn read_edn(file: &Path) -> Option<Result<edn::EdnHistory, String>> {
    if file.extension().and_then(|e| e.to_str()) != Some("edn") {
        return None;
    }
    let parse = |text: String| edn::parse(&text).map_err(|e| located(file, &e));
    Some(crate::check_input::read_text(file).and_then(parse))
}

/// A `.edn` file streamed and prepared ([`edn::prepare_stream`]); `None` for other files,
/// and for any the stream does not take (txns, one collection, any error...), which are then
/// read whole.
fn stream_edn(file: &Path, setup: &Setup) -> Option<lincheck::Prepared> {
    if file.extension().and_then(|e| e.to_str()) != Some("edn") {
        return None;
    }
    let input = std::io::BufReader::new(std::fs::File::open(file).ok()?);
    edn::prepare_stream(input, setup.model, setup.init.as_ref())
}

fn check_file(
    file: &Path,
    parsed: Option<edn::EdnHistory>,
    streamed: Option<lincheck::Prepared>,
    setup: &Setup,
) -> Result<Done, String> {
    let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
    let prepared = match (ext, parsed, streamed) {
        ("edn", _, Some(prepared)) => prepared,
        ("edn", Some(history), None) => {
            let model = setup.model.unwrap_or_else(|| edn::guess_model(&history));
            edn::prepare(&history, model, setup.init.as_ref()).map_err(|e| located(file, &e))?
        }
        ("json", _, _) => {
            if setup.model == Some(edn::EdnModel::Register) {
                // Said after the file is found readable, as before streaming.
                crate::check_input::read_text(file)?;
                return Err(format!(
                    "{}: simkv JSON histories are checked with the kv model",
                    file.display()
                ));
            }
            // Streamed record by record when the file is simkv's usual layout and valid;
            // anything else (another layout, any error) is read whole, which names the
            // error's line and column.
            let streamed = std::fs::File::open(file)
                .ok()
                .and_then(|f| lincheck::prepare_simkv_stream(std::io::BufReader::new(f)));
            let mut prepared = match streamed {
                Some(prepared) => prepared,
                None => {
                    let text = crate::check_input::read_text(file)?;
                    let history = History::from_json(&text).map_err(|e| located(file, &e))?;
                    drop(text);
                    lincheck::prepare_simkv(&history).map_err(|e| located(file, &e))?
                }
            };
            if let Some(init) = &setup.init {
                prepared.init = match init {
                    edn::Edn::Nil => lincheck::model::ABSENT,
                    edn::Edn::Str(s) => prepared.values.intern_str(s),
                    other => prepared.values.intern_str(&other.to_string()),
                };
            }
            prepared
        }
        _ => {
            let msg = format!(
                "{}: expected a .edn (Jepsen) or .json (simkv) history",
                file.display()
            );
            return Err(msg);
        }
    };
    // check_time covers the search (and shrinking), not reading or parsing the file.
    let outcome = lincheck::check_prepared(prepared, &setup.budget);
    crate::check_input::refuse_empty(file, outcome.ops)?;
    Ok(Done { outcome })
}

fn report(file: &Path, done: &Done, json: bool) {
    let out = &done.outcome;
    let ms = out.check_time.as_secs_f64() * 1000.0;
    let shrink_ms = out.shrink_time.as_secs_f64() * 1000.0;
    let unknown = out.keys_with("unknown");
    if json {
        let cx = match &out.verdict {
            Verdict::NotLinearizable(cx) => serde_json::to_value(cx).unwrap_or_default(),
            _ => serde_json::Value::Null,
        };
        let mut obj = serde_json::json!({
            "file": file.display().to_string(),
            "model": out.model,
            "ops": out.ops,
            "keys": out.keys.len(),
            "verdict": out.verdict.name(),
            "check_ms": (ms * 1000.0).round() / 1000.0,
            "shrink_ms": (shrink_ms * 1000.0).round() / 1000.0,
            "violated_keys": out.keys_with("not-linearizable"),
            "decided_keys": out.keys.iter().filter(|k| k.verdict != "unknown").count(),
            "unknown_keys": unknown,
            "counterexample": cx,
        });
        if let Verdict::Unknown(why) = &out.verdict {
            obj["reason"] = serde_json::Value::String(why.clone());
        }
        println!("{obj}");
        return;
    }
    // A partition of keys joined by txns is named `k1+k2+...`.
    let joined = out.keys.iter().filter(|k| k.key.contains('+')).count();
    let keys = match joined {
        0 => format!("{} keys", out.keys.len()),
        j => format!(
            "{} partitions, {j} of keys joined by txns (strict serializability)",
            out.keys.len()
        ),
    };
    let facts = format!("model {}, {} ops, {keys}, {ms:.1} ms", out.model, out.ops);
    // Which keys were decided, when some were not.
    let undecided = if unknown.is_empty() {
        String::new()
    } else {
        let decided = out.keys.len() - unknown.len();
        format!(
            "  {decided} keys decided; {} unknown: {}\n",
            unknown.len(),
            shown_keys(&unknown)
        )
    };
    match &out.verdict {
        Verdict::Linearizable => println!("{}: linearizable ({facts})", file.display()),
        Verdict::Unknown(why) => {
            println!("{}: unknown: {why} ({facts})", file.display());
            print!("{undecided}");
        }
        Verdict::NotLinearizable(cx) => {
            println!(
                "{}: NOT linearizable ({facts}; shrinking {shrink_ms:.1} ms)",
                file.display()
            );
            print!("{undecided}");
            print!("{}", indent(&cx.render()));
        }
    }
}

/// At most the first 20 keys, and how many more.
fn shown_keys(keys: &[&str]) -> String {
    let mut shown = keys.iter().take(20).copied().collect::<Vec<_>>().join(", ");
    if keys.len() > 20 {
        shown.push_str(&format!(" and {} more", keys.len() - 20));
    }
    shown
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

fn section(file: &Path, done: &Done) -> explain::Section {
    let cx: Option<Counterexample> = match &done.outcome.verdict {
        Verdict::NotLinearizable(cx) => Some((**cx).clone()),
        _ => None,
    };
    explain::Section {
        title: file.display().to_string(),
        verdict: done.outcome.verdict.name().to_string(),
        counterexample: cx,
    }
}

/// A `.edn` history of only `:txn` operations, without `--model`, is checked as Elle does (see
/// [`elle`]): the dependency graph, named anomalies, and the models they rule out; the
/// check fails when `--consistency-model` (strict-serializable by default) is ruled out.
/// `--model kv` keeps the strict-serializability search for such a history. `None` when the
/// file is not such a history (or cannot be read: [`check_file`] says why).
fn maybe_check_txns(
    file: &Path,
    history: &edn::EdnHistory,
    setup: &Setup,
    json: bool,
) -> Option<Exit> {
    if setup.model.is_some() {
        return None;
    }
    // Histories that mix single-key operations with txns (simkv's own runs written as EDN)
    // stay with the search, which models both.
    let client = |o: &&edn::EdnOp| matches!(o.process, edn::Process::Client(_));
    if !elle::input::is_txn_history(history)
        || !history.ops.iter().filter(client).all(|o| o.f == "txn")
    {
        return None;
    }
    let started = std::time::Instant::now();
    let txns = match elle::from_edn(history) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("simkv check: {}", located(file, &e));
            return Some(Exit::BadInput);
        }
    };
    let report = elle::check(&txns, &elle::Limits::default());
    // Wall time appears only in the human summary and the JSON's timing field.
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let failed = report.violates(setup.consistency);
    let verdict = if failed { "violated" } else { "not ruled out" };
    let model = setup.consistency.name();
    if json {
        let anomalies: Vec<serde_json::Value> = report
            .anomalies
            .iter()
            .map(|g| serde_json::json!({"name": g.name, "count": g.count, "examples": g.examples}))
            .collect();
        let ruled_out: Vec<&str> = report.ruled_out().iter().map(|m| m.name()).collect();
        let obj = serde_json::json!({
            "file": file.display().to_string(),
            "workload": report.workload.name(),
            "txns": report.txns,
            "consistency_model": model,
            "verdict": if failed { "violated" } else { "ok" },
            "anomalies": anomalies,
            "ruled_out": ruled_out,
            "notes": report.notes,
            "check_ms": (ms * 1000.0).round() / 1000.0,
        });
        println!("{obj}");
    } else {
        println!(
            "{}: {model} {verdict} ({}, {} txns, {ms:.1} ms)",
            file.display(),
            report.workload.name(),
            report.txns
        );
        print!("{}", indent(&report.render()));
    }
    Some(if failed { Exit::Fail } else { Exit::Pass })
}
