//! `fluxgate audit`: filter and summarise the JSON audit log (files or stdin).
//!
//! Glue only: flags → [`Filter`], inputs opened and streamed through [`Review`], rows and
//! summary printed. The table of matching decisions is written as records arrive (or, with
//! `--limit N`, only the last N are kept), so memory never grows with the log.

use super::{AtArg, Format, OutputArg};
use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, ValueEnum};
use fluxgate_core::audit::AuditRecord;
use fluxgate_core::audit::review::{
    AuditDecision, Counts, Filter, Finished, ReadError, Review, SkippedLines, Stats, SummaryReport,
    TimeSpec, object_display,
};
use fluxgate_core::policy::Reason;
use fluxgate_core::render::{escape, table};
use fluxgate_core::window::Enforcement;
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

// The filter flags' environment twins are FLUXGATE_AUDIT_…, not FLUXGATE_…: a pod's
// environment may well hold FLUXGATE_NAMESPACE-like variables meant for something else, and a
// filter picked up by accident would silently hide records.
#[derive(Debug, Args)]
#[command(mut_arg("at", |a| {
    a.help("Count relative times (--since 24h) back from this instant (RFC 3339) instead of now")
}))]
pub(crate) struct AuditArgs {
    /// Audit log files (JSON lines); `-` or none: standard input.
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Only records at or after this time: a duration before now (24h, 90m) or RFC 3339.
    #[arg(long, env = "FLUXGATE_AUDIT_SINCE", value_parser = TimeSpec::parse, value_name = "WHEN")]
    since: Option<TimeSpec>,
    /// Only records before this time: a duration before now or RFC 3339.
    #[arg(long, env = "FLUXGATE_AUDIT_UNTIL", value_parser = TimeSpec::parse, value_name = "WHEN")]
    until: Option<TimeSpec>,
    /// Only these decisions (repeatable).
    #[arg(
        long,
        env = "FLUXGATE_AUDIT_DECISION",
        value_enum,
        value_delimiter = ','
    )]
    decision: Vec<DecisionArg>,
    /// Only these reasons, e.g. window-closed, bypass (repeatable).
    #[arg(long, env = "FLUXGATE_AUDIT_REASON", value_parser = parse_reason, value_delimiter = ',', value_name = "REASON")]
    reason: Vec<Reason>,
    /// Only decisions involving this window (repeatable; `*` wildcards).
    #[arg(
        long,
        env = "FLUXGATE_AUDIT_WINDOW",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    window: Vec<String>,
    /// Only objects in this namespace (repeatable; `*` wildcards).
    #[arg(
        long,
        env = "FLUXGATE_AUDIT_NAMESPACE",
        value_delimiter = ',',
        value_name = "NS"
    )]
    namespace: Vec<String>,
    /// Only objects of this name (repeatable; `*` wildcards).
    #[arg(
        long,
        env = "FLUXGATE_AUDIT_NAME",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    name: Vec<String>,
    /// Only objects of this kind, e.g. Deployment (repeatable; any case).
    #[arg(
        long,
        env = "FLUXGATE_AUDIT_KIND",
        value_delimiter = ',',
        value_name = "KIND"
    )]
    kind: Vec<String>,
    /// Only requests by this user (repeatable; `*` wildcards).
    #[arg(
        long,
        env = "FLUXGATE_AUDIT_USER",
        value_delimiter = ',',
        value_name = "USER"
    )]
    user: Vec<String>,
    /// Only objects applied by this Flux Kustomization/HelmRelease: NAME, NAMESPACE/NAME or
    /// KIND/NAMESPACE/NAME (repeatable; `*` wildcards).
    #[arg(
        long,
        env = "FLUXGATE_AUDIT_OWNER",
        value_delimiter = ',',
        value_name = "OWNER"
    )]
    owner: Vec<String>,
    /// Only decisions enforced (enforce) or admitted because their closed windows are in Warn
    /// mode (warn: what those windows would deny once enforced).
    #[arg(
        long,
        env = "FLUXGATE_AUDIT_ENFORCEMENT",
        value_enum,
        value_delimiter = ','
    )]
    enforcement: Vec<EnforcementArg>,
    /// Include admitted dry-runs (Flux dry-runs every object at every interval to detect drift,
    /// so those are left out by default). Denied dry-runs and bypasses are always shown.
    #[arg(long, env = "FLUXGATE_AUDIT_INCLUDE_DRY_RUN")]
    include_dry_run: bool,
    #[command(flatten)]
    at: AtArg,
    /// Show only the last N matching decisions (0: the summary only); all by default.
    #[arg(long, env = "FLUXGATE_AUDIT_LIMIT", value_name = "N")]
    limit: Option<usize>,
    /// How many of the most denied objects to list.
    #[arg(
        long,
        env = "FLUXGATE_AUDIT_TOP",
        default_value_t = 10,
        value_name = "N"
    )]
    top: usize,
    #[command(flatten)]
    output: OutputArg,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DecisionArg {
    Allow,
    Deny,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum EnforcementArg {
    Enforce,
    Warn,
}

fn parse_reason(text: &str) -> Result<Reason, String> {
    Reason::ALL
        .into_iter()
        .find(|r| r.as_str() == text.trim())
        .ok_or_else(|| {
            let all: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
            format!("{text:?} is not a reason; one of: {}", all.join(", "))
        })
}

/// An input: a file or standard input.
enum Input {
    Stdin,
    File(PathBuf, std::fs::File),
}

impl Input {
    fn name(&self) -> String {
        match self {
            Input::Stdin => "<stdin>".to_owned(),
            Input::File(path, _) => path.display().to_string(),
        }
    }
}

pub(crate) fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let now = args.at.clock().now();
    let filter = Filter {
        since: args.since.map(|t| t.resolve(now)),
        until: args.until.map(|t| t.resolve(now)),
        decisions: args
            .decision
            .iter()
            .map(|d| match d {
                DecisionArg::Allow => AuditDecision::Allow,
                DecisionArg::Deny => AuditDecision::Deny,
            })
            .collect(),
        reasons: args.reason.clone(),
        windows: args.window.clone(),
        namespaces: args.namespace.clone(),
        names: args.name.clone(),
        kinds: args.kind.clone(),
        users: args.user.clone(),
        owners: args.owner.clone(),
        include_dry_run: args.include_dry_run,
        enforcements: args
            .enforcement
            .iter()
            .map(|e| match e {
                EnforcementArg::Enforce => Enforcement::Enforce,
                EnforcementArg::Warn => Enforcement::Warn,
            })
            .collect(),
    };
    let inputs = open_inputs(&args.files)?;
    let names: Vec<String> = inputs.iter().map(Input::name).collect();
    let report = Review::new(filter, args.top);
    let out = std::io::stdout().lock();
    let mut out = std::io::BufWriter::new(out);
    let result = match args.output.output {
        Format::Table => table(&mut out, report, inputs, &names, args.limit),
        Format::Json => json(&mut out, report, inputs, &names, args.limit),
    };
    match result.and_then(|stats| out.flush().map(|()| stats).map_err(ReadError::Output)) {
        // Lines but not one record: not an audit log (a YAML file, the wrong container's log).
        Ok(stats) if stats.records == 0 && stats.unparseable_lines > 0 => anyhow::bail!(
            "no audit record in {}: {} lines, none a fluxgate audit record; give fluxgate's \
             audit log (the pod's stdout, or the --audit-log file)",
            names.join(", "),
            stats.lines
        ),
        Ok(_) => Ok(ExitCode::SUCCESS),
        // `fluxgate audit … | head` is fine.
        Err(ReadError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            Ok(ExitCode::SUCCESS)
        }
        Err(ReadError::Output(e)) => Err(e).context("cannot write stdout"),
        Err(e) => Err(e.into()),
    }
}

/// Opens every input before reading any, so a missing file fails before output starts.
fn open_inputs(files: &[PathBuf]) -> anyhow::Result<Vec<Input>> {
    let stdin_named = files.iter().filter(|f| f.as_os_str() == "-").count();
    anyhow::ensure!(stdin_named <= 1, "standard input (-) can be read only once");
    if files.is_empty() || stdin_named == 1 {
        anyhow::ensure!(
            !std::io::stdin().is_terminal(),
            "no audit log given: name files, or pipe one in (e.g. kubectl logs -n \
             fluxgate-system -l app=fluxgate --prefix=false | fluxgate audit)"
        );
    }
    if files.is_empty() {
        return Ok(vec![Input::Stdin]);
    }
    files
        .iter()
        .map(|path| {
            if path.as_os_str() == "-" {
                return Ok(Input::Stdin);
            }
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Ok(Input::File(path.clone(), file))
        })
        .collect()
}

fn read_all(
    report: &mut Review,
    inputs: Vec<Input>,
    mut on_match: impl FnMut(AuditRecord) -> std::io::Result<()>,
) -> Result<(), ReadError> {
    // Large buffers: audit logs are read sequentially and may be gigabytes.
    const BUFFER: usize = 256 * 1024;
    for input in inputs {
        let name = input.name();
        match input {
            Input::Stdin => {
                let reader = BufReader::with_capacity(BUFFER, std::io::stdin().lock());
                report.read(&name, reader, &mut on_match)?;
            }
            Input::File(_, file) => {
                let reader = BufReader::with_capacity(BUFFER, file);
                report.read(&name, reader, &mut on_match)?;
            }
        }
    }
    Ok(())
}

/// Hands each matching record to `emit`: as it is read, or with `--limit N` the last N once
/// every input is read (a ring of N records, not the log).
fn emit_matching(
    report: &mut Review,
    inputs: Vec<Input>,
    limit: Option<usize>,
    mut emit: impl FnMut(&AuditRecord) -> std::io::Result<()>,
) -> Result<(), ReadError> {
    let Some(n) = limit else {
        return read_all(report, inputs, |record| emit(&record));
    };
    let mut last: VecDeque<AuditRecord> = VecDeque::with_capacity(n.min(4096));
    read_all(report, inputs, |record| {
        if n > 0 {
            if last.len() == n {
                last.pop_front();
            }
            last.push_back(record);
        }
        Ok(())
    })?;
    last.iter().try_for_each(emit).map_err(ReadError::Output)
}

// === table ===

/// The widths of the decision rows' columns but the last (USER). Fixed, since rows are
/// printed as they arrive.
const ROW_WIDTHS: [usize; 7] = [20, 8, 15, 7, 3, 16, 40];

fn table(
    out: &mut impl Write,
    mut report: Review,
    inputs: Vec<Input>,
    names: &[String],
    limit: Option<usize>,
) -> Result<Stats, ReadError> {
    let w = |out: &mut dyn Write, text: String| out.write_all(text.as_bytes());
    w(out, header(report.filter(), names)).map_err(ReadError::Output)?;
    if limit != Some(0) {
        w(out, row_line(&ROW_HEADER.map(String::from))).map_err(ReadError::Output)?;
    }
    emit_matching(&mut report, inputs, limit, |record| {
        w(out, row_line(&row(record)))
    })?;
    let finished = report.finish();
    w(out, summary(&finished, limit)).map_err(ReadError::Output)?;
    Ok(finished.stats)
}

const ROW_HEADER: [&str; 8] = [
    "TIME", "DECISION", "REASON", "OP", "DRY", "WINDOW", "OBJECT", "USER",
];

fn row(r: &AuditRecord) -> [String; 8] {
    let windows: Vec<&str> = r.windows.iter().map(|w| w.name.as_str()).collect();
    [
        r.time.to_rfc3339_opts(SecondsFormat::Secs, true),
        match r.enforcement.as_deref() {
            Some(e) => format!("{}/{e}", r.decision),
            None => r.decision.to_string(),
        },
        r.reason.to_string(),
        fluxgate_core::naming::operation_name(&r.operation).to_owned(),
        if r.dry_run { "yes" } else { "" }.to_owned(),
        if windows.is_empty() {
            "-".to_owned()
        } else {
            windows.join(",")
        },
        object_display(r),
        r.user.clone(),
    ]
}

/// A decision row in [`ROW_WIDTHS`]; a longer cell pushes the rest of its row right rather
/// than being cut.
fn row_line(cells: &[String; 8]) -> String {
    let line = table::row(cells, &ROW_WIDTHS, &[], table::GAP);
    format!("{}\n", line.trim_end())
}

fn header(filter: &Filter, names: &[String]) -> String {
    let mut criteria = Vec::new();
    if let Some(t) = filter.since {
        criteria.push(format!("since {}", instant(t)));
    }
    if let Some(t) = filter.until {
        criteria.push(format!("until {}", instant(t)));
    }
    let mut list = |label: &str, values: Vec<String>| {
        if !values.is_empty() {
            let values: Vec<_> = values.iter().map(|v| escape(v)).collect();
            criteria.push(format!("{label} {}", values.join("|")));
        }
    };
    list(
        "decision",
        filter
            .decisions
            .iter()
            .map(|d| d.as_str().to_owned())
            .collect(),
    );
    list(
        "reason",
        filter.reasons.iter().map(|r| r.to_string()).collect(),
    );
    list("window", filter.windows.clone());
    list("namespace", filter.namespaces.clone());
    list("name", filter.names.clone());
    list("kind", filter.kinds.clone());
    list("user", filter.users.clone());
    list("owner", filter.owners.clone());
    list(
        "enforcement",
        filter
            .enforcements
            .iter()
            .map(|e| e.as_str().to_owned())
            .collect(),
    );
    let dry_run = if filter.include_dry_run {
        "dry-run decisions included"
    } else {
        "admitted dry-runs left out (--include-dry-run shows them); denials and bypasses always shown"
    };
    let criteria = if criteria.is_empty() {
        "all decisions".to_owned()
    } else {
        criteria.join(", ")
    };
    let names: Vec<_> = names.iter().map(|n| escape(n)).collect();
    format!(
        "fluxgate audit of {}: {criteria}; {dry_run}\n\n",
        names.join(", ")
    )
}

/// Instants in the table and the summary: RFC 3339, UTC, whole seconds.
fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The summary after the rows: its sections in order, each after a blank line; the
/// application-log section only when there were such lines.
fn summary(f: &Finished, limit: Option<usize>) -> String {
    let s = &f.summary;
    let sections = [
        totals_section(f, limit),
        decisions_section(s),
        counts_section("BY WINDOW", &s.by_window),
        counts_section("BY FLUX OWNER", &s.by_owner),
        most_denied_section(s),
        bypasses_section(s),
        overrides_section(s),
        skipped_section("UNPARSEABLE LINES", &f.unparseable, true),
        skipped_section(
            "APPLICATION LOG LINES (fluxgate's own logs, not audit records)",
            &f.app_log_lines,
            false,
        ),
    ];
    let mut text = String::new();
    for section in sections.iter().filter(|lines| !lines.is_empty()) {
        text.push('\n');
        for line in section {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// How many records matched out of how many lines of what kind: what the reader needs to
/// trust the rest (a log of mostly unparseable lines is not the audit log).
fn totals_section(f: &Finished, limit: Option<usize>) -> Vec<String> {
    let (s, st) = (&f.summary, &f.stats);
    let time = |t: Option<DateTime<Utc>>| t.map_or("-".to_owned(), instant);
    let shown = match limit {
        Some(n) if (n as u64) < s.matched => format!(" (the last {n} shown)"),
        _ => String::new(),
    };
    let mut lines = vec![format!(
        "SUMMARY: {} of {} audit records match{shown}; from {} to {}",
        s.matched,
        st.records,
        time(s.first_time),
        time(s.last_time)
    )];
    if !f.filter.include_dry_run {
        lines.push(format!(
            "  {} matching admitted dry-run record{} left out (--include-dry-run shows them)",
            st.hidden_dry_runs,
            if st.hidden_dry_runs == 1 { "" } else { "s" }
        ));
    }
    lines.push(format!(
        "  {} lines read: {} audit records, {} application log lines, {} unparseable, {} blank",
        st.lines, st.records, st.app_log_lines, st.unparseable_lines, st.blank_lines
    ));
    for partial in &f.partial_last_lines {
        lines.push(format!(
            "  {}: line {} has no newline yet ({} bytes; a file being written): left unread, \
             the next review reads it",
            escape(&partial.source),
            partial.line,
            partial.bytes
        ));
    }
    lines
}

/// Allowed and denied, each with its reasons counted.
fn decisions_section(s: &SummaryReport) -> Vec<String> {
    let mut lines = vec!["DECISIONS".to_owned()];
    if s.by_decision.is_empty() {
        lines.push("  none".to_owned());
    }
    let rows: Vec<Vec<String>> = s
        .by_decision
        .iter()
        .map(|(decision, counts)| {
            let reasons: Vec<String> = counts
                .reasons
                .iter()
                .map(|(reason, n)| format!("{reason} {n}"))
                .collect();
            vec![
                decision.clone(),
                counts.total.to_string(),
                reasons.join(", "),
            ]
        })
        .collect();
    lines.extend(table::lines(&rows, &[1], "  "));
    lines
}

/// Allowed and denied per window or per Flux owner: where the denials come from.
fn counts_section(title: &str, map: &BTreeMap<String, Counts>) -> Vec<String> {
    if map.is_empty() {
        return vec![format!("{title}: none")];
    }
    let mut rows = vec![table::header(&[title, "ALLOW", "DENY"])];
    rows.extend(
        map.iter()
            .map(|(k, c)| vec![k.clone(), c.allow.to_string(), c.deny.to_string()]),
    );
    table::titled(rows, &[1, 2])
}

/// The objects denied most (up to `--top`), with their last denial: what to look at first.
fn most_denied_section(s: &SummaryReport) -> Vec<String> {
    if s.top_denied.is_empty() {
        return vec!["MOST DENIED OBJECTS: none".to_owned()];
    }
    let mut rows = vec![table::header(&[
        "MOST DENIED OBJECTS",
        "DENIALS",
        "LAST REASON",
        "LAST TIME",
    ])];
    rows.extend(s.top_denied.iter().map(|d| {
        vec![
            d.object.clone(),
            d.denials.to_string(),
            d.last_reason.to_string(),
            instant(d.last_time),
        ]
    }));
    table::titled(rows, &[1])
}

/// Every emergency bypass, valid or not, with who used it and why: each one is to be
/// accounted for.
fn bypasses_section(s: &SummaryReport) -> Vec<String> {
    if s.bypasses.is_empty() {
        return vec!["BYPASSES: none".to_owned()];
    }
    let mut rows = vec![table::header(&[
        "TIME", "OBJECT", "ACTOR", "RESULT", "UNTIL", "WINDOW", "OWNER", "REASON",
    ])];
    rows.extend(s.bypasses.iter().map(|b| {
        let result = match (b.valid, b.dry_run) {
            (true, false) => "admitted",
            (true, true) => "admitted (dry-run)",
            (false, false) => "invalid, denied",
            (false, true) => "invalid, denied (dry-run)",
        };
        vec![
            instant(b.time),
            b.object.clone(),
            b.actor.clone(),
            result.to_owned(),
            b.until.clone().unwrap_or_else(|| "-".to_owned()),
            b.windows.join(","),
            b.owner.clone().unwrap_or_else(|| "-".to_owned()),
            b.reason.clone().unwrap_or_else(|| "-".to_owned()),
        ]
    }));
    let mut lines = vec![format!("BYPASSES: {}", s.bypasses.len())];
    lines.extend(table::lines(&rows, &[], "  "));
    lines
}

/// The overrides that opened a window for the matching decisions, and when they were used.
fn overrides_section(s: &SummaryReport) -> Vec<String> {
    if s.overrides.is_empty() {
        return vec!["OVERRIDES: none".to_owned()];
    }
    let mut rows = vec![table::header(&[
        "WINDOW",
        "START",
        "UNTIL",
        "DECISIONS",
        "FIRST USED",
        "LAST USED",
        "REASON",
    ])];
    rows.extend(s.overrides.iter().map(|o| {
        vec![
            o.window.clone(),
            o.start.clone(),
            o.end.clone(),
            o.decisions.to_string(),
            instant(o.first_time),
            instant(o.last_time),
            o.reason.clone(),
        ]
    }));
    let mut lines = vec![format!("OVERRIDES: {}", s.overrides.len())];
    lines.extend(table::lines(&rows, &[3], "  "));
    lines
}

/// Lines that are not audit records, by input. Unparseable lines are always reported (with
/// their errors), since a damaged log must not pass for a quiet one; fluxgate's own log
/// lines only when there were some (their line numbers). A parse error may quote the line
/// (serde's "unknown variant `…`"), so it is shown escaped, as is the input's name.
fn skipped_section(title: &str, sources: &[SkippedLines], with_errors: bool) -> Vec<String> {
    let total: u64 = sources.iter().map(|s| s.count).sum();
    if total == 0 && !with_errors {
        return Vec::new();
    }
    let mut lines = vec![format!("{title}: {total}")];
    for source in sources {
        let name = escape(&source.source);
        let more = source.count.saturating_sub(source.lines.len() as u64);
        let more = if more > 0 {
            format!(" (first {} listed)", source.lines.len())
        } else {
            String::new()
        };
        if with_errors {
            lines.push(format!("  {name}: {}{more}", line_count(source.count)));
            for line in &source.lines {
                lines.push(format!("    line {}: {}", line.line, escape(&line.error)));
            }
        } else {
            let numbers: Vec<String> = source.lines.iter().map(|l| l.line.to_string()).collect();
            lines.push(format!(
                "  {name}: {}{more}: {}",
                line_count(source.count),
                numbers.join(", ")
            ));
        }
    }
    lines
}

fn line_count(n: u64) -> String {
    format!("{n} line{}", if n == 1 { "" } else { "s" })
}

// === json ===

/// One JSON object: `records` streamed first, then `inputs` and the fields of [`Finished`].
/// Its strings are JSON's, so they hold what the records hold, control characters escaped.
fn json(
    out: &mut impl Write,
    mut report: Review,
    inputs: Vec<Input>,
    names: &[String],
    limit: Option<usize>,
) -> Result<Stats, ReadError> {
    let output = ReadError::Output;
    out.write_all(b"{\"records\":[").map_err(output)?;
    let mut first = true;
    emit_matching(&mut report, inputs, limit, |record| {
        out.write_all(if first { b"\n" } else { b",\n" })?;
        first = false;
        serde_json::to_writer(&mut *out, record)?;
        Ok(())
    })?;
    let f = report.finish();
    write!(
        out,
        "\n],\n\"inputs\":{},\n\"filter\":{},\n\"stats\":{},\n\"summary\":{},\n\"unparseable\":{},\n\"appLogLines\":{},\n\"partialLastLines\":{}",
        pretty(&names)?,
        pretty(&f.filter)?,
        pretty(&f.stats)?,
        pretty(&f.summary)?,
        pretty(&f.unparseable)?,
        pretty(&f.app_log_lines)?,
        pretty(&f.partial_last_lines)?,
    )
    .map_err(output)?;
    out.write_all(b"\n}\n").map_err(output)?;
    Ok(f.stats)
}

fn pretty<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, ReadError> {
    serde_json::to_string_pretty(value).map_err(|e| ReadError::Output(e.into()))
}
