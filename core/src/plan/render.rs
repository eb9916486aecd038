//! A [`Plan`] for people (a table for the terminal, Markdown for a pull-request comment) and
//! for machines (JSON, the schema `docs/plan.md` writes down). Every value that came from the
//! manifests is escaped for where it is shown: [`escape`] in the terminal, [`markdown`] in a
//! comment.

use super::{Change, Frozen, Landing, Owner, Plan};
use crate::render::escape;
use crate::render::table;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Serialize;
use std::fmt::Write;

// === summary ===

/// One line: `2 changes land now; 3 wait for business-hours until Mon 30 Nov 08:00 CET (in
/// 2 d 19 h); 1 is blocked`.
pub fn summary(plan: &Plan) -> String {
    let changes: Vec<&Change> = plan.changes().collect();
    if changes.is_empty() {
        return "no changes".into();
    }
    let mut parts = Vec::new();
    let count = |f: &dyn Fn(&Landing) -> bool| changes.iter().filter(|c| f(&c.landing)).count();
    let now = count(&|l| matches!(l, Landing::Now | Landing::NowWarn | Landing::Bypass { .. }));
    if now > 0 {
        let mut text = format!(
            "{now} {} now",
            if now == 1 {
                "change lands"
            } else {
                "changes land"
            }
        );
        let bypass = count(&|l| matches!(l, Landing::Bypass { .. }));
        let warn = count(&|l| matches!(l, Landing::NowWarn));
        let how: Vec<String> = [(bypass, "by bypass"), (warn, "only warned")]
            .into_iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, how)| format!("{n} {how}"))
            .collect();
        if !how.is_empty() {
            let _ = write!(text, " ({})", how.join(", "));
        }
        parts.push(text);
    }
    // Waits grouped by what they wait for (the windows, and the freezes they wait through)
    // and until when, soonest first.
    let mut waits: Vec<(DateTime<Utc>, String, String, usize)> = Vec::new();
    for c in &changes {
        if let Landing::At {
            at,
            zone,
            waits_for,
            frozen_by,
        } = &c.landing
        {
            let mut what = waits_for.join(" and ");
            let mut names: Vec<String> = Vec::new();
            for f in frozen_by {
                let name = f.freeze.name();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            if !names.is_empty() {
                let _ = write!(what, " (frozen by {})", names.join(", "));
            }
            let when = short_time(*at, *zone);
            match waits.iter_mut().find(|(t, w, _, _)| t == at && *w == what) {
                Some(group) => group.3 += 1,
                None => waits.push((*at, what, when, 1)),
            }
        }
    }
    waits.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    // The first part names what it counts: `1 change waits`, then `3 wait`.
    let noun = |parts: &Vec<String>, n: usize| match (parts.is_empty(), n) {
        (false, _) => "",
        (true, 1) => " change",
        (true, _) => " changes",
    };
    for (at, what, when, n) in waits {
        parts.push(format!(
            "{n}{} {} for {what} until {when} (in {})",
            noun(&parts, n),
            if n == 1 { "waits" } else { "wait" },
            span(at - plan.now)
        ));
    }
    let blocked = count(&|l| *l == Landing::Never);
    if blocked > 0 {
        parts.push(format!(
            "{blocked}{} {} blocked",
            noun(&parts, blocked),
            if blocked == 1 { "is" } else { "are" }
        ));
    }
    parts.join("; ")
}

/// `2 d 19 h`, `5 h 30 min`, `25 min`: how long until a landing, to the minute.
fn span(d: Duration) -> String {
    let minutes = d.num_minutes().max(0);
    let (days, hours, minutes) = (minutes / 1440, (minutes % 1440) / 60, minutes % 60);
    match (days, hours) {
        (0, 0) => format!("{minutes} min"),
        (0, _) if minutes > 0 => format!("{hours} h {minutes} min"),
        (0, _) => format!("{hours} h"),
        _ if hours > 0 => format!("{days} d {hours} h"),
        _ => format!("{days} d"),
    }
}

/// `Mon 30 Nov 08:00 CET`.
fn short_time(t: DateTime<Utc>, zone: chrono_tz::Tz) -> String {
    t.with_timezone(&zone)
        .format("%a %-d %b %H:%M %Z")
        .to_string()
}

/// The freezes the owner's waiting changes wait through, each once, in order.
fn frozen_by(o: &Owner) -> Vec<&Frozen> {
    let mut all: Vec<&Frozen> = Vec::new();
    for c in &o.changes {
        if let Landing::At { frozen_by, .. } = &c.landing {
            for f in frozen_by {
                if !all.contains(&f) {
                    all.push(f);
                }
            }
        }
    }
    all
}

/// `business-hours frozen by calendar holidays.ics (Christmas Day) until Sat 26 Dec 00:00 CET`,
/// or `from … until …` for a freeze still to come.
fn frozen_line(f: &Frozen, now: DateTime<Utc>) -> String {
    let freeze = &f.freeze;
    let hard = if freeze.allow_bypass { "" } else { "hard-" };
    let mut line = format!("{} {hard}frozen{}", f.window, freeze.describe());
    if let Some(start) = freeze.start.filter(|start| *start > now) {
        let _ = write!(line, " from {}", short_time(start, f.zone));
    }
    if let Some(end) = freeze.end {
        let _ = write!(line, " until {}", short_time(end, f.zone));
    }
    line
}

fn windows_cell(c: &Change) -> String {
    if c.windows.is_empty() {
        "-".into()
    } else {
        c.windows.join(", ")
    }
}

fn owner_line(o: &Owner) -> String {
    match &o.landing {
        Landing::At { .. } => format!("waits, lands {}", o.landing.text()),
        Landing::Never => "blocked: never lands".into(),
        other => format!("lands {}", other.text()),
    }
}

// === table ===

/// For the terminal: one row per change, then each owner's landing, then why each blocked
/// change is blocked and the fix, then the summary.
pub fn table(plan: &Plan) -> String {
    let mut rows = vec![table::header(&[
        "OWNER", "OBJECT", "CHANGE", "MODE", "WINDOWS", "LANDS",
    ])];
    for o in &plan.owners {
        for c in &o.changes {
            rows.push(vec![
                o.name.clone(),
                c.object.clone(),
                c.change.as_str().to_owned(),
                c.mode.clone(),
                windows_cell(c),
                c.landing.text(),
            ]);
        }
    }
    if plan.owners.is_empty() {
        return format!("{}\n", summary(plan));
    }
    let mut text = table::text(&rows, &[], "");
    text.push('\n');
    for o in &plan.owners {
        let _ = writeln!(text, "{}: {}", escape(&o.name), owner_line(o));
        for f in frozen_by(o) {
            let _ = writeln!(text, "  {}", escape(&frozen_line(f, plan.now)));
        }
        if let Some(mixed) = &o.mixed {
            let _ = writeln!(text, "  mixed-owner: {}", escape(mixed));
        }
        for c in o.changes.iter().filter(|c| c.landing == Landing::Never) {
            let _ = writeln!(
                text,
                "  {} never lands: {}",
                escape(&c.object),
                escape(&c.message)
            );
            if let Some(fix) = &c.fix {
                let _ = writeln!(text, "    fix: {}", escape(fix));
            }
        }
    }
    text.push('\n');
    let _ = writeln!(text, "{}", summary(plan));
    text
}

// === markdown ===

/// For a pull-request comment or a job summary: the summary, then a section per owner with its
/// changes, mixed-owner note, and why each blocked change is blocked.
pub fn markdown(plan: &Plan) -> String {
    let mut text = String::from("### fluxgate plan\n\n");
    let _ = writeln!(text, "**{}**\n", markdown_text(&summary(plan)));
    let unchanged = match plan.unchanged {
        0 => String::new(),
        1 => "; 1 object unchanged".into(),
        n => format!("; {n} objects unchanged"),
    };
    let _ = writeln!(
        text,
        "Planned for {}{unchanged}.",
        plan.now.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    for o in &plan.owners {
        let _ = write!(
            text,
            "\n#### {}: {}\n\n",
            markdown_text(&o.name),
            markdown_text(&owner_line(o))
        );
        if let Some(mixed) = &o.mixed {
            let _ = write!(text, "> **mixed-owner**: {}\n\n", markdown_text(mixed));
        }
        let frozen = frozen_by(o);
        for f in &frozen {
            let _ = writeln!(text, "- {}", markdown_text(&frozen_line(f, plan.now)));
        }
        if !frozen.is_empty() {
            text.push('\n');
        }
        text.push_str("| Object | Change | Mode | Windows | Lands |\n|---|---|---|---|---|\n");
        for c in &o.changes {
            let _ = writeln!(
                text,
                "| {} | {} | {} | {} | {} |",
                markdown_text(&c.object),
                c.change.as_str(),
                markdown_text(&c.mode),
                markdown_text(&windows_cell(c)),
                markdown_text(&c.landing.text())
            );
        }
        for c in o.changes.iter().filter(|c| c.landing == Landing::Never) {
            let _ = write!(
                text,
                "\n- **{}** never lands: {}",
                markdown_text(&c.object),
                markdown_text(&c.message)
            );
            if let Some(fix) = &c.fix {
                let _ = write!(text, "\n  Fix: {}", markdown_text(fix));
            }
            text.push('\n');
        }
    }
    text
}

/// Text from the manifests made inert in Markdown: controls escaped as in the terminal, and
/// every character that could start markup, a link, an HTML tag or a table cell
/// backslash-escaped, so an object name or a bypass reason shows as written and cannot add a
/// row, a link or an image to the comment.
pub fn markdown_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in escape(text).chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '!' | '#'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

// === json ===

/// The JSON of `-o json` (see `docs/plan.md`): field names and values are a stable interface.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanJson<'a> {
    /// The instant planned for, RFC 3339 UTC.
    now: String,
    summary: String,
    counts: Counts,
    owners: Vec<OwnerJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Counts {
    changes: usize,
    now: usize,
    bypass: usize,
    warn: usize,
    waiting: usize,
    blocked: usize,
    unchanged: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OwnerJson<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    mixed_owner: Option<&'a str>,
    landing: LandingJson,
    changes: Vec<ChangeJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChangeJson<'a> {
    object: &'a str,
    api_version: &'a str,
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
    name: &'a str,
    change: super::ChangeKind,
    mode: &'a str,
    windows: &'a [String],
    landing: LandingJson,
    reason: crate::policy::Reason,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<&'a str>,
    at: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LandingJson {
    /// `now`, `now-warn`, `bypass`, `at` or `never`.
    when: &'static str,
    /// For `at`: RFC 3339 in the zone of the window opening last; for `bypass`: the expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    at: Option<String>,
    /// The same instant in UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    at_utc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_zone: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    waits_for: Option<Vec<String>>,
    /// For `at`: the freezes it waits through.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    frozen_by: Vec<FrozenJson>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FrozenJson {
    window: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    allow_bypass: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<String>,
    /// The calendar (`spec.calendars[].name`) whose event it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    calendar: Option<String>,
    /// That event's UID.
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<String>,
}

fn frozen_json(f: &Frozen) -> FrozenJson {
    let local = |t: Option<DateTime<Utc>>| t.map(|t| crate::naming::local_time(t, f.zone));
    let event = f.freeze.event.as_ref();
    FrozenJson {
        window: f.window.clone(),
        reason: f.freeze.reason.clone(),
        allow_bypass: f.freeze.allow_bypass,
        start: local(f.freeze.start),
        end: local(f.freeze.end),
        calendar: event.map(|e| e.calendar.clone()),
        event: event.map(|e| e.uid.clone()),
    }
}

fn landing_json(l: &Landing) -> LandingJson {
    let utc = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let plain = |when| LandingJson {
        when,
        at: None,
        at_utc: None,
        time_zone: None,
        waits_for: None,
        frozen_by: Vec::new(),
    };
    match l {
        Landing::Now => plain("now"),
        Landing::NowWarn => plain("now-warn"),
        Landing::Never => plain("never"),
        Landing::Bypass { until } => LandingJson {
            at: Some(utc(until)),
            at_utc: Some(utc(until)),
            time_zone: Some("UTC"),
            ..plain("bypass")
        },
        Landing::At {
            at,
            zone,
            waits_for,
            frozen_by,
        } => LandingJson {
            at: Some(crate::naming::local_time(*at, *zone)),
            at_utc: Some(utc(at)),
            time_zone: Some(zone.name()),
            waits_for: Some(waits_for.clone()),
            frozen_by: frozen_by.iter().map(frozen_json).collect(),
            ..plain("at")
        },
    }
}

/// The plan as `-o json` writes it.
pub fn json(plan: &Plan) -> PlanJson<'_> {
    let changes: Vec<&Change> = plan.changes().collect();
    let count = |f: &dyn Fn(&Landing) -> bool| changes.iter().filter(|c| f(&c.landing)).count();
    PlanJson {
        now: plan.now.to_rfc3339_opts(SecondsFormat::Secs, true),
        summary: summary(plan),
        counts: Counts {
            changes: changes.len(),
            now: count(&|l| *l == Landing::Now),
            bypass: count(&|l| matches!(l, Landing::Bypass { .. })),
            warn: count(&|l| *l == Landing::NowWarn),
            waiting: count(&|l| matches!(l, Landing::At { .. })),
            blocked: count(&|l| *l == Landing::Never),
            unchanged: plan.unchanged,
        },
        owners: plan
            .owners
            .iter()
            .map(|o| OwnerJson {
                name: &o.name,
                mixed_owner: o.mixed.as_deref(),
                landing: landing_json(&o.landing),
                changes: o
                    .changes
                    .iter()
                    .map(|c| ChangeJson {
                        object: &c.object,
                        api_version: &c.api_version,
                        kind: &c.kind,
                        namespace: c.namespace.as_deref(),
                        name: &c.name,
                        change: c.change,
                        mode: &c.mode,
                        windows: &c.windows,
                        landing: landing_json(&c.landing),
                        reason: c.reason,
                        message: &c.message,
                        fix: c.fix.as_deref(),
                        at: &c.at,
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_days_hours_minutes() {
        assert_eq!(span(Duration::minutes(2 * 1440 + 19 * 60 + 5)), "2 d 19 h");
        assert_eq!(span(Duration::days(3)), "3 d");
        assert_eq!(span(Duration::minutes(5 * 60 + 30)), "5 h 30 min");
        assert_eq!(span(Duration::hours(4)), "4 h");
        assert_eq!(span(Duration::minutes(25)), "25 min");
    }

    #[test]
    fn markdown_text_cannot_add_a_row_a_link_or_a_tag() {
        assert_eq!(
            markdown_text("a|b [x](http://e) <img> *y*\nz"),
            // The newline is escaped as in the terminal, and its backslash for Markdown.
            r"a\|b \[x\](http://e) \<img\> \*y\*\\nz"
        );
    }
}
