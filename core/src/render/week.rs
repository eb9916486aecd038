//! `fluxgate status --week`: a terminal week view of every window, one row per window and one
//! cell per hour, from today 00:00 for seven days.
//!
//! Pure: the instant and the time zone are arguments, states come from
//! [`window::evaluate`](crate::window::evaluate), which walks the same transitions the webhook
//! uses. Without `--tz` each window is drawn in its own time zone, windows sharing a zone
//! under one header.

use super::table;
use crate::window::{Window, WindowSet, evaluate};
use chrono::{DateTime, Duration, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use std::collections::BTreeMap;
use std::fmt::Write;

pub(crate) const OPEN: char = '█';
pub(crate) const PARTLY_OPEN: char = '▌';
pub(crate) const FROZEN: char = '▒';
pub(crate) const CLOSED: char = '·';
/// An hour that does not exist on that day (skipped by a DST change).
pub(crate) const SKIPPED: char = ' ';

const DAYS: usize = 7;
const HOURS: usize = 24;
/// A runaway guard for the state walk of a degenerate window (one changing every minute
/// changes 10 080 times a week).
const MAX_SEGMENTS: usize = 20_000;

/// `--tz`: an IANA time zone name.
pub fn parse_tz(text: &str) -> Result<Tz, String> {
    text.trim()
        .parse::<Tz>()
        .map_err(|_| crate::window::not_a_time_zone(text))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Open,
    Frozen,
    Closed,
}

/// The week of every window, as text.
pub fn render(windows: &WindowSet, now: DateTime<Utc>, tz: Option<Tz>) -> String {
    let mut groups: BTreeMap<&str, (Tz, Vec<&Window>)> = BTreeMap::new();
    for window in windows.iter() {
        let zone = tz.unwrap_or_else(|| window.time_zone());
        groups
            .entry(zone.name())
            .or_insert_with(|| (zone, Vec::new()))
            .1
            .push(window);
    }
    // One width for the name column across the zones' groups, so their hours line up.
    let names: Vec<Vec<&str>> = std::iter::once("WINDOW")
        .chain(windows.names())
        .map(|name| vec![name])
        .collect();
    let name_width = table::widths(&names)[0];
    let mut text = String::new();
    for (zone, members) in groups.values() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&render_group(*zone, members, now, name_width, tz.is_some()));
    }
    let _ = writeln!(
        text,
        "\n{OPEN} open  {PARTLY_OPEN} open part of the hour  {FROZEN} frozen  {CLOSED} closed  \
         ▲ now"
    );
    text
}

fn render_group(
    zone: Tz,
    windows: &[&Window],
    now: DateTime<Utc>,
    name_width: usize,
    chosen: bool,
) -> String {
    let today = now.with_timezone(&zone).date_naive();
    let hours = hour_starts(zone, today);
    let mut text = String::new();
    let end_day = today + Duration::days(DAYS as i64 - 1);
    let _ = writeln!(
        text,
        "{} to {}, {}{}",
        today.format("%a %Y-%m-%d"),
        end_day.format("%a %Y-%m-%d"),
        zone.name(),
        if chosen {
            ""
        } else {
            " (the windows' own time zone)"
        }
    );
    // A row: the name column, then the days, each HOURS cells wide and one blank apart.
    let row = |name: &str, days: &[String]| {
        let days = table::row(days, &[HOURS; DAYS], &[], " ");
        table::row(&[name, &days], &[name_width], &[], table::GAP)
    };
    let days: Vec<String> = (0..DAYS)
        .map(|d| {
            (today + Duration::days(d as i64))
                .format("%a %d %b")
                .to_string()
        })
        .collect();
    let _ = writeln!(text, "{}", row("", &days).trim_end());
    let ruler = "0     6     12    18    ".to_owned();
    let _ = writeln!(text, "{}", row("WINDOW", &vec![ruler; DAYS]).trim_end());
    for window in windows {
        let cells = cells(window, &hours);
        let days: Vec<String> = cells
            .chunks(HOURS)
            .map(|day| day.iter().collect())
            .collect();
        // Not trimmed: a last hour skipped by DST is a blank cell.
        let _ = writeln!(text, "{}", row(window.name(), &days));
    }
    if let Some(cell) = hours
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.map(|h| (i, h)))
        .take_while(|(_, h)| *h <= now)
        .last()
        .map(|(i, _)| i)
        .filter(|&i| i < DAYS * HOURS)
    {
        let column = name_width + table::GAP.len() + cell + cell / HOURS;
        let local = now.with_timezone(&zone);
        let _ = writeln!(
            text,
            "{}▲ now {}",
            " ".repeat(column),
            local.format("%a %H:%M %Z")
        );
    }
    text
}

/// The instant each hour of the week begins (`None` for an hour skipped by DST), plus the
/// end of the week: `DAYS * HOURS + 1` entries. A repeated hour starts at its first occurrence.
fn hour_starts(zone: Tz, today: NaiveDate) -> Vec<Option<DateTime<Utc>>> {
    (0..=DAYS * HOURS)
        .map(|i| {
            let day = today + Duration::days((i / HOURS) as i64);
            let naive = day.and_hms_opt((i % HOURS) as u32, 0, 0)?;
            match zone.from_local_datetime(&naive) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                    Some(t.with_timezone(&Utc))
                }
                LocalResult::None => None,
            }
        })
        .collect()
}

/// One glyph per hour of the week.
fn cells(window: &Window, hours: &[Option<DateTime<Utc>>]) -> Vec<char> {
    let Some(start) = hours.iter().flatten().next().copied() else {
        return Vec::new();
    };
    let end = hours
        .iter()
        .rev()
        .flatten()
        .next()
        .copied()
        .unwrap_or(start);
    let segments = segments(window, start, end);
    (0..DAYS * HOURS)
        .map(|i| {
            let Some(from) = hours[i] else {
                return SKIPPED;
            };
            // The hour lasts until the next hour that exists.
            let until = hours[i + 1..]
                .iter()
                .flatten()
                .next()
                .copied()
                .unwrap_or(end);
            glyph(&segments, from, until)
        })
        .collect()
}

/// The window's states over `[start, end)`, as consecutive segments.
fn segments(
    window: &Window,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>, State)> {
    let mut segments = Vec::new();
    let mut t = start;
    while t < end && segments.len() < MAX_SEGMENTS {
        let state = evaluate(window, t);
        let kind = if state.open {
            State::Open
        } else if state.freeze.is_some() {
            State::Frozen
        } else {
            State::Closed
        };
        // Closed and frozen look alike to the effective state: stop at freeze edges too.
        let freeze_edge = window.next_freeze_edge(t, end);
        let until = [state.next, freeze_edge, Some(end)]
            .into_iter()
            .flatten()
            .filter(|&u| u > t)
            .min()
            .unwrap_or(end);
        segments.push((t, until, kind));
        t = until;
    }
    segments
}

fn glyph(
    segments: &[(DateTime<Utc>, DateTime<Utc>, State)],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> char {
    let mut open = Duration::zero();
    let mut frozen = false;
    for (s, e, state) in segments {
        let overlap = (*e).min(until) - (*s).max(from);
        if overlap <= Duration::zero() {
            continue;
        }
        match state {
            State::Open => open += overlap,
            State::Frozen => frozen = true,
            State::Closed => {}
        }
    }
    if open >= until - from {
        OPEN
    } else if open > Duration::zero() {
        PARTLY_OPEN
    } else if frozen {
        FROZEN
    } else {
        CLOSED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(t: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc)
    }

    fn windows(yaml: &str) -> WindowSet {
        WindowSet::from_yaml("test.yaml", yaml).unwrap()
    }

    /// The cells of the row of `name`, by day.
    fn row<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row {name} in\n{text}"));
        line.split_whitespace().skip(1).collect()
    }

    /// The embedded example windows: business-hours (Mon 08:00 to Thu 17:00 Berlin, with the
    /// year-end freeze), default and nightly.
    fn examples() -> WindowSet {
        crate::window::WindowSet::embedded().unwrap()
    }

    #[test]
    fn business_hours_week_from_friday_in_its_own_zone() {
        // Friday 2026-11-27 13:00 in Berlin.
        let text = render(&examples(), utc("2026-11-27T12:00:00Z"), None);
        let days = row(&text, "business-hours");
        assert_eq!(days.len(), 7, "{text}");
        let closed_day: String = std::iter::repeat_n(CLOSED, 24).collect();
        // Fri, Sat, Sun closed; Mon open from 08:00; Tue, Wed open; Thu open until 17:00.
        assert_eq!(days[0], closed_day);
        assert_eq!(days[2], closed_day);
        let monday: String = std::iter::repeat_n(CLOSED, 8)
            .chain(std::iter::repeat_n(OPEN, 16))
            .collect();
        assert_eq!(days[3], monday);
        assert_eq!(days[4], std::iter::repeat_n(OPEN, 24).collect::<String>());
        let thursday: String = std::iter::repeat_n(OPEN, 17)
            .chain(std::iter::repeat_n(CLOSED, 7))
            .collect();
        assert_eq!(days[6], thursday);
        assert!(
            text.contains("Fri 2026-11-27 to Thu 2026-12-03, Europe/Berlin"),
            "{text}"
        );
        assert!(text.contains("Fri 27 Nov"), "{text}");
        // The marker sits under Friday 13:00: column = name width + 2 + 13.
        let marker = text.lines().find(|l| l.contains("▲ now")).unwrap();
        let column = marker.chars().position(|c| c == '▲').unwrap();
        assert_eq!(column, "business-hours".len() + 2 + 13, "{text}");
        assert!(marker.contains("Fri 13:00 CET"), "{marker}");
    }

    #[test]
    fn chosen_zone_shifts_the_hours_and_freezes_are_shaded() {
        // Monday 2026-12-21 in UTC: the year-end freeze is on all week.
        let text = render(&examples(), utc("2026-12-21T10:30:00Z"), Some(Tz::UTC));
        let days = row(&text, "business-hours");
        assert!(
            days.iter().all(|d| d.chars().all(|c| c == FROZEN)),
            "{text}"
        );
        assert!(text.contains(", UTC\n"), "{text}");
        assert!(!text.contains("own time zone"), "{text}");

        // In UTC, Berlin's Monday 08:00 is 07:00.
        let text = render(&examples(), utc("2026-11-30T00:00:00Z"), Some(Tz::UTC));
        let monday: String = std::iter::repeat_n(CLOSED, 7)
            .chain(std::iter::repeat_n(OPEN, 17))
            .collect();
        assert_eq!(row(&text, "business-hours")[0], monday, "{text}");
    }

    #[test]
    fn partly_open_hours_and_one_header_per_zone() {
        let yaml = r#"
apiVersion: fluxgate.io/v1alpha1
kind: ReconciliationWindow
metadata:
  name: half-hour
spec:
  timeZone: America/New_York
  schedules:
    - start: "30 22 * * *"
      duration: 1h
---
apiVersion: fluxgate.io/v1alpha1
kind: ReconciliationWindow
metadata:
  name: utc-window
spec:
  schedules:
    - open: "0 9 * * *"
      close: "0 10 * * *"
"#;
        let text = render(&windows(yaml), utc("2026-11-27T12:00:00Z"), None);
        let day = row(&text, "half-hour")[0].chars().collect::<Vec<_>>();
        assert_eq!(day[22], PARTLY_OPEN, "{text}");
        assert_eq!(day[23], PARTLY_OPEN, "{text}");
        assert_eq!(day[21], CLOSED, "{text}");
        let utc_day = row(&text, "utc-window")[0].chars().collect::<Vec<_>>();
        assert_eq!(utc_day[9], OPEN, "{text}");
        assert_eq!(utc_day[10], CLOSED, "{text}");
        assert!(
            text.contains("America/New_York (the windows' own time zone)"),
            "{text}"
        );
        assert!(
            text.contains(", UTC (the windows' own time zone)"),
            "{text}"
        );
        assert_eq!(text.matches("▲ now Fri").count(), 2, "{text}");
    }

    #[test]
    fn dst_spring_forward_day_shows_the_skipped_hour_blank() {
        let yaml = r#"
apiVersion: fluxgate.io/v1alpha1
kind: ReconciliationWindow
metadata:
  name: always
spec:
  timeZone: Europe/Berlin
  schedules:
    - start: "0 * * * *"
      duration: 1h
"#;
        // Sunday 2027-03-28: 02:00-03:00 does not exist in Berlin.
        let text = render(&windows(yaml), utc("2027-03-28T00:30:00Z"), None);
        let day = row(&text, "always");
        // The blank cell splits the day into two words.
        assert_eq!(day[0].chars().count(), 2, "{text}");
        assert_eq!(day[1].chars().count(), 21, "{text}");
    }

    #[test]
    fn time_zone_names_are_checked() {
        assert_eq!(parse_tz("Europe/Berlin"), Ok(chrono_tz::Europe::Berlin));
        assert!(parse_tz("Europe/Berln").unwrap_err().contains("IANA"));
    }
}
