//! The streaming history readers (issue 16): the same prepared history and verdict as the
//! whole-file readers, and errors in the middle of a streamed file still located.

use simkv_sim::history::History;
use simkv_sim::lincheck::{self, check_prepared, edn, gen, Budget, Prepared};
use std::path::Path;

fn histories() -> Vec<(&'static str, History)> {
    vec![
        ("kv 3000", gen::linearizable_kv(3_000, 20, 10, "kv")),
        ("rw 2000", gen::linearizable_kv(2_000, 5, 8, "rw")),
        ("multi-key", gen::multi_key_append()),
    ]
}

/// A quick budget: verdicts of the intractable keys are whatever it allows, the same for both.
fn budget() -> Budget {
    Budget {
        max_steps: 200_000,
        ..Budget::default()
    }
}

/// Everything a check reads from a prepared history, and the verdict.
fn same(what: &str, streamed: Prepared, whole: Prepared) {
    assert_eq!(streamed.model, whole.model, "{what}");
    assert_eq!(streamed.init, whole.init, "{what}");
    assert_eq!(streamed.lines, whole.lines, "{what}");
    assert_eq!(streamed.naming, whole.naming, "{what}");
    assert_eq!(streamed.partitions, whole.partitions, "{what}: ops per key");
    assert_eq!(streamed.values.len(), whole.values.len(), "{what}: values");
    for v in 0..whole.values.len() as u32 {
        assert_eq!(
            streamed.values.get(v),
            whole.values.get(v),
            "{what}: value {v}"
        );
    }
    let (a, b) = (
        check_prepared(streamed, &budget()),
        check_prepared(whole, &budget()),
    );
    assert_eq!(a.verdict.name(), b.verdict.name(), "{what}: verdict");
    assert_eq!(a.keys, b.keys, "{what}: keys");
}

#[test]
fn streamed_json_prepares_as_the_whole_file_does() {
    for (what, h) in histories() {
        let text = h.to_json();
        let streamed = lincheck::prepare_simkv_stream(text.as_bytes())
            .unwrap_or_else(|| panic!("{what}: simkv's own layout streams"));
        let whole = lincheck::prepare_simkv(&History::from_json(&text).unwrap()).unwrap();
        same(what, streamed, whole);
    }
}

#[test]
fn streamed_edn_prepares_as_the_whole_file_does() {
    for (what, h) in histories() {
        let text = edn::write_history(&h);
        // As written (one map per line), and with maps spread over lines, a comment and a
        // nemesis operation between them.
        let spread = text.replacen(", :f ", ",\n :f ", 40).replacen(
            "\n{",
            "\n; a comment\n{:process :nemesis, :type :info, :f :kill}\n{",
            3,
        );
        for (layout, text) in [("one per line", &text), ("spread", &spread)] {
            let what = format!("{what}, {layout}");
            let parsed = edn::parse(text).unwrap();
            let model = edn::guess_model(&parsed);
            let whole = edn::prepare(&parsed, model, None).unwrap();
            let streamed = edn::prepare_stream(text.as_bytes(), None, None)
                .unwrap_or_else(|| panic!("{what}: streams"));
            same(&what, streamed, whole);
            let given = edn::prepare_stream(text.as_bytes(), Some(model), None).unwrap();
            let whole = edn::prepare(&parsed, model, None).unwrap();
            same(&what, given, whole);
        }
    }
}

#[test]
fn what_the_stream_does_not_take_is_read_whole() {
    // One collection, a register history, a txn: each is the whole-file path's business.
    let register = "{:type :invoke, :process 0, :f :write, :value 1}\n\
                    {:type :ok, :process 0, :f :write, :value 1}\n";
    let collection = format!("[{register}]");
    let txn = "{:type :invoke, :process 0, :f :txn, :value [[:r 1 nil]]}\n";
    assert!(edn::prepare_stream(collection.as_bytes(), None, None).is_none());
    assert!(edn::prepare_stream(txn.as_bytes(), None, None).is_none());
    // A collection after a comment is still the history's; one after records is a bad
    // record, for both readers.
    let commented = format!("; a history\n{collection}");
    assert!(edn::prepare_stream(commented.as_bytes(), None, None).is_none());
    let late = format!("{register}{collection}\n");
    assert!(edn::prepare_stream(late.as_bytes(), None, None).is_none());
    assert!(edn::parse(&late).is_err());
    let streamed = edn::prepare_stream(register.as_bytes(), None, None).unwrap();
    let parsed = edn::parse(register).unwrap();
    let whole = edn::prepare(&parsed, edn::guess_model(&parsed), None).unwrap();
    same("register", streamed, whole);
    // A JSON record over two lines.
    let json = gen::linearizable_kv(10, 2, 2, "kv").to_json();
    let spread = json.replacen(",\"f\"", ",\n\"f\"", 1);
    assert!(lincheck::prepare_simkv_stream(spread.as_bytes()).is_none());
    assert!(History::from_json(&spread).is_ok());
}

/// What `simkv check FILE` prints, both streams.
fn check_out(path: &Path) -> String {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_simkv"))
        .arg("check")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn an_error_in_the_middle_of_a_streamed_file_names_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let h = gen::linearizable_kv(5_000, 50, 10, "kv");
    // JSON: record 4000 (line 4002) gets a type no record has.
    let json = h.to_json();
    let mut lines: Vec<String> = json.lines().map(str::to_string).collect();
    lines[4001] = lines[4001].replacen("\"type\":\"", "\"type\":\"bogus", 1);
    let bad = lines.join("\n");
    let path = write(dir.path(), "bad.json", &bad);
    let err = lincheck::read_simkv_file(&path).unwrap_err();
    assert_eq!(err, History::from_json(&bad).unwrap_err());
    assert_eq!((err.line, err.column), (4002, 1), "{}", err.message);
    // And through `simkv check`.
    let o = check_out(&path);
    assert!(o.contains("bad.json:4002:1: record 4000"), "{o}");
    // EDN: line 3000 gets an unclosed vector, two columns in.
    let text = edn::write_history(&h);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[2999] = format!("  {}", lines[2999].replacen(":type :ok", ":type :okay", 1));
    lines[2999] = lines[2999].replacen(":type :invoke", ":type :okay", 1);
    let bad = lines.join("\n");
    let path = write(dir.path(), "bad.edn", &bad);
    let err = edn::read_file_prepared(&path, None, None).unwrap_err();
    assert_eq!((err.line, err.column), (3000, 3), "{}", err.message);
    assert!(err.message.contains(":okay"), "{}", err.message);
    let o = check_out(&path);
    assert!(o.contains("bad.edn:3000:3: expected :type"), "{o}");
}
