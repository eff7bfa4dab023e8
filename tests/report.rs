//! `simkv report`: deterministic bytes, a pinned summary, refusing a busy directory, and the
//! page checked in a real browser (headless Chromium).

use crate::util::{root, simkv, stderr};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).expect("the report directory") {
        let e = e.expect("an entry");
        let name = e.file_name().to_string_lossy().to_string();
        out.insert(name, std::fs::read(e.path()).expect("a report file"));
    }
    out
}

fn report(args: &[&str], out: &Path) {
    let out_s = out.to_string_lossy().to_string();
    let mut all: Vec<&str> = vec!["report"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", &out_s]);
    let o = simkv(&all);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn report_is_the_same_bytes_twice_and_whatever_the_jobs() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let args = [
        "scenarios/partition.toml",
        "--protocols",
        "raft,sloppy",
        "--seeds",
        "1..=2",
    ];
    report(&args, &a);
    let mut with_jobs = args.to_vec();
    with_jobs.extend_from_slice(&["--jobs", "2"]);
    report(&with_jobs, &b);
    let (fa, fb) = (files(&a), files(&b));
    assert!(fa.contains_key("index.html") && fa.contains_key("summary.md"));
    assert!(fa.contains_key("spacetime-raft.svg") && fa.contains_key("latency.svg"));
    // sloppy is not linearizable under a partition: its counterexample page is linked.
    assert!(
        fa.contains_key("counterexample-sloppy.html"),
        "{:?}",
        fa.keys()
    );
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (name, bytes) in &fa {
        assert!(fb[name] == *bytes, "{name} differs between two runs");
    }
    let index = String::from_utf8_lossy(&fa["index.html"]).to_string();
    let namespaces = index.matches("http://www.w3.org/2000/svg").count();
    assert_eq!(
        index.matches("http://").count(),
        namespaces,
        "only SVG namespaces"
    );
    assert!(!index.contains("https://"), "no network fetches");
    assert!(index.contains("--seeds 1..=2"), "the command is printed");
}

#[test]
fn report_refuses_a_directory_that_holds_files() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    std::fs::write(tmp.path().join("mine.txt"), "keep").expect("a file");
    let out = tmp.path().to_string_lossy().to_string();
    let o = simkv(&[
        "report",
        "scenarios/partition.toml",
        "--protocols",
        "raft",
        "--seeds",
        "1",
        "--out",
        &out,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    let o = simkv(&[
        "report",
        "scenarios/partition.toml",
        "--seeds",
        "5..=2",
        "--out",
        &out,
    ]);
    assert_eq!(o.status.code(), Some(2));
}

/// The summary of partition.toml at seeds 1..=2, every protocol, pinned: the numbers and the
/// conclusions drawn from them cannot drift unnoticed. Then the page opens in Chromium.
#[test]
fn report_summary_of_partition_is_pinned_and_the_page_renders_in_chromium() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let dir = tmp.path().join("partition");
    report(
        &[
            "scenarios/partition.toml",
            "--seeds",
            "1..=2",
            "--jobs",
            "2",
        ],
        &dir,
    );
    let summary = std::fs::read_to_string(dir.join("summary.md")).expect("summary.md");
    insta::assert_snapshot!(summary);
    browser_check(&dir, "partition");
}

/// Renders `dir/index.html` in headless Chromium: no console error or missing resource,
/// every figure with a non-empty box; saves a screenshot under target/report-screenshots/.
/// Without /usr/bin/chromium the check is skipped, unless SIMKV_BROWSER_TEST is set.
fn browser_check(dir: &Path, name: &str) {
    let chromium = Path::new("/usr/bin/chromium");
    if !chromium.exists() {
        if std::env::var_os("SIMKV_BROWSER_TEST").is_some() {
            panic!("SIMKV_BROWSER_TEST is set but /usr/bin/chromium is missing");
        }
        eprintln!(
            "note: /usr/bin/chromium is missing: the browser check of the report is skipped \
             (apt-get install -y chromium; set SIMKV_BROWSER_TEST=1 to make it required)"
        );
        return;
    }
    // A copy of the page with a probe that writes what it measured into the DOM, which
    // --dump-dom prints once the page has loaded.
    let index = std::fs::read_to_string(dir.join("index.html")).expect("index.html");
    let probe = "<script>window.addEventListener('load',function(){var bad=[];\
        var all=document.querySelectorAll('svg,img');\
        all.forEach(function(e,i){var r=e.getBoundingClientRect();\
        if(!(r.width>0&&r.height>0))bad.push(e.tagName+'#'+i+' empty box');\
        if(e.tagName==='IMG'&&!(e.complete&&e.naturalWidth>0))bad.push('img '+e.src+' missing');});\
        var p=document.createElement('pre');p.id='probe';\
        p.textContent='PROBE figures='+all.length+' bad='+JSON.stringify(bad);\
        document.body.appendChild(p);});</script></body>";
    let probed = index.replace("</body>", probe);
    let page = dir.join("probe.html");
    std::fs::write(&page, probed).expect("probe.html");
    let url = format!("file://{}", page.display());
    let profile = tempfile::tempdir().expect("a profile dir");
    let chrome = |extra: &[&str]| {
        let mut c = Command::new(chromium);
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--window-size=1400,2600",
        ]);
        c.arg(format!("--user-data-dir={}", profile.path().display()));
        c.args(extra).arg(&url);
        c.output().expect("chromium runs")
    };
    let dom = chrome(&["--dump-dom"]);
    let (out, err) = (
        String::from_utf8_lossy(&dom.stdout).to_string(),
        String::from_utf8_lossy(&dom.stderr).to_string(),
    );
    let line = out
        .lines()
        .find(|l| l.contains("<pre id=\"probe\">PROBE figures="))
        .unwrap_or_else(|| panic!("the probe did not run; stderr:\n{err}"));
    assert!(line.contains("bad=[]"), "{line}");
    let line = line.split("<pre id=\"probe\">").nth(1).unwrap_or(line);
    let figures: usize = line
        .split("figures=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert!(figures >= 5, "{line}");
    for needle in [
        "Uncaught",
        ":CONSOLE",
        "ERR_FILE_NOT_FOUND",
        "Failed to load resource",
    ] {
        let hit = err.lines().find(|l| l.contains(needle));
        assert!(hit.is_none(), "console error or missing resource: {hit:?}");
    }
    let shots = root().join("target").join("report-screenshots");
    std::fs::create_dir_all(&shots).expect("target/report-screenshots");
    let shot = shots.join(format!("{name}.png"));
    let arg = format!("--screenshot={}", shot.display());
    let o = chrome(&[&arg]);
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    eprintln!("screenshot: {}", shot.display());
}
