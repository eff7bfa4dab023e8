//! EDN reader and writer tests, on the shapes Jepsen and Knossos histories take.

use super::*;
use crate::lincheck::{check_prepared, Budget, Verdict};
use proptest::prelude::*;

fn verdict(text: &str, model: Option<EdnModel>) -> String {
    let h = parse(text).expect("parses");
    let model = model.unwrap_or_else(|| guess_model(&h));
    let p = prepare(&h, model, None).expect("prepares");
    check_prepared(p, &Budget::default())
        .verdict
        .name()
        .to_string()
}

const JEPSEN_LINES: &str = r#"; a cas-register run, Jepsen's history.edn shape
{:index 0, :time 1000, :type :invoke, :process 0, :f :write, :value 1}
{:index 1, :time 1500, :type :invoke, :process 1, :f :read, :value nil}
{:index 2 :time 2000 :type :ok :process 0 :f :write :value 1}
{:index 3, :time 2500, :type :info, :process :nemesis, :f :start, :value "partition"}
{:index 4, :time 3000, :type :ok, :process 1, :f :read, :value 1}
{:index 5, :time 3500, :type :invoke, :process 2, :f :cas, :value [1 2]}
{:index 6, :time 4000, :type :info, :process 2, :f :cas, :value [1 2], :error :timeout}
{:index 7, :time 4500, :type :invoke, :process 0, :f :read, :value nil}
{:index 8, :time 5000, :type :ok, :process 0, :f :read, :value 2}
{:index 9, :time 5500, :type :invoke, :process 1, :f :cas, :value [5 6]}
{:index 10, :time 6000, :type :fail, :process 1, :f :cas, :value [5 6]}
"#;

#[test]
fn jepsen_lines_with_nemesis_info_and_fail() {
    assert_eq!(verdict(JEPSEN_LINES, None), "linearizable");
    let h = parse(JEPSEN_LINES).unwrap();
    assert_eq!(h.ops.len(), 11);
    assert_eq!(h.ops[3].process, Process::Other(":nemesis".into()));
    assert_eq!(h.ops[6].error, Some(Edn::Keyword("timeout".into())));
    assert_eq!((h.ops[0].line, h.ops[0].column), (2, 1));
    assert_eq!(h.ops[2].time, Some(2000));
    assert_eq!(guess_model(&h), EdnModel::Register);
    // The failed cas [5 6] did not happen; had it succeeded, the read of 2 would still be
    // fine, but a read of 6 is not.
    let bad = JEPSEN_LINES.replace(":f :read, :value 2}", ":f :read, :value 6}");
    assert_eq!(verdict(&bad, None), "not-linearizable");
}

#[test]
fn one_vector_of_multi_line_maps_and_tags() {
    let text = r#"[{:type :invoke,
  :f :write,
  :value 3,
  :process 0}
 #jepsen.history.Op{:type :ok, :f :write, :value 3, :process 0, :index 1}
 {:type :invoke :f :read :process 1} #_ {:ignored true}
 {:type :ok :f :read :process 1 :value 4 :time #inst "2024-01-01"}
]"#;
    let h = parse(text).unwrap();
    assert_eq!(h.ops.len(), 4);
    assert_eq!((h.ops[1].line, h.ops[1].column), (5, 2));
    assert_eq!(verdict(text, None), "not-linearizable");
    let h = parse(text).unwrap();
    let p = prepare(&h, EdnModel::Register, None).unwrap();
    let out = check_prepared(p, &Budget::default());
    let Verdict::NotLinearizable(cx) = out.verdict else {
        panic!()
    };
    assert_eq!(cx.position, "line");
    assert_eq!(cx.ops[0].call, 6, "{}", cx.render());
}

#[test]
fn nil_reads_are_unconstrained_and_init_counts() {
    let text = "{:type :invoke :f :read :process 0}\n{:type :ok :f :read :process 0 :value nil}\n\
                {:type :invoke :f :read :process 0}\n{:type :ok :f :read :process 0 :value 0}\n";
    assert_eq!(verdict(text, None), "not-linearizable");
    let h = parse(text).unwrap();
    let zero = parse_value("0").unwrap();
    let p = prepare(&h, EdnModel::Register, Some(&zero)).unwrap();
    assert_eq!(
        check_prepared(p, &Budget::default()).verdict,
        Verdict::Linearizable
    );
}

const INDEPENDENT: &str = r#"{:type :invoke, :f :write, :value [1 "a"], :process 0}
{:type :invoke, :f :append, :value [2 "x"], :process 1}
{:type :ok, :f :write, :value [1 "a"], :process 0}
{:type :ok, :f :append, :value [2 "x"], :process 1}
{:type :invoke, :f :append, :value [2 "y"], :process 1}
{:type :ok, :f :append, :value [2 "y"], :process 1}
{:type :invoke, :f :read, :value [2 nil], :process 0}
{:type :ok, :f :read, :value [2 "xy"], :process 0}
{:type :invoke, :f :get, :value [1 nil], :process 0}
{:type :ok, :f :get, :value [1 "a"], :process 0}
{:type :invoke, :f :delete, :value [1 nil], :process 2}
{:type :ok, :f :delete, :value [1 nil], :process 2}
{:type :invoke, :f :cas, :value [1 ["a" "b"]], :process 2}
{:type :fail, :f :cas, :value [1 ["a" "b"]], :process 2}
"#;

#[test]
fn independent_keys_with_append_and_delete() {
    let h = parse(INDEPENDENT).unwrap();
    assert_eq!(guess_model(&h), EdnModel::Kv);
    assert_eq!(verdict(INDEPENDENT, None), "linearizable");
    let p = prepare(&h, EdnModel::Kv, None).unwrap();
    let keys: Vec<&str> = p.partitions.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["1", "2"]);
    let bad = INDEPENDENT.replace("[2 \"xy\"]", "[2 \"yx\"]");
    assert_eq!(verdict(&bad, None), "not-linearizable");
    // A cas that succeeded after the delete is impossible.
    let bad = INDEPENDENT.replace(":type :fail, :f :cas", ":type :ok, :f :cas");
    assert_eq!(verdict(&bad, None), "not-linearizable");
}

fn err(text: &str, model: EdnModel) -> HistoryError {
    match parse(text) {
        Err(e) => e,
        Ok(h) => prepare(&h, model, None).expect_err("should be bad input"),
    }
}

#[test]
fn malformed_histories_name_line_and_column() {
    let e = err(
        "{:type :invoke :f :read :process 0}\n  {:type :ok :f :read :process 1}",
        EdnModel::Register,
    );
    assert_eq!((e.line, e.column), (2, 3));
    assert!(e.message.contains("without invoking"), "{}", e.message);
    let e = err(
        "{:type :invoke :f :read :process 0}\n{:type :invoke :f :read :process 0}",
        EdnModel::Register,
    );
    assert_eq!(e.line, 2);
    assert!(e.message.contains("in flight"), "{}", e.message);
    let e = err(
        "{:type :invoke :f :cas :value 3 :process 0}\n{:type :ok :f :cas :value 3 :process 0}",
        EdnModel::Register,
    );
    assert!(e.message.contains("[old new]"), "{}", e.message);
    let e = err(
        "{:type :invoke :f :write :value 3 :process 0}",
        EdnModel::Kv,
    );
    assert!(e.message.contains("[key value]"), "{}", e.message);
    let e = err("{:type :invoke :f :write\n :value 3", EdnModel::Register);
    assert_eq!(e.line, 2);
    assert!(e.message.contains("'}'"), "{}", e.message);
    let e = err("{:type :begin :f :read :process 0}", EdnModel::Register);
    assert!(e.message.contains(":invoke, :ok"), "{}", e.message);
    let e = err("{:type :invoke :f :frob :process 0}", EdnModel::Register);
    assert!(e.message.contains("unknown :f :frob"), "{}", e.message);
    let e = err("[{:type :invoke :f :read :process 0}", EdnModel::Register);
    assert!(e.message.contains("close the history"), "{}", e.message);
    let e = err(&"[".repeat(10_000), EdnModel::Register);
    assert!(e.message.contains("too deep"), "{}", e.message);
}

#[test]
fn writer_is_one_map_per_line_and_round_trips() {
    use crate::history::History;
    use simkv_protocols::{ClientId, NodeId, Time};
    let mut h = History::default();
    let put = Op::Put {
        key: 3,
        value: "c1.1".into(),
    };
    let cas = Op::Cas {
        key: 3,
        expected: "zz".into(),
        new: "q\"x".into(),
    };
    let c = ClientId(0);
    h.push(Time(10), c, NodeId(0), put.clone(), None);
    let done = OpResult::Ok {
        value: Some("c1.1".into()),
    };
    h.push(Time(20), c, NodeId(0), put, Some(Outcome::Ok(done)));
    h.push(Time(30), c, NodeId(0), cas.clone(), None);
    let refused = OpResult::PreconditionFailed {
        current: Some("c1.1".into()),
    };
    h.push(Time(40), c, NodeId(0), cas, Some(Outcome::Ok(refused)));
    h.push(Time(50), ClientId(1), NodeId(1), Op::Get { key: 3 }, None);
    h.push(
        Time(60),
        ClientId(1),
        NodeId(1),
        Op::Get { key: 3 },
        Some(Outcome::Info),
    );
    let text = write_history(&h);
    assert_eq!(text.lines().count(), 6);
    assert_eq!(
        text.lines().next().unwrap(),
        r#"{:index 0, :time 10000, :type :invoke, :process 0, :f :write, :value [3 "c1.1"]}"#
    );
    assert!(text.contains(r#":f :cas, :value [3 ["zz" "q\"x"]], :error :precondition-failed}"#));
    assert_eq!(text, write_history(&h), "deterministic bytes");
    let back = parse(&text).unwrap();
    assert_eq!(guess_model(&back), EdnModel::Kv);
    assert_eq!(verdict(&text, None), "linearizable");
}

/// Where, how (replace, remove, insert) and which character.
fn edit() -> impl Strategy<Value = (usize, u8, String)> {
    (any::<usize>(), 0u8..3, "[\\[\\]{}():#\\\\\" 0-9a-z;\n]")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever the bytes, reading never panics.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        if let Ok(h) = parse(&text) {
            let _ = prepare(&h, EdnModel::Register, None);
            let _ = prepare(&h, EdnModel::Kv, None);
        }
    }

    /// Nor does a real history with a few characters changed, removed or inserted.
    #[test]
    fn mutated_histories_never_panic(edits in prop::collection::vec(edit(), 1..6)) {
        let mut text: Vec<char> = INDEPENDENT.chars().collect();
        for (at, how, s) in edits {
            let i = at % (text.len() + 1);
            let c = s.chars().next().unwrap_or(' ');
            match how {
                0 if i < text.len() => text[i] = c,
                1 if i < text.len() => { text.remove(i); }
                _ => text.insert(i, c),
            }
        }
        let text: String = text.into_iter().collect();
        if let Ok(h) = parse(&text) {
            for model in [EdnModel::Register, EdnModel::Kv] {
                if let Ok(p) = prepare(&h, model, None) {
                    let _ = check_prepared(p, &Budget::default());
                }
            }
        }
    }
}

/// Elle's list-append: txns of appends and reads of whole lists. The first history is
/// strictly serializable (T1 then T2); in the second, T2 read T1's append to key 1 but not
/// its append to key 2, although T1 appended both at once: not atomic.
#[test]
fn elle_list_append_txns_are_checked_for_strict_serializability() {
    let good = r#"{:type :invoke, :process 0, :f :txn, :value [[:append 1 1] [:append 2 1]]}
{:type :ok, :process 0, :f :txn, :value [[:append 1 1] [:append 2 1]]}
{:type :invoke, :process 1, :f :txn, :value [[:r 1 nil] [:r 2 nil] [:append 2 2]]}
{:type :ok, :process 1, :f :txn, :value [[:r 1 [1]] [:r 2 [1]] [:append 2 2]]}
{:type :invoke, :process 0, :f :txn, :value [[:r 2 nil]]}
{:type :ok, :process 0, :f :txn, :value [[:r 2 [1 2]]]}
"#;
    let h = parse(good).unwrap();
    assert_eq!(guess_model(&h), EdnModel::Kv);
    let p = prepare(&h, EdnModel::Kv, None).unwrap();
    assert_eq!(p.partitions.len(), 1);
    assert_eq!(p.partitions[0].key, "1+2");
    assert_eq!(verdict(good, None), "linearizable");
    let torn = good.replace("[[:r 1 [1]] [:r 2 [1]]", "[[:r 1 [1]] [:r 2 nil]");
    assert_eq!(verdict(&torn, None), "not-linearizable");
    // Reading the last list before the append that completed earlier: stale.
    let stale = good.replace(":value [[:r 2 [1 2]]]", ":value [[:r 2 [1]]]");
    assert_eq!(verdict(&stale, None), "not-linearizable");
}

/// Elle's rw-register: writes and reads of integers; write skew between two concurrent txns
/// is caught, an info txn may or may not have happened, a failed one did not.
#[test]
fn rw_register_txns_write_skew_info_and_fail() {
    let skew = r#"{:type :invoke, :process 0, :f :txn, :value [[:r 1 nil] [:w 2 10]]}
{:type :invoke, :process 1, :f :txn, :value [[:r 2 nil] [:w 1 20]]}
{:type :ok, :process 0, :f :txn, :value [[:r 1 nil] [:w 2 10]]}
{:type :ok, :process 1, :f :txn, :value [[:r 2 nil] [:w 1 20]]}
"#;
    assert_eq!(verdict(skew, None), "not-linearizable");
    // If T2 read T1's write, T1 then T2 explains both.
    let serial = skew.replacen(
        "{:type :ok, :process 1, :f :txn, :value [[:r 2 nil] [:w 1 20]]}",
        "{:type :ok, :process 1, :f :txn, :value [[:r 2 10] [:w 1 20]]}",
        1,
    );
    assert_eq!(verdict(&serial, None), "linearizable");
    let failed = r#"{:type :invoke, :process 0, :f :txn, :value [[:w 1 5] [:w 2 5]]}
{:type :fail, :process 0, :f :txn, :value [[:w 1 5] [:w 2 5]]}
{:type :invoke, :process 1, :f :txn, :value [[:r 1 nil]]}
{:type :ok, :process 1, :f :txn, :value [[:r 1 5]]}
"#;
    assert_eq!(verdict(failed, None), "not-linearizable");
    let info = failed.replace(":type :fail", ":type :info");
    assert_eq!(verdict(&info, None), "linearizable");
}

#[test]
fn malformed_txns_name_line_and_column() {
    let cases = [
        (
            "{:type :invoke, :process 0, :f :txn, :value 3}\n",
            ":txn expects :value [[:r k v]",
        ),
        (
            "{:type :invoke, :process 0, :f :txn, :value [[:r 1]]}\n",
            "found the operation [:r 1]",
        ),
        (
            "{:type :invoke, :process 0, :f :txn, :value [[:inc 1 2]]}\n",
            "found the function inc",
        ),
        (
            "{:type :invoke, :process 0, :f :txn, :value [[:r 1 nil]]}\n\
             {:type :ok, :process 0, :f :txn, :value [[:r 2 3]]}\n",
            "other operations than it invoked",
        ),
    ];
    for (text, want) in cases {
        let h = parse(text).unwrap();
        let e = prepare(&h, EdnModel::Kv, None).unwrap_err();
        assert!(e.message.contains(want), "{text}: {}", e.message);
        assert_eq!(e.column, 1);
    }
}

/// simkv's own txns written as EDN read back with the same meaning (string appends stay
/// string appends).
#[test]
fn simkv_txns_round_trip_through_edn() {
    use crate::history::History;
    use simkv_protocols::{ClientId, NodeId, Time};
    let txn = Op::Txn {
        ops: vec![
            Op::Get { key: 1 },
            Op::Append {
                key: 2,
                value: "x;".into(),
            },
        ],
    };
    let done = |read: Option<&str>| {
        let read = match read {
            Some(v) => OpResult::Ok {
                value: Some(v.into()),
            },
            None => OpResult::NotFound,
        };
        let appended = OpResult::Ok {
            value: Some("x;".into()),
        };
        Outcome::Ok(OpResult::Txn {
            results: vec![read, appended],
        })
    };
    let mut h = History::default();
    let (c, n) = (ClientId(0), NodeId(0));
    h.push(Time(10), c, n, txn.clone(), None);
    h.push(Time(20), c, n, txn.clone(), Some(done(None)));
    let read2 = Op::Get { key: 2 };
    h.push(Time(30), c, n, read2.clone(), None);
    let ok = OpResult::Ok {
        value: Some("x;".into()),
    };
    h.push(Time(40), c, n, read2, Some(Outcome::Ok(ok)));
    let text = write_history(&h);
    assert!(
        text.contains(r#":f :txn, :value [[:r 1 nil] [:append 2 "x;"]]"#),
        "{text}"
    );
    assert_eq!(verdict(&text, None), "linearizable");
    let mut bad = h.clone();
    bad.events[1].outcome = Some(done(Some("zz")));
    assert_eq!(verdict(&write_history(&bad), None), "not-linearizable");
}
