//! Aggregation (medians, spread, ratios measured side by side in the same round) and the
//! outputs: the terminal/Markdown table, `results.json` and `chart.svg`.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use crate::client::Metrics;
use crate::run::Sizes;

/// One measurement: a workload on a server in one round.
pub struct Record {
    pub round: usize,
    pub workload: String,
    pub target: String,
    pub result: Result<Metrics, String>,
}

/// What the run was and where it ran.
pub struct RunInfo {
    pub command: String,
    pub quick: bool,
    pub rounds: usize,
    pub server_cpu: Option<usize>,
    pub client_cpu: Option<usize>,
    pub load_before: String,
    pub load_after: String,
    pub cpu_model: String,
    pub kernel: String,
    pub peers: Vec<(String, String)>,
    pub sizes: Sizes,
    pub started_unix: u64,
    pub seconds: f64,
}

/// Median, extremes and the per-round values of one metric.
#[derive(Debug, Clone)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub values: Vec<f64>,
}

impl Stat {
    fn of(mut values: Vec<f64>) -> Option<Stat> {
        values.retain(|v| v.is_finite());
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Stat {
            median,
            min: sorted[0],
            max: sorted[n - 1],
            values,
        })
    }

    /// (max - min) / |median|, in percent.
    pub fn spread_pct(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            (self.max - self.min) / self.median.abs() * 100.0
        }
    }

    fn json(&self) -> Value {
        json!({
            "median": self.median,
            "min": self.min,
            "max": self.max,
            "spread_pct": self.spread_pct(),
            "values": self.values,
        })
    }
}

/// One line of the results: a workload on a server, over every round.
pub struct Row {
    pub workload: String,
    pub target: String,
    pub rounds_ok: usize,
    pub failures: Vec<String>,
    pub metrics: Vec<(String, Stat)>,
    /// The server this row is compared with (same runtime; tokio's for Bun and Node).
    pub baseline: Option<String>,
    /// Cost metric / the baseline's, per round, then the median.
    pub cost_vs_baseline: Option<Stat>,
    /// Rate metric / the baseline's.
    pub rate_vs_baseline: Option<Stat>,
    /// Cost metric / Bun's.
    pub cost_vs_bun: Option<Stat>,
    /// Rate metric / Bun's.
    pub rate_vs_bun: Option<Stat>,
    /// For `five-writes`: cost / the same server's `one-write` cost.
    pub five_vs_one: Option<Stat>,
    /// For the stream view (`sansock-stream/<rt>`): cost / the handler API's (`sansock/<rt>`).
    pub cost_vs_handler: Option<Stat>,
    /// For the stream view: rate / the handler API's.
    pub rate_vs_handler: Option<Stat>,
}

impl Row {
    pub fn metric(&self, name: &str) -> Option<&Stat> {
        self.metrics.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }
}

/// The rate (higher is better) and cost (lower is better) metric of a workload.
pub fn primary(workload: &str) -> (Option<&'static str>, &'static str) {
    match workload {
        "stream" | "tls-stream" => (Some("mib_per_s"), "cpu_s_per_gib"),
        "idle" | "tls-idle" => (None, "rss_bytes_per_conn"),
        _ => (Some("ops_per_s"), "cpu_us_per_op"),
    }
}

/// The server `target` is compared with on `workload`: the hand-written echo on the same
/// runtime; tokio's for Bun and Node, and for every server on the TLS workloads (tokio-rustls
/// is the only TLS baseline).
fn baseline_of(target: &str, workload: &str, targets: &[String]) -> Option<String> {
    let candidate = match target.split_once('/') {
        Some(("baseline", _)) => return None,
        Some(("sansock" | "sansock-stream", rt)) if !crate::run::is_tls(workload) => {
            format!("baseline/{rt}")
        }
        _ => "baseline/tokio".to_owned(),
    };
    targets.contains(&candidate).then_some(candidate)
}

/// The handler-API server the stream view `target` is compared with: `sansock/<rt>` for
/// `sansock-stream/<rt>`, when it was measured.
fn handler_of(target: &str, targets: &[String]) -> Option<String> {
    let rt = target.strip_prefix("sansock-stream/")?;
    let candidate = format!("sansock/{rt}");
    targets.contains(&candidate).then_some(candidate)
}

fn value_of(
    records: &[Record],
    round: usize,
    workload: &str,
    target: &str,
    metric: &str,
) -> Option<f64> {
    records
        .iter()
        .find(|r| r.round == round && r.workload == workload && r.target == target)
        .and_then(|r| r.result.as_ref().ok())
        .and_then(|m| m.iter().find(|(n, _)| *n == metric).map(|(_, v)| *v))
}

/// Per-round ratios `a / b` of `metric`, paired by round, as a [`Stat`].
fn paired_ratio(
    records: &[Record],
    (wa, ta): (&str, &str),
    (wb, tb): (&str, &str),
    metric: &str,
) -> Option<Stat> {
    let rounds = records.iter().map(|r| r.round).max()? + 1;
    let ratios = (0..rounds)
        .filter_map(|r| {
            let a = value_of(records, r, wa, ta, metric)?;
            let b = value_of(records, r, wb, tb, metric)?;
            (b != 0.0).then_some(a / b)
        })
        .collect();
    Stat::of(ratios)
}

pub fn aggregate(records: &[Record], workloads: &[String], targets: &[String]) -> Vec<Row> {
    let mut rows = Vec::new();
    for workload in workloads {
        let (rate, cost) = primary(workload);
        for target in targets {
            let mine: Vec<&Record> = records
                .iter()
                .filter(|r| &r.workload == workload && &r.target == target)
                .collect();
            if mine.is_empty() {
                // This server has no row for this workload (no TLS baseline on smol, say).
                continue;
            }
            let failures: Vec<String> = mine
                .iter()
                .filter_map(|r| r.result.as_ref().err().cloned())
                .collect();
            let oks: Vec<&Metrics> = mine.iter().filter_map(|r| r.result.as_ref().ok()).collect();
            let mut names: Vec<&'static str> = Vec::new();
            for m in &oks {
                for (n, _) in m.iter() {
                    if !names.contains(n) {
                        names.push(n);
                    }
                }
            }
            let metrics = names
                .iter()
                .filter_map(|n| {
                    let vals = oks
                        .iter()
                        .filter_map(|m| m.iter().find(|(k, _)| k == n).map(|(_, v)| *v))
                        .collect();
                    Stat::of(vals).map(|s| (n.to_string(), s))
                })
                .collect();
            let baseline = baseline_of(target, workload, targets);
            let handler = handler_of(target, targets);
            let vs = |other: &str, metric: &str| {
                paired_ratio(records, (workload, target), (workload, other), metric)
            };
            let bun = targets.iter().any(|t| t == "bun") && target != "bun";
            rows.push(Row {
                workload: workload.clone(),
                target: target.clone(),
                rounds_ok: oks.len(),
                failures,
                metrics,
                cost_vs_baseline: baseline.as_deref().and_then(|b| vs(b, cost)),
                rate_vs_baseline: baseline
                    .as_deref()
                    .and_then(|b| rate.and_then(|r| vs(b, r))),
                cost_vs_bun: bun.then(|| vs("bun", cost)).flatten(),
                rate_vs_bun: bun.then(|| rate.and_then(|r| vs("bun", r))).flatten(),
                five_vs_one: (workload == "five-writes")
                    .then(|| {
                        paired_ratio(
                            records,
                            ("five-writes", target),
                            ("one-write", target),
                            "cpu_us_per_op",
                        )
                    })
                    .flatten(),
                cost_vs_handler: handler.as_deref().and_then(|h| vs(h, cost)),
                rate_vs_handler: handler.as_deref().and_then(|h| rate.and_then(|r| vs(h, r))),
                baseline,
            });
        }
    }
    rows
}

fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn fmt_rate(workload: &str, v: f64) -> String {
    match workload {
        "stream" | "tls-stream" => format!("{v:.0} MiB/s"),
        "churn" => format!("{} conn/s", si(v)),
        "tls-handshake-p256" | "tls-handshake-rsa2048" | "tls-resume" => format!("{} hs/s", si(v)),
        _ => format!("{} rt/s", si(v)),
    }
}

fn fmt_cost(workload: &str, v: f64) -> String {
    match workload {
        "stream" | "tls-stream" => format!("{v:.3} s/GiB"),
        "idle" | "tls-idle" => format!("{v:.0} B/conn"),
        _ => format!("{v:.2} µs"),
    }
}

/// One line of progress for a finished measurement.
pub fn summary(workload: &str, m: &Metrics) -> String {
    let get = |n: &str| m.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
    let (rate, cost) = primary(workload);
    let mut s = String::new();
    if let Some(v) = rate.and_then(get) {
        s += &fmt_rate(workload, v);
        s += ", ";
    }
    if let Some(v) = get(cost) {
        s += &fmt_cost(workload, v);
        s += if primary(workload).0.is_none() {
            " RSS"
        } else {
            " server CPU/op"
        };
    }
    if let Some(v) = get("heap_bytes_per_conn") {
        let _ = write!(s, ", {v:.0} B/conn heap");
    }
    if let Some(v) = get("allocs_per_event") {
        let _ = write!(s, ", {v:.3} allocs/event");
    }
    if let Some(v) = get("resumed_fraction").filter(|_| workload == "tls-resume") {
        let _ = write!(s, ", {:.1} % resumed", v * 100.0);
    }
    if let Some(v) = get("errors").filter(|&v| v > 0.0) {
        let _ = write!(s, ", {v:.0} errors");
    }
    if let Some(v) = get("client_cpu_util") {
        let _ = write!(s, ", load generator CPU {:.0} %", v * 100.0);
    }
    s
}

fn ratio(s: &Option<Stat>) -> String {
    s.as_ref()
        .map_or("".into(), |s| format!("{:.2}x", s.median))
}

/// The Markdown table (also printed at the end of the run).
pub fn table(rows: &[Row], info: &RunInfo) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| workload | server | rate | spread | server cost | spread | cost vs baseline | rate vs baseline | cost vs Bun | rate vs Bun | allocs/event |"
    );
    let _ = writeln!(t, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let (rate, cost) = primary(&row.workload);
        if row.rounds_ok == 0 {
            let _ = writeln!(
                t,
                "| {} | {} | failed: {} | | | | | | | | |",
                row.workload,
                row.target,
                row.failures.first().map_or("", String::as_str)
            );
            continue;
        }
        let rate_stat = rate.and_then(|r| row.metric(r));
        let cost_stat = row.metric(cost);
        let mut cost_cell = cost_stat.map_or(String::new(), |s| fmt_cost(&row.workload, s.median));
        if let Some(h) = row.metric("heap_bytes_per_conn") {
            let _ = write!(cost_cell, " (heap {:.0} B)", h.median);
        }
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.workload,
            row.target,
            rate_stat.map_or("".into(), |s| fmt_rate(&row.workload, s.median)),
            rate_stat.map_or("".into(), |s| format!("{:.0}%", s.spread_pct())),
            cost_cell,
            cost_stat.map_or("".into(), |s| format!("{:.0}%", s.spread_pct())),
            ratio(&row.cost_vs_baseline),
            ratio(&row.rate_vs_baseline),
            ratio(&row.cost_vs_bun),
            ratio(&row.rate_vs_bun),
            row.metric("allocs_per_event")
                .map_or("".into(), |s| format!("{:.3}", s.median)),
        );
    }
    let five: Vec<&Row> = rows.iter().filter(|r| r.five_vs_one.is_some()).collect();
    if !five.is_empty() {
        let _ = writeln!(t);
        let _ = writeln!(
            t,
            "| five 1-byte writes vs one 5-byte write (server CPU per reply) | ratio | spread |"
        );
        let _ = writeln!(t, "|---|---:|---:|");
        for row in five {
            let s = row.five_vs_one.as_ref().expect("filtered");
            let _ = writeln!(
                t,
                "| {} | {:.2}x | {:.0}% |",
                row.target,
                s.median,
                s.spread_pct()
            );
        }
    }
    let stream: Vec<&Row> = rows
        .iter()
        .filter(|r| r.cost_vs_handler.is_some())
        .collect();
    if !stream.is_empty() {
        let _ = writeln!(t);
        let _ = writeln!(
            t,
            "| stream view vs handler API (same runtime) | workload | server cost | spread | rate | spread |"
        );
        let _ = writeln!(t, "|---|---|---:|---:|---:|---:|");
        for row in stream {
            let c = row.cost_vs_handler.as_ref().expect("filtered");
            let r = row.rate_vs_handler.as_ref();
            let _ = writeln!(
                t,
                "| {} | {} | {:.2}x | {:.0}% | {} | {} |",
                row.target,
                row.workload,
                c.median,
                c.spread_pct(),
                ratio(&row.rate_vs_handler),
                r.map_or("".into(), |s| format!("{:.0}%", s.spread_pct())),
            );
        }
    }
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "rate: round trips (ping-pong, five-writes, one-write: {PING} B / 5 B messages), MiB/s echoed (stream, {stream}; tls-stream, {tls_stream}), connects with one round trip (churn), TLS handshakes with one round trip (tls-handshake-*: full; tls-resume: resumed), per second. \
         server cost: server CPU (user + system) per round trip / per connection / per handshake, seconds per GiB echoed, or RSS growth per idle connection ({idle} connections, tls-idle {tls_idle}; heap: live heap bytes the server's counting allocator saw). \
         Medians of {rounds} round(s); spread = (max - min) / median; ratios are per-round pairs measured side by side, then the median. \
         Baseline: the hand-written echo on the same runtime (tokio's for Bun and Node, and tokio-rustls's for every TLS row). sansock-stream: sansock's stream view (`listen_stream`) under the baseline's echo loop, compared with the handler API (`sansock/<rt>`) in its own table. allocs/event: heap allocations per data event (sansock `data` call, or read for the baseline and the stream view). \
         Server on CPU {scpu}, load generator on CPU {ccpu}; load average {lb} before, {la} after; {secs:.0} s.",
        PING = 64,
        stream = human_bytes(info.sizes.stream_bytes),
        tls_stream = human_bytes(info.sizes.tls_stream_bytes),
        idle = info.sizes.idle_conns,
        tls_idle = info.sizes.tls_idle_conns,
        rounds = info.rounds,
        scpu = info.server_cpu.map_or("unpinned".into(), |c| c.to_string()),
        ccpu = info.client_cpu.map_or("unpinned".into(), |c| c.to_string()),
        lb = info.load_before,
        la = info.load_after,
        secs = info.seconds,
    );
    t
}

fn human_bytes(b: u64) -> String {
    if b >= 1 << 30 && b % (1 << 30) == 0 {
        format!("{} GiB", b >> 30)
    } else {
        format!("{} MiB", b >> 20)
    }
}

fn stat_json(s: &Option<Stat>) -> Value {
    s.as_ref().map_or(Value::Null, Stat::json)
}

pub fn json(rows: &[Row], records: &[Record], info: &RunInfo) -> Value {
    json!({
        "info": {
            "command": info.command,
            "quick": info.quick,
            "rounds": info.rounds,
            "server_cpu": info.server_cpu,
            "client_cpu": info.client_cpu,
            "load_average_before": info.load_before,
            "load_average_after": info.load_after,
            "cpu_model": info.cpu_model,
            "kernel": info.kernel,
            "peers": info.peers.iter().map(|(n, v)| json!({"name": n, "version": v})).collect::<Vec<_>>(),
            "stream_bytes": info.sizes.stream_bytes,
            "idle_connections": info.sizes.idle_conns,
            "tls_stream_bytes": info.sizes.tls_stream_bytes,
            "tls_idle_connections": info.sizes.tls_idle_conns,
            "measure_seconds": info.sizes.measure.as_secs_f64(),
            "warm_up_seconds": info.sizes.warm.as_secs_f64(),
            "started_unix": info.started_unix,
            "seconds": info.seconds,
        },
        "rows": rows.iter().map(|r| {
            let (rate, cost) = primary(&r.workload);
            json!({
                "workload": r.workload,
                "server": r.target,
                "rounds_ok": r.rounds_ok,
                "failures": r.failures,
                "rate_metric": rate,
                "cost_metric": cost,
                "metrics": r.metrics.iter().map(|(n, s)| (n.clone(), s.json())).collect::<serde_json::Map<_, _>>(),
                "baseline": r.baseline,
                "cost_vs_baseline": stat_json(&r.cost_vs_baseline),
                "rate_vs_baseline": stat_json(&r.rate_vs_baseline),
                "cost_vs_bun": stat_json(&r.cost_vs_bun),
                "rate_vs_bun": stat_json(&r.rate_vs_bun),
                "five_vs_one": stat_json(&r.five_vs_one),
                "cost_vs_handler": stat_json(&r.cost_vs_handler),
                "rate_vs_handler": stat_json(&r.rate_vs_handler),
            })
        }).collect::<Vec<_>>(),
        "samples": records.iter().map(|r| json!({
            "round": r.round,
            "workload": r.workload,
            "server": r.target,
            "metrics": r.result.as_ref().ok().map(|m| m.iter().map(|(n, v)| (n.to_string(), json!(v))).collect::<serde_json::Map<_, _>>()),
            "error": r.result.as_ref().err(),
        })).collect::<Vec<_>>(),
    })
}

const COLORS: &[&str] = &[
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
];

/// A grouped bar chart: per workload, each non-baseline server's cost relative to its
/// baseline (1.0 = the hand-written echo on the same runtime; lower is better).
pub fn svg(rows: &[Row], info: &RunInfo) -> String {
    let mut workloads: Vec<&str> = Vec::new();
    let mut series: Vec<&str> = Vec::new();
    for r in rows {
        if r.cost_vs_baseline.is_some() {
            if !workloads.contains(&r.workload.as_str()) {
                workloads.push(&r.workload);
            }
            if !series.contains(&r.target.as_str()) {
                series.push(&r.target);
            }
        }
    }
    let max = rows
        .iter()
        .filter_map(|r| r.cost_vs_baseline.as_ref().map(|s| s.median))
        .fold(1.2f64, f64::max)
        .min(8.0)
        * 1.12;
    let (left, top, plot_h, group_w) = (60.0, 50.0, 300.0, 40.0 + 22.0 * series.len() as f64);
    let width = left + group_w * workloads.len().max(1) as f64 + 180.0;
    let height = top + plot_h + 60.0;
    let y = |v: f64| top + plot_h - v.min(max) / max * plot_h;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="20" font-size="14" font-weight="bold">Server cost relative to the hand-written echo on the same runtime (lower is better)</text>"#
    );
    let _ = writeln!(
        s,
        r##"<text x="{left}" y="36" fill="#555">CPU per op (stream: per GiB; idle: RSS per connection); medians of {} round(s) of per-round ratios; Bun, Node and TLS rows vs tokio's baseline</text>"##,
        info.rounds
    );
    // Axis and grid.
    let mut tick = 0.0;
    let step = if max > 4.0 { 1.0 } else { 0.5 };
    while tick <= max {
        let ty = y(tick);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{:.0}" y1="{ty:.1}" y2="{ty:.1}" stroke="#ddd"/><text x="{:.0}" y="{:.1}" text-anchor="end">{tick:.1}x</text>"##,
            width - 180.0,
            left - 6.0,
            ty + 4.0
        );
        tick += step;
    }
    let one = y(1.0);
    let _ = writeln!(
        s,
        r##"<line x1="{left}" x2="{:.0}" y1="{one:.1}" y2="{one:.1}" stroke="#000" stroke-dasharray="4 3"/>"##,
        width - 180.0
    );
    for (gi, w) in workloads.iter().enumerate() {
        let gx = left + gi as f64 * group_w + 20.0;
        for (si, t) in series.iter().enumerate() {
            let Some(stat) = rows
                .iter()
                .find(|r| r.workload == *w && r.target == *t)
                .and_then(|r| r.cost_vs_baseline.as_ref())
            else {
                continue;
            };
            let x = gx + si as f64 * 22.0;
            let v = stat.median;
            let (y0, y1) = (y(v), y(0.0));
            let color = COLORS[si % COLORS.len()];
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{y0:.1}" width="18" height="{:.1}" fill="{color}"><title>{t} {w}: {v:.2}x (min {:.2}, max {:.2})</title></rect>"#,
                (y1 - y0).max(0.5),
                stat.min,
                stat.max
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="9">{v:.2}</text>"#,
                x + 9.0,
                y0 - 3.0
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{w}</text>"#,
            gx + 11.0 * series.len() as f64 - 2.0,
            top + plot_h + 18.0
        );
    }
    for (si, t) in series.iter().enumerate() {
        let lx = width - 170.0;
        let ly = top + 10.0 + si as f64 * 18.0;
        let _ = writeln!(
            s,
            r#"<rect x="{lx:.0}" y="{:.0}" width="12" height="12" fill="{}"/><text x="{:.0}" y="{:.0}">{t}</text>"#,
            ly - 10.0,
            COLORS[si % COLORS.len()],
            lx + 18.0,
            ly
        );
    }
    let _ = writeln!(s, "</svg>");
    s
}

pub fn write_all(
    out: &Path,
    rows: &[Row],
    records: &[Record],
    info: &RunInfo,
    table: &str,
) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    let json =
        serde_json::to_string_pretty(&json(rows, records, info)).map_err(std::io::Error::other)?;
    std::fs::write(out.join("results.json"), json + "\n")?;
    std::fs::write(out.join("chart.svg"), svg(rows, info))?;
    std::fs::write(
        out.join("table.md"),
        format!("Command: `{}`\n\n{table}", info.command),
    )?;
    Ok(())
}
