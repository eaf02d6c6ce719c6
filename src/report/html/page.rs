//! The page shell and the HTML pieces every section uses: escaping, tables, charts,
//! sections. Everything is inline (CSS, SVG), so the file opens without network access and
//! prints with its charts.

use std::fmt::Write as _;

/// One section of the page: an anchor, a heading and its HTML.
#[derive(Debug, Clone)]
pub struct Section {
    /// The anchor (`id`) of the section, also its CSS class.
    pub id: &'static str,
    /// The heading.
    pub title: String,
    /// The HTML inside it.
    pub body: String,
}

impl Section {
    /// A section with `body`.
    pub fn new(id: &'static str, title: impl Into<String>, body: String) -> Self {
        Section {
            id,
            title: title.into(),
            body,
        }
    }
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1100px;padding:1em 2em;color:#222}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
h3{font-size:1.05em;margin-bottom:.3em}
nav a{margin-right:1em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}td{white-space:nowrap}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.chart svg,.topology svg{max-width:100%;height:auto}
.chart{margin:.5em 0 1.5em}
.note{color:#555;font-size:.9em}
.warning{background:#fff4e5;border-left:4px solid #f0a000;padding:.3em .6em;margin:.3em 0}
.sig{font-weight:bold}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto}
@media print{nav{display:none}section{break-inside:avoid-page}.chart{break-inside:avoid}body{max-width:none}}
";

/// The whole page: `title`, a line under it, a table of contents and the sections.
pub fn render(title: &str, subtitle: &str, sections: &[Section]) -> String {
    let mut s = String::with_capacity(64 * 1024);
    s.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(s, "<title>{}</title>", escape(title));
    let _ = writeln!(s, "<style>{STYLE}</style>\n</head>\n<body>");
    let _ = writeln!(
        s,
        "<h1>{}</h1>\n<p class=\"note\">{}</p>",
        escape(title),
        escape(subtitle)
    );
    s.push_str("<nav>");
    for sec in sections {
        let _ = write!(s, "<a href=\"#{}\">{}</a>", sec.id, escape(&sec.title));
    }
    s.push_str("</nav>\n");
    for sec in sections {
        let _ = writeln!(
            s,
            "<section id=\"{0}\" class=\"{0}\">\n<h2>{1}</h2>\n{2}\n</section>",
            sec.id,
            escape(&sec.title),
            sec.body
        );
    }
    s.push_str("</body>\n</html>\n");
    s
}

/// `text` with the characters HTML gives a meaning escaped.
pub fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&#39;"),
            c => s.push(c),
        }
    }
    s
}

/// A table: a header row and rows of cells, all escaped.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::from("<table>\n<thead><tr>");
    for h in header {
        let _ = write!(s, "<th>{}</th>", escape(h));
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        s.push_str("<tr>");
        for c in row {
            let _ = write!(s, "<td>{}</td>", escape(c));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody>\n</table>\n");
    s
}

/// A chart: an SVG document from [`crate::report::plot`], inlined in a figure.
pub fn chart(svg: &str) -> String {
    // The SVG backend writes an XML declaration first, which has no place inside HTML.
    let body = match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    };
    format!("<figure class=\"chart\">{body}</figure>\n")
}

/// A paragraph of warnings, each escaped.
pub fn warnings(list: &[String]) -> String {
    if list.is_empty() {
        return "<p>No warnings.</p>\n".into();
    }
    list.iter()
        .map(|w| format!("<p class=\"warning\">{}</p>\n", escape(w)))
        .collect()
}

/// A paragraph of note text, escaped.
pub fn note(text: &str) -> String {
    format!("<p class=\"note\">{}</p>\n", escape(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_every_section_escaped_and_linked() {
        let page = render(
            "a <b>",
            "seed 1",
            &[Section::new(
                "headline",
                "Headline & more",
                table(&["x"], &[vec!["<1>".into()]]),
            )],
        );
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("<title>a &lt;b&gt;</title>"));
        assert!(page.contains("<a href=\"#headline\">Headline &amp; more</a>"));
        assert!(page.contains("<section id=\"headline\""));
        assert!(page.contains("<td>&lt;1&gt;</td>"));
        assert!(!page.contains("http://") && !page.contains("https://"));
    }

    #[test]
    fn a_chart_drops_the_xml_declaration() {
        let c = chart("<?xml version=\"1.0\"?>\n<svg width=\"1\"></svg>");
        assert_eq!(
            c,
            "<figure class=\"chart\"><svg width=\"1\"></svg></figure>\n"
        );
    }
}
