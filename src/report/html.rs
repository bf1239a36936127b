//! `--html`: the report as one self-contained page. The JSON report (the very value `--json` writes), the percentile
//! curves of its serialized histograms and its warnings are embedded as data beside the vendored uPlot and the page's
//! own script and styles (`assets/`), which draw the tables and charts in the browser. Nothing in it is fetched: it
//! opens offline, as a CI artifact, years later.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;

use super::{Report, histograms, warnings};

/// The charting library, vendored unmodified under `assets/uplot/` (see its README for the source and checksum).
pub const UPLOT_VERSION: &str = "1.6.32";
const UPLOT_JS: &str = include_str!("../../assets/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../assets/uplot/uPlot.min.css");
const PAGE_JS: &str = include_str!("../../assets/report/report.js");
const PAGE_CSS: &str = include_str!("../../assets/report/report.css");

/// The histograms drawn as percentile curves, by their `histograms` name, and the factor to their unit
/// (`tokens_per_chunk` is kept in hundredths).
const CURVES: [(&str, f64); 7] = [
    ("first_event", 1.0),
    ("ttft", 1.0),
    ("gap", 1.0),
    ("itl", 1.0),
    ("stream", 1.0),
    ("events_per_stream", 1.0),
    ("tokens_per_chunk", 0.01),
];

/// Points per decade of the percentile axis ("nines": 0 is 0 %, 1 is 90 %, 2 is 99 %, ... 4 is 99.99 %), so the tail
/// gets as many points as the body.
const POINTS_PER_NINE: u32 = 20;
const NINES: u32 = 4;

/// What the page's script reads: everything it shows, worked out here.
#[derive(Serialize)]
struct PageData<'a> {
    report: &'a Value,
    warnings: Vec<String>,
    /// Each curve as `[nines, value]` points, in the histogram's unit.
    distributions: BTreeMap<&'static str, Vec<[f64; 2]>>,
}

/// The page for `report`, drawn from `json`, the same report as `--json` writes it (a run's, a merged one with its
/// timeline, or one read back from a file with whatever this version's `Report` does not know). Fails when one of
/// its histograms cannot be read, naming it.
pub fn render(report: &Report, json: &Value) -> Result<String, String> {
    let data = PageData { report: json, warnings: warnings::of(report), distributions: distributions(report)? };
    let title = escape(&format!("ssebench: {}", report.target));
    let mut page = String::with_capacity(UPLOT_JS.len() + PAGE_JS.len() + 64 * 1024);
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    page.push_str(&format!("<meta name=\"generator\" content=\"ssebench {}\">\n", env!("CARGO_PKG_VERSION")));
    page.push_str(&format!("<title>{title}</title>\n<style>\n{UPLOT_CSS}\n</style>\n<style>\n{PAGE_CSS}</style>\n"));
    page.push_str("</head>\n<body>\n<header class=\"top\" id=\"top\">\n");
    page.push_str(&format!("<h1>ssebench report <span class=\"target\">{}</span></h1>\n", escape(&report.target)));
    page.push_str("</header>\n<nav><a href=\"#summary\">Summary</a><a href=\"#over-time\">Over time</a>");
    page.push_str("<a href=\"#distributions\">Distributions</a>");
    if !report.stages.is_empty() {
        page.push_str("<a href=\"#stages\">Stages</a>");
    } else if report.figures.llm.as_ref().is_some_and(|l| !l.turns.is_empty()) {
        page.push_str("<a href=\"#stages\">Turns</a>");
    }
    page.push_str("</nav>\n<main id=\"main\">\n<noscript><p>This report draws its tables and charts with JavaScript; ");
    page.push_str("the same figures are in the JSON report (<code>--json</code>).</p></noscript>\n</main>\n");
    page.push_str(&format!(
        "<footer>Written by ssebench {}. Charts by uPlot {UPLOT_VERSION} (MIT), embedded: this file needs no \
         network.</footer>\n",
        env!("CARGO_PKG_VERSION")
    ));
    page.push_str("<script id=\"ssebench-data\" type=\"application/json\">");
    page.push_str(&script_json(&data));
    page.push_str("</script>\n<script>\n");
    page.push_str(UPLOT_JS);
    page.push_str("\n</script>\n<script>\n");
    page.push_str(PAGE_JS);
    page.push_str("</script>\n</body>\n</html>\n");
    Ok(page)
}

/// The percentile curves of the report's histograms that have samples.
fn distributions(report: &Report) -> Result<BTreeMap<&'static str, Vec<[f64; 2]>>, String> {
    let Some(serialized) = &report.figures.histograms else { return Ok(BTreeMap::new()) };
    let mut curves = BTreeMap::new();
    for (name, factor) in CURVES {
        let Some(text) = serialized.get(name) else { continue };
        let h = histograms::decode(text).map_err(|e| format!("the report's histogram {name}: {e}"))?;
        if !h.is_empty() {
            curves.insert(name, curve(&h, factor));
        }
    }
    Ok(curves)
}

/// `[nines, value]` from the minimum (0 nines) to the 99.99th percentile, `POINTS_PER_NINE` per decade.
fn curve(h: &Histogram<u64>, factor: f64) -> Vec<[f64; 2]> {
    (0..=NINES * POINTS_PER_NINE)
        .map(|i| {
            let nines = f64::from(i) / f64::from(POINTS_PER_NINE);
            let value = match i {
                0 => h.min(),
                _ => h.value_at_quantile(1.0 - 10f64.powf(-nines)),
            };
            [nines, value as f64 * factor]
        })
        .collect()
}

/// JSON to sit inside `<script>`: `<` written as `\u003c`, so no string in it (a target, a header, a failure class)
/// can close the element. JSON has `<` only inside strings, where the escape reads back the same.
fn script_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("the page data serializes").replace('<', "\\u003c")
}

/// Text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_curve_runs_from_the_minimum_to_four_nines() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 1_000_000, 3).unwrap();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        let c = curve(&h, 1.0);
        assert_eq!(c.len(), (NINES * POINTS_PER_NINE + 1) as usize);
        assert_eq!(c[0], [0.0, 1.0]);
        let at = |nines: f64| c.iter().find(|p| (p[0] - nines).abs() < 1e-9).unwrap()[1];
        assert!((at(1.0) - 9_000.0).abs() <= 9.0, "p90 {}", at(1.0));
        assert!((at(2.0) - 9_900.0).abs() <= 10.0, "p99 {}", at(2.0));
        assert!(c.windows(2).all(|w| w[0][0] < w[1][0] && w[0][1] <= w[1][1]), "rising");
        assert_eq!(curve(&h, 0.01)[0], [0.0, 0.01]);
    }

    #[test]
    fn no_string_in_the_data_can_close_the_script() {
        let value = serde_json::json!({"target": "http://x/</script><script>alert(1)</script>"});
        let text = script_json(&value);
        assert!(!text.contains('<'), "{text}");
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
    }
}
