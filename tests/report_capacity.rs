//! `capacity --out DIR` and `--report FILE`: the capacity.json the search writes, and the
//! report page of a capacity search (its answer, charts of each objective and of the
//! utilization against the load, every load tried).

use crate::support::{scalesim, stdout_ok};
use serde_json::Value;

const SECTIONS: [&str; 6] = [
    "search",
    "answer",
    "topology",
    "objectives",
    "utilization",
    "levels",
];

fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let tag = format!("<section id=\"{id}\"");
    let start = html.find(&tag).unwrap_or_else(|| panic!("no section {id}"));
    &html[start..start + html[start..].find("</section>").unwrap()]
}

#[test]
fn a_capacity_search_writes_its_folder_and_report() {
    let dir = std::env::temp_dir().join(format!("scalesim-capacity-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = dir.join("search");
    let page = dir.join("direct.html");
    let table = stdout_ok(
        scalesim()
            .args([
                "capacity",
                "models/horizontal-lb.json",
                "--slo",
                "p99<50ms",
                "--replications",
                "2",
                "-q",
                "--out",
            ])
            .arg(&out)
            .arg("--report")
            .arg(&page),
    );
    let table = String::from_utf8(table).unwrap();
    let written: Value =
        serde_json::from_slice(&std::fs::read(out.join("capacity.json")).unwrap()).unwrap();
    assert_eq!(written["seed"], 1);
    assert_eq!(written["replications"], 2);
    let levels = written["capacity"]["levels"].as_array().unwrap();
    assert!(levels.len() >= 3, "{levels:?}");
    assert!(out.join("topology.dot").is_file());

    stdout_ok(scalesim().arg("report").arg(&out));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    // The page written by `--report` is the one `report DIR` makes.
    assert_eq!(html, std::fs::read_to_string(&page).unwrap());
    for id in SECTIONS {
        let body = section(&html, id);
        assert!(
            body.contains("<table") || body.contains("<svg") || body.contains("<p"),
            "{id} is empty"
        );
    }
    // The answer is the table's, word for word.
    let answer = table
        .lines()
        .find(|l| l.starts_with("highest load meeting"))
        .expect("the search found a capacity");
    let shown = section(&html, "answer")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    assert!(shown.contains(answer), "{answer}\n{shown}");
    // A chart per objective, one of utilization, each with a line drawn.
    for id in ["objectives", "utilization"] {
        let body = section(&html, id);
        assert!(body.contains("<figure class=\"chart\"><svg"), "{id}");
        assert!(body.contains("<polyline") || body.contains("<path"), "{id}");
    }
    // Every load tried is a row of the table.
    let rows = section(&html, "levels").matches("<tr>").count();
    assert_eq!(rows, levels.len() + 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unwritable_capacity_folder_fails_before_the_search() {
    let o = scalesim()
        .args([
            "capacity",
            "models/horizontal-lb.json",
            "--slo",
            "p99<50ms",
            "-q",
            "--out",
            "/dev/null/capacity",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/dev/null/capacity"), "{err}");
    assert!(o.stdout.is_empty());
}
