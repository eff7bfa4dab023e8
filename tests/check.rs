//! `simkv check`: verdicts and exit codes on EDN and JSON histories, `--json`, `--explain`.

use std::path::Path;
use std::process::{Command, Output};

fn simkv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simkv"))
        .arg("check")
        .args(args)
        .output()
        .expect("the simkv binary runs")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("temp file");
    path.to_string_lossy().into_owned()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const GOOD: &str = "\
{:index 0, :type :invoke, :process 0, :f :write, :value 1}
{:index 1, :type :ok, :process 0, :f :write, :value 1}
{:index 2, :type :info, :process :nemesis, :f :start, :value nil}
{:index 3, :type :invoke, :process 1, :f :read, :value nil}
{:index 4, :type :ok, :process 1, :f :read, :value 1}
";

const STALE: &str = "\
; the read of 1 comes after the write of 2 completed
{:type :invoke, :process 0, :f :write, :value 1}
{:type :ok, :process 0, :f :write, :value 1}
{:type :invoke, :process 0, :f :write, :value 2}
{:type :ok, :process 0, :f :write, :value 2}
{:type :invoke, :process 1, :f :read, :value nil}
{:type :ok, :process 1, :f :read, :value 1}
";

#[test]
fn check_linearizable_edn_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.edn", GOOD);
    let o = simkv(&[&good]);
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    assert!(
        out(&o).contains("good.edn: linearizable (model register, 2 ops"),
        "{}",
        out(&o)
    );
}

#[test]
fn check_stale_read_exits_1_with_a_minimal_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let stale = write(dir.path(), "stale.edn", STALE);
    let o = simkv(&[&stale]);
    assert_eq!(o.status.code(), Some(1), "{}{}", out(&o), err(&o));
    let text = out(&o);
    assert!(text.contains("NOT linearizable"), "{text}");
    assert!(
        text.contains("these 3 operations cannot be linearized together (minimal"),
        "{text}"
    );
    assert!(
        text.contains("line 6..7 ok read 1  [cannot be linearized after those]"),
        "{text}"
    );
}

#[test]
fn check_json_prints_one_object_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.edn", GOOD);
    let stale = write(dir.path(), "stale.edn", STALE);
    let o = simkv(&["--json", &good, &stale]);
    assert_eq!(o.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = out(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["verdict"], "linearizable");
    assert_eq!(lines[0]["model"], "register");
    assert_eq!(lines[0]["ops"], 2);
    assert!(lines[0]["check_ms"].is_number());
    assert!(lines[0]["counterexample"].is_null());
    assert_eq!(lines[1]["verdict"], "not-linearizable");
    let cx = &lines[1]["counterexample"];
    assert_eq!(cx["ops"].as_array().map(Vec::len), Some(3));
    assert_eq!(cx["blocked"], 2);
    assert_eq!(cx["ops"][2]["op"], "read 1");
}

#[test]
fn check_bad_input_exits_2_naming_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.edn",
        "{:type :invoke, :process 0, :f :read}\n  {:type :ok :process 1 :f :read :value 3}\n",
    );
    let o = simkv(&[&bad]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("bad.edn:2:3:"), "{}", err(&o));
    assert!(err(&o).contains("without invoking"), "{}", err(&o));
    let torn = write(
        dir.path(),
        "torn.edn",
        "{:type :invoke,\n :process 0 :f :read\n",
    );
    let o = simkv(&[&torn]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err(&o).contains("torn.edn:3:1: expected '}'"),
        "{}",
        err(&o)
    );
    let o = simkv(&[&dir.path().join("missing.edn").to_string_lossy()]);
    assert_eq!(o.status.code(), Some(2));
    let good = write(dir.path(), "good.edn", GOOD);
    let o = simkv(&["--model", "queue", &good]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("expected register or kv"), "{}", err(&o));
}

#[test]
fn check_worst_exit_code_wins() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.edn", GOOD);
    let stale = write(dir.path(), "stale.edn", STALE);
    let bad = write(
        dir.path(),
        "bad.edn",
        "{:type :ok :process 1 :f :read :value 3}\n",
    );
    assert_eq!(simkv(&[&good, &stale]).status.code(), Some(1));
    assert_eq!(simkv(&[&stale, &bad, &good]).status.code(), Some(2));
}

#[test]
fn check_init_and_model_override() {
    let dir = tempfile::tempdir().unwrap();
    let h = "{:type :invoke :process 0 :f :read}\n{:type :ok :process 0 :f :read :value 0}\n";
    let path = write(dir.path(), "init.edn", h);
    assert_eq!(simkv(&[&path]).status.code(), Some(1));
    assert_eq!(simkv(&["--init", "0", &path]).status.code(), Some(0));
    let kv = "{:type :invoke :process 0 :f :write :value [1 2]}\n\
              {:type :ok :process 0 :f :write :value [1 2]}\n";
    let path = write(dir.path(), "kv.edn", kv);
    let o = simkv(&["--json", &path]);
    assert!(out(&o).contains("\"model\":\"kv\""), "{}", out(&o));
    let o = simkv(&["--json", "--model", "register", &path]);
    assert!(out(&o).contains("\"model\":\"register\""), "{}", out(&o));
}

#[test]
fn check_simkv_json_history() {
    let dir = tempfile::tempdir().unwrap();
    let rec = |i: u32, p: u32, ty: &str, f: &str, extra: &str| {
        let t = i * 10;
        format!(
            "{{\"index\":{i},\"time_us\":{t},\"process\":{p},\"node\":\"n1\",\
             \"type\":\"{ty}\",\"f\":\"{f}\",\"key\":1{extra}}}"
        )
    };
    let lines = [
        rec(0, 0, "invoke", "put", ",\"value\":\"a\""),
        rec(1, 0, "ok", "put", ",\"value\":\"a\",\"result\":\"ok\""),
        rec(2, 1, "invoke", "get", ""),
        rec(3, 1, "ok", "get", ",\"result\":\"not-found\""),
    ];
    let text = format!("[\n{}\n]\n", lines.join(",\n"));
    let path = write(dir.path(), "h.json", &text);
    let o = simkv(&[&path]);
    assert_eq!(o.status.code(), Some(1), "{}{}", out(&o), err(&o));
    assert!(out(&o).contains("model kv-strict"), "{}", out(&o));
    assert!(
        out(&o).contains("c2 "),
        "clients are named c1, c2...: {}",
        out(&o)
    );
}

#[test]
fn check_explain_writes_html_but_never_over_a_history() {
    let dir = tempfile::tempdir().unwrap();
    let stale = write(dir.path(), "stale.edn", STALE);
    let page = dir.path().join("why.html");
    let o = simkv(&["--explain", &page.to_string_lossy(), &stale]);
    assert_eq!(o.status.code(), Some(1));
    let html = std::fs::read_to_string(&page).expect("the page was written");
    assert!(
        html.contains("<svg") && html.contains("cannot fit: read 1"),
        "{html}"
    );
    let o = simkv(&["--explain", &stale, &stale]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        std::fs::read_to_string(&stale).unwrap(),
        STALE,
        "the history is untouched"
    );
    // An existing page is replaced only when asked.
    std::fs::write(&page, "mine").unwrap();
    let o = simkv(&["--explain", &page.to_string_lossy(), &stale]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&page).unwrap(), "mine");
    let o = simkv(&["--explain", &page.to_string_lossy(), "--force", &stale]);
    assert_eq!(o.status.code(), Some(1));
    assert!(std::fs::read_to_string(&page).unwrap().contains("<svg"));
}

/// A run's history written to disk and checked again gives the run's verdict: the files keep
/// every result the checker needs (regression: JSON once dropped an append's result, the
/// key's whole new value, so `simkv check` called a linearizable history of appends broken),
/// for simkv JSON and Jepsen EDN, single-key ops and txns alike.
#[test]
fn check_a_runs_written_history_agrees_with_the_run() {
    let dir = tempfile::tempdir().unwrap();
    for (scenario, protocol) in [
        ("scenarios/partition.toml", "raft"),
        ("scenarios/transactions.toml", "twopc"),
    ] {
        for ext in ["json", "edn"] {
            let path = dir.path().join(format!("h.{ext}"));
            let path = path.to_str().unwrap();
            let run = crate::util::simkv(&[
                "run",
                scenario,
                "--protocol",
                protocol,
                "--history",
                path,
                "--force",
            ]);
            assert_eq!(run.status.code(), Some(0), "{}", err(&run));
            assert!(out(&run).contains("linearizability  promised  pass"));
            let o = simkv(&[path]);
            assert_eq!(o.status.code(), Some(0), "{scenario} {ext}: {}", out(&o));
        }
    }
}

/// A history of only `:txn` operations is checked as Elle does: the anomaly is named, with
/// its cycle in words, and `--consistency-model` decides whether it fails (read skew is
/// G-single: it rules out snapshot isolation, not read committed).
#[test]
fn check_txn_history_names_the_anomaly() {
    let dir = tempfile::tempdir().unwrap();
    let text = "{:process 0 :type :invoke :f :txn :value [[:r :x nil] [:r :y nil]]}\n\
                {:process 1 :type :invoke :f :txn :value [[:append :x 1] [:append :y 1]]}\n\
                {:process 2 :type :invoke :f :txn :value [[:r :x nil]]}\n\
                {:process 0 :type :ok :f :txn :value [[:r :x nil] [:r :y [1]]]}\n\
                {:process 1 :type :ok :f :txn :value [[:append :x 1] [:append :y 1]]}\n\
                {:process 2 :type :ok :f :txn :value [[:r :x [1]]]}\n";
    let path = write(dir.path(), "skew.edn", text);
    let o = simkv(&[&path]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("G-single (1 found)"), "{}", out(&o));
    assert!(out(&o).contains("T0 read key :x = [] without T1's append of 1"));
    let o = simkv(&[&path, "--consistency-model", "read-committed"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let o = simkv(&[&path, "--consistency-model", "serialisable"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("expected one of strict-serializable"));
}
