//! Holiday calendars in windows (`spec.calendars`), end to end: Berlin's published public
//! holidays (`tests/fixtures/ics/de-be-public.ics`, with the Easter-dependent days) freeze
//! `business-hours` on exactly the days that Python's recurring-ical-events expands them to
//! (`tests/fixtures/ics-reference.json`), every day of 2026–2030: from a ConfigMap through the
//! cluster watch (the fake API server), and from a file beside the windows file (`path:`).
//! Then through the binary: `status` and `review` name the event that froze the window.

mod common;
#[path = "common/fake_api.rs"]
mod fake_api;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Berlin;
use fake_api::Fake;
use fluxgate::audit_log::MemorySink;
use fluxgate::clock::Clock;
use fluxgate::cluster::watch::watch_windows;
use fluxgate::server::{AppState, Settings};
use fluxgate_core::policy::Policy;
use fluxgate_core::window::{Window, WindowSet};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const CALENDAR: &str = "de-be-public.ics";

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn holidays() -> String {
    std::fs::read_to_string(fixture_path(&format!("ics/{CALENDAR}"))).unwrap()
}

/// An occurrence as Python expanded it: (start, end, UID, SUMMARY).
type Reference = (DateTime<Utc>, DateTime<Utc>, String, Option<String>);

/// Python's occurrences of the Berlin calendar in Europe/Berlin.
fn reference() -> Vec<Reference> {
    let fixture: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture_path("ics-reference.json")).unwrap())
            .unwrap();
    let case = fixture["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["calendar"] == CALENDAR && c["zone"] == "Europe/Berlin")
        .expect("the reference has the Berlin calendar in Europe/Berlin");
    serde_json::from_value(case["occurrences"].clone()).unwrap()
}

/// business-hours, Monday 08:00 to Thursday 17:00 in Berlin, frozen by the calendar `source`.
fn business_hours(source: &str) -> String {
    format!(
        "apiVersion: fluxgate.io/v1alpha1\nkind: ReconciliationWindow\nmetadata:\n  name: \
         business-hours\nspec:\n  timeZone: Europe/Berlin\n  schedules:\n    - open: \"0 8 * * \
         MON\"\n      close: \"0 17 * * THU\"\n  calendars:\n    - name: {CALENDAR}\n      \
         {source}\n"
    )
}

/// Every day of 2026–2030 at noon in Berlin: frozen by the event that Python has there (its
/// UID and SUMMARY), closed then, and on a holiday from Monday to Wednesday followed by a
/// working day, open again exactly at the holiday's end. Returns how many days were frozen.
fn check_every_day(window: &Window) -> usize {
    let reference = reference();
    let mut failures = Vec::new();
    let mut frozen_days = 0;
    let mut day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    while day < NaiveDate::from_ymd_opt(2031, 1, 1).unwrap() {
        let noon = Berlin
            .from_local_datetime(&day.and_hms_opt(12, 0, 0).unwrap())
            .unwrap()
            .with_timezone(&Utc);
        let expected = reference.iter().find(|o| o.0 <= noon && noon < o.1);
        let state = window.state_at(noon);
        let actual = state.freeze.as_ref().map(|f| {
            let event = f
                .event
                .as_ref()
                .expect("a calendar's freeze names its event");
            assert_eq!(event.calendar, CALENDAR);
            (event.uid.clone(), f.reason.clone(), f.start, f.end)
        });
        let wanted = expected.map(|o| (o.2.clone(), o.3.clone(), Some(o.0), Some(o.1)));
        if actual != wanted {
            failures.push(format!("{day}: fluxgate {actual:?}, Python {wanted:?}"));
        }
        if let Some(o) = expected {
            frozen_days += 1;
            if state.open {
                failures.push(format!("{day}: open on a holiday"));
            }
            let next_day_free = !reference.iter().any(|p| p.0 == o.1);
            use chrono::Datelike;
            let weekday = day.weekday().num_days_from_monday();
            if (1..=2).contains(&weekday) && next_day_free && state.next != Some(o.1) {
                failures.push(format!(
                    "{day}: next {:?}, want the holiday's end {}",
                    state.next, o.1
                ));
            }
        }
        day = day.succ_opt().unwrap();
    }
    assert!(
        failures.is_empty(),
        "{} days differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    frozen_days
}

/// A folder with the windows file and the calendar beside it.
fn windows_folder(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fluxgate-calendars-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("calendars")).unwrap();
    std::fs::write(
        dir.join("windows.yaml"),
        business_hours("path: calendars/de-be-public.ics"),
    )
    .unwrap();
    std::fs::write(dir.join("calendars").join(CALENDAR), holidays()).unwrap();
    dir
}

#[test]
fn a_calendar_beside_the_windows_file_freezes_business_hours_on_every_holiday() {
    let dir = windows_folder("files");
    let set = fluxgate::windows::load_windows(std::slice::from_ref(&dir)).unwrap();
    let frozen = check_every_day(set.get("business-hours").unwrap());
    // Berlin has 10 or 11 public holidays a year (2028: 17 June once more).
    assert!((50..=60).contains(&frozen), "{frozen} days");
    println!("{frozen} holidays of 2026–2030 checked, every day compared");

    // A calendar file that is missing is the window's error, naming the file.
    std::fs::remove_file(dir.join("calendars").join(CALENDAR)).unwrap();
    let error = fluxgate::windows::load_windows(std::slice::from_ref(&dir))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(
            "ReconciliationWindow \"business-hours\": spec.calendars[0].path: cannot read"
        ) && error.contains("calendars/de-be-public.ics: no such file"),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn config_map(namespace: &str, ics: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "holidays", "namespace": namespace},
        "data": {CALENDAR: ics},
    })
}

fn window_object() -> Value {
    let yaml = business_hours(&format!(
        "configMapRef: {{name: holidays, key: {CALENDAR}}}"
    ));
    let mut object: Value = serde_saphyr::from_str(&yaml).unwrap();
    object["metadata"]["generation"] = json!(1);
    object
}

fn metric(state: &AppState, series: &str) -> Option<String> {
    let text = state
        .metrics()
        .encode(&state.windows().load(), chrono::Utc::now());
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ').map(str::to_owned))
}

async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_calendar_in_a_config_map_freezes_business_hours_and_its_changes_are_followed() {
    let fake = Fake::default();
    // The in-memory client's namespace, "default", stands for fluxgate's.
    fake.put(config_map("default", &holidays()));
    fake.put(config_map("elsewhere", "not a calendar"));
    fake.put(window_object());
    let state = AppState::new(Settings::new(
        WindowSet::default(),
        Policy::default(),
        Arc::new(MemorySink::default()),
    ));
    state.windows().reset();
    let watch = tokio::spawn(watch_windows(
        fake.client(),
        state.windows().clone(),
        None,
        Clock::system(),
    ));
    eventually("the first lists", || state.windows().is_ready()).await;
    eventually("the watches", || {
        fake.watching("v1/configmaps") > 0
            && fake.watching("fluxgate.io/v1alpha1/reconciliationwindows") > 0
    })
    .await;
    let set = state.windows().load();
    let frozen = check_every_day(set.get("business-hours").unwrap());
    assert!((50..=60).contains(&frozen), "{frozen} days");

    // A broken calendar is refused: the last good version stays in force.
    let christmas = Utc.with_ymd_and_hms(2026, 12, 25, 11, 0, 0).unwrap();
    let broken = holidays().replacen("RRULE:FREQ=YEARLY", "RRULE:FREQ=HOURLY", 1);
    fake.put(config_map("default", &broken));
    eventually("the refusal", || {
        metric(&state, "fluxgate_config_valid").as_deref() == Some("0")
    })
    .await;
    let set = state.windows().load();
    let window = set.get("business-hours").unwrap();
    assert_eq!(
        window
            .state_at(christmas)
            .freeze
            .clone()
            .unwrap()
            .reason
            .as_deref(),
        Some("Erster Weihnachtstag")
    );

    // A good change is taken: without Christmas, the day is not frozen.
    let start = holidays().find("Erster Weihnachtstag").unwrap();
    let begin = holidays()[..start].rfind("BEGIN:VEVENT").unwrap();
    let end = start + holidays()[start..].find("END:VEVENT\r\n").unwrap() + 12;
    let without = format!("{}{}", &holidays()[..begin], &holidays()[end..]);
    fake.put(config_map("default", &without));
    eventually("the calendar without Christmas", || {
        let set = state.windows().load();
        set.get("business-hours")
            .is_some_and(|w| w.state_at(christmas).freeze.is_none())
    })
    .await;

    assert_eq!(
        metric(&state, "fluxgate_config_valid").as_deref(),
        Some("1")
    );
    // The ConfigMap deleted: refused again, the last good version stays.
    fake.delete("v1/configmaps", "default", "holidays");
    eventually("the refusal of the missing ConfigMap", || {
        metric(&state, "fluxgate_config_valid").as_deref() == Some("0")
    })
    .await;
    assert!(state.windows().load().get("business-hours").is_some());
    watch.abort();
}

fn fluxgate(args: &[&str], env: &[(&str, &Path)]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_fluxgate"));
    command.args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

/// Noon in Berlin on each Easter-dependent holiday of 2026–2030, with its name, from the
/// reference.
fn easter_days() -> Vec<(DateTime<Utc>, String)> {
    let movable = [
        "Karfreitag",
        "Ostermontag",
        "Christi Himmelfahrt",
        "Pfingstmontag",
    ];
    reference()
        .into_iter()
        .filter(|o| o.0.format("%Y").to_string().as_str() >= "2026")
        .filter(|o| o.0 < Utc.with_ymd_and_hms(2031, 1, 1, 0, 0, 0).unwrap())
        .filter(|o| o.3.as_deref().is_some_and(|s| movable.contains(&s)))
        .map(|o| (o.0 + Duration::hours(13), o.3.unwrap()))
        .collect()
}

/// `status -o json` at `at` shows business-hours frozen by `summary` from the calendar.
fn assert_status_frozen(output: &std::process::Output, summary: &str, at: DateTime<Utc>) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Value = serde_json::from_slice(&output.stdout).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "business-hours")
        .unwrap();
    assert_eq!(row["open"], false, "{at}: {row}");
    assert_eq!(row["freeze"]["reason"], summary, "{at}: {row}");
    assert_eq!(row["freeze"]["calendar"], CALENDAR, "{at}: {row}");
}

#[tokio::test]
async fn the_binary_shows_the_holiday_from_a_config_map_and_from_a_file() {
    let fake = Fake::default();
    fake.put(config_map("fluxgate-system", &holidays()));
    fake.put(window_object());
    let url = fake.serve().await;
    let kubeconfig = fake_api::Kubeconfig::new(&url, "me");
    let config = kubeconfig.0.clone();
    let folder = windows_folder("bin");
    let days = easter_days();
    assert_eq!(
        days.len(),
        20,
        "four Easter-dependent days a year: {days:?}"
    );
    for (at, summary) in &days {
        let at_text = at.to_rfc3339();
        let args = ["status", "-o", "json", "--at", &at_text];
        let from_cluster = tokio::task::spawn_blocking({
            let config = config.clone();
            let args = args.map(str::to_owned);
            move || {
                let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
                all.push("--from-cluster");
                fluxgate(&all, &[("KUBECONFIG", &config)])
            }
        })
        .await
        .unwrap();
        assert_status_frozen(&from_cluster, summary, *at);
        let windows = folder.display().to_string();
        let from_files = fluxgate(&[&args[..], &["--windows", &windows]].concat(), &[]);
        assert_status_frozen(&from_files, summary, *at);
    }
    println!(
        "{} Easter-dependent holidays checked through the binary, two ways",
        days.len()
    );

    // The table and a denial name the event too.
    let windows = folder.display().to_string();
    let good_friday = "2027-03-26T10:00:00Z";
    let table = fluxgate(&["status", "--windows", &windows, "--at", good_friday], &[]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.contains("frozen by calendar de-be-public.ics (Karfreitag)"),
        "{table}"
    );
    let review = fixture_path("admission/flux-create-deployment-rw.json");
    let review = review.display().to_string();
    let denied = fluxgate(
        &[
            "review",
            "--windows",
            &windows,
            "--at",
            good_friday,
            &review,
        ],
        &[],
    );
    let response: Value = serde_json::from_slice(&denied.stdout).unwrap();
    let message = response["response"]["status"]["message"].as_str().unwrap();
    // Easter Monday follows: closed until it ends, Tuesday 00:00 (the schedule is open then).
    assert!(
        message.contains(
            "\"business-hours\", frozen by calendar de-be-public.ics (Karfreitag) and closed \
             until 2027-03-30T00:00:00+02:00"
        ),
        "{message}"
    );
    std::fs::remove_dir_all(&folder).ok();
}

/// `fluxgate plan`, run as a reviewer runs it on a pull request before Easter, names the
/// holidays its change waits through: Good Friday (in force) and Easter Monday (when the
/// schedule would open the window), in the table, the Markdown comment and the JSON.
#[test]
fn plan_names_the_holidays_a_change_waits_through() {
    let folder = windows_folder("plan");
    let windows = folder.join("windows.yaml").display().to_string();
    let seed = fixture_path("plan/seed");
    let base = seed.join("base/apps-rw.yaml").display().to_string();
    let head = seed.join("head/apps-rw.yaml").display().to_string();
    let plan = |extra: &[&str]| {
        let args = [
            &[
                "plan",
                "--base",
                &base,
                "--head",
                &head,
                "--windows",
                &windows,
                "--at",
                "2027-03-26T10:00:00Z",
            ][..],
            extra,
        ]
        .concat();
        let output = fluxgate(&args, &[]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let summary = "1 change waits for business-hours (frozen by Karfreitag (de-be-public.ics), \
                   Ostermontag (de-be-public.ics)) until Tue 30 Mar 00:00 CEST (in 3 d 12 h)";

    let table = plan(&[]);
    for line in [
        "business-hours frozen by calendar de-be-public.ics (Karfreitag) until Sat 27 Mar 00:00 CET",
        "business-hours frozen by calendar de-be-public.ics (Ostermontag) from Mon 29 Mar 00:00 \
         CEST until Tue 30 Mar 00:00 CEST",
        summary,
    ] {
        assert!(table.contains(line), "{line}\nnot in:\n{table}");
    }

    let markdown = plan(&["-o", "markdown"]);
    assert!(markdown.contains(&format!("**{summary}**")), "{markdown}");
    assert!(
        markdown.contains(
            "- business-hours frozen by calendar de-be-public.ics (Ostermontag) from Mon 29 Mar"
        ),
        "{markdown}"
    );

    let json: Value = serde_json::from_str(&plan(&["-o", "json"])).unwrap();
    let landing = &json["owners"][0]["changes"][0]["landing"];
    assert_eq!(landing["at"], "2027-03-30T00:00:00+02:00", "{landing}");
    let frozen = landing["frozenBy"].as_array().unwrap();
    let days: Vec<(&str, &str, &str, &str)> = frozen
        .iter()
        .map(|f| {
            (
                f["reason"].as_str().unwrap(),
                f["calendar"].as_str().unwrap(),
                f["start"].as_str().unwrap(),
                f["end"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        days,
        [
            (
                "Karfreitag",
                CALENDAR,
                "2027-03-26T00:00:00+01:00",
                "2027-03-27T00:00:00+01:00"
            ),
            (
                "Ostermontag",
                CALENDAR,
                "2027-03-29T00:00:00+02:00",
                "2027-03-30T00:00:00+02:00"
            ),
        ]
    );
    // The event is the calendar's own UID, as Python read it.
    let uids: Vec<String> = reference()
        .into_iter()
        .filter(|o| o.0.format("%Y").to_string() == "2027")
        .filter(|o| matches!(o.3.as_deref(), Some("Karfreitag" | "Ostermontag")))
        .map(|o| o.2)
        .collect();
    let events: Vec<&str> = frozen
        .iter()
        .map(|f| f["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, uids);
    std::fs::remove_dir_all(&folder).ok();
}

/// A window named `name` in Berlin with one inline calendar (`mode` freeze or allow).
fn inline(name: &str, mode: &str, ics: &str) -> String {
    let indented: String = ics.lines().map(|l| format!("        {l}\n")).collect();
    format!(
        "---\napiVersion: fluxgate.io/v1alpha1\nkind: ReconciliationWindow\nmetadata:\n  name: \
         {name}\nspec:\n  timeZone: Europe/Berlin\n  schedules:\n    - open: \"0 8 * * MON\"\n      \
         close: \"0 17 * * THU\"\n  calendars:\n    - name: team.ics\n      mode: {mode}\n      \
         ics: |\n{indented}"
    )
}

fn event(uid: &str, body: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\nBEGIN:VEVENT\nUID:{uid}\n\
         DTSTAMP:20260101T000000Z\n{body}\nEND:VEVENT\nEND:VCALENDAR\n"
    )
}

#[test]
fn bad_calendars_are_refused_at_once_naming_window_calendar_event_and_line() {
    let dir = std::env::temp_dir().join(format!("fluxgate-calendars-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hourly = event(
        "standup",
        "DTSTART:20260105T090000\nDURATION:PT15M\nRRULE:FREQ=HOURLY",
    );
    let byhour = event(
        "deploys",
        "DTSTART;VALUE=DATE:20260105\nRRULE:FREQ=DAILY;BYHOUR=9",
    );
    let text = [
        inline("a", "freeze", &hourly),
        inline("b", "freeze", &byhour),
    ]
    .concat();
    std::fs::write(dir.join("w.yaml"), &text).unwrap();
    let error = fluxgate::windows::load_windows(std::slice::from_ref(&dir))
        .unwrap_err()
        .to_string();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(error.starts_with("2 invalid windows:"), "{error}");
    assert!(
        error.contains(
            "ReconciliationWindow \"a\": spec.calendars[0].ics: calendar \"team.ics\", line 9 \
             (event \"standup\"): RRULE FREQ=\"HOURLY\": is not supported"
        ),
        "{error}"
    );
    assert!(
        error.contains("ReconciliationWindow \"b\": spec.calendars[0].ics: calendar \"team.ics\", line 8 (event \"deploys\"): RRULE part BYHOUR is not supported"),
        "{error}"
    );
    // Each error starts at the offending line of the windows file, inside the `ics: |` block.
    let lines: Vec<&str> = text.lines().collect();
    for (window, offending) in [
        ("a", "RRULE:FREQ=HOURLY"),
        ("b", "RRULE:FREQ=DAILY;BYHOUR=9"),
    ] {
        let marker = format!(": ReconciliationWindow \"{window}\": spec.calendars[0].ics:");
        let before = &error[..error.find(&marker).unwrap_or_else(|| panic!("{error}"))];
        let line: usize = before
            .rsplit(':')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no file line before {marker}: {error}"));
        assert!(before.ends_with(&format!("w.yaml:{line}")), "{error}");
        assert_eq!(lines[line - 1].trim(), offending, "{error}");
    }
    // Exactly one source, and no two calendars of one name.
    let none = inline("c", "freeze", &hourly)
        .replace("      ics: |\n", "      path: x.ics\n      ics: |\n");
    let error = WindowSet::from_yaml("w.yaml", &none)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("spec.calendars[0]: give exactly one source"),
        "{error}"
    );
}

#[test]
fn a_calendar_in_allow_mode_opens_the_window_during_its_events() {
    // A maintenance weekend: Saturday 6 June 2026, 08:00 to 20:00 in Berlin.
    let weekend = event(
        "maintenance",
        "SUMMARY:Maintenance weekend\nDTSTART;TZID=Europe/Berlin:20260606T080000\nDTEND;TZID=Europe/Berlin:20260606T200000",
    );
    let set = WindowSet::from_yaml("w.yaml", &inline("w", "allow", &weekend)).unwrap();
    let window = set.get("w").unwrap();
    let at = |text: &str| window.state_at(text.parse().unwrap());
    let saturday = at("2026-06-06T10:00:00Z");
    assert!(saturday.open);
    assert_eq!(
        saturday.since,
        Some("2026-06-06T06:00:00Z".parse().unwrap())
    );
    assert_eq!(saturday.next, Some("2026-06-06T18:00:00Z".parse().unwrap()));
    let sunday = at("2026-06-07T10:00:00Z");
    assert!(!sunday.open);
    assert_eq!(sunday.since, Some("2026-06-06T18:00:00Z".parse().unwrap()));
    assert_eq!(sunday.next, Some("2026-06-08T06:00:00Z".parse().unwrap()));
    // allowBypass is for freezes.
    let text = inline("w", "allow", &weekend).replace(
        "      mode: allow\n",
        "      mode: allow\n      allowBypass: false\n",
    );
    let error = WindowSet::from_yaml("w.yaml", &text)
        .unwrap_err()
        .to_string();
    assert!(error.contains("spec.calendars[0].allowBypass"), "{error}");
}

/// An allow calendar's event that opens the window is named as a freeze is: in `status` (the
/// table and JSON) and in the decision's message, through the binary; and where one event
/// follows another without a gap, the state (cached for the open run) names the second from
/// its start.
#[test]
fn an_allow_calendar_names_the_event_that_opens_the_window() {
    // Saturday 6 June 2026 08:00 to 20:00 in Berlin, then at once until Sunday 20:00.
    let ics = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n\
               BEGIN:VEVENT\nUID:upgrade\nDTSTAMP:20260101T000000Z\nSUMMARY:Cluster upgrade\n\
               DTSTART;TZID=Europe/Berlin:20260606T080000\nDTEND;TZID=Europe/Berlin:20260606T200000\n\
               END:VEVENT\n\
               BEGIN:VEVENT\nUID:migration\nDTSTAMP:20260101T000000Z\nSUMMARY:Database migration\n\
               DTSTART;TZID=Europe/Berlin:20260606T200000\nDTEND;TZID=Europe/Berlin:20260607T200000\n\
               END:VEVENT\nEND:VCALENDAR\n";
    let yaml =
        inline("business-hours", "allow", ics).replace("name: team.ics", "name: maintenance");
    let set = WindowSet::from_yaml("w.yaml", &yaml).unwrap();
    let window = set.get("business-hours").unwrap();
    let saturday = window.state_at("2026-06-06T10:00:00Z".parse().unwrap());
    let opening = saturday
        .opened_by_event
        .as_ref()
        .expect("opened by the event");
    assert_eq!(
        (opening.uid.as_str(), opening.summary.as_deref()),
        ("upgrade", Some("Cluster upgrade"))
    );
    // The same open run, cached since Saturday: the next event names itself.
    let sunday = window.state_at("2026-06-07T10:00:00Z".parse().unwrap());
    assert!(sunday.open);
    assert_eq!(sunday.since, saturday.since);
    assert_eq!(
        sunday.opened_by_event.as_ref().map(|e| e.uid.as_str()),
        Some("migration")
    );
    // On a Monday the schedule opens it: no event named.
    let monday = window.state_at("2026-06-08T10:00:00Z".parse().unwrap());
    assert!(
        monday.open && monday.opened_by_event.is_none(),
        "{monday:?}"
    );

    let dir = std::env::temp_dir().join(format!("fluxgate-allow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("windows.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let windows = file.display().to_string();
    let at = "2026-06-06T10:00:00Z";
    let table = fluxgate(&["status", "--windows", &windows, "--at", at], &[]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.contains("open by calendar maintenance (Cluster upgrade)"),
        "{table}"
    );
    let json = fluxgate(
        &["status", "--windows", &windows, "--at", at, "-o", "json"],
        &[],
    );
    let rows: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        rows[0]["opening"],
        json!({"calendar": "maintenance", "event": "upgrade", "summary": "Cluster upgrade",
               "start": "2026-06-06T08:00:00+02:00", "end": "2026-06-06T20:00:00+02:00"}),
        "{rows}"
    );
    let review = fixture_path("admission/flux-create-deployment-rw.json");
    let review = review.display().to_string();
    let admitted = fluxgate(&["review", "--windows", &windows, "--at", at, &review], &[]);
    let response: Value = serde_json::from_slice(&admitted.stdout).unwrap();
    assert_eq!(response["response"]["allowed"], true, "{response}");
    let message = response["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message
            .contains("\"business-hours\", open by calendar maintenance (Cluster upgrade) until"),
        "{response}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// RELIABILITY: a huge calendar is refused with a clear error, in bounded time and memory:
/// more than 1 MiB of text before it is parsed, and more than 100,000 occurrences while it is
/// expanded (a daily rule without end runs to 2100: 27,000 each).
#[test]
fn a_huge_calendar_is_refused_in_bounded_time() {
    let mut big = String::from("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n");
    let mut i = 0;
    while big.len() <= fluxgate_core::window::MAX_CALENDAR_BYTES {
        big.push_str(&format!(
            "BEGIN:VEVENT\nUID:e{i}\nDTSTAMP:20260101T000000Z\nSUMMARY:Freeze {i}\nDTSTART;VALUE=DATE:20260105\nEND:VEVENT\n"
        ));
        i += 1;
    }
    big.push_str("END:VCALENDAR\n");
    let started = std::time::Instant::now();
    let error = WindowSet::from_yaml("w.yaml", &inline("w", "freeze", &big))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("spec.calendars[0].ics: calendar \"team.ics\" is ")
            && error.contains("more than the 1048576 (1 MiB) a calendar may have"),
        "{error}"
    );
    println!("{} bytes refused in {:?}", big.len(), started.elapsed());

    let daily: String = (0..5)
        .map(|i| {
            format!(
                "BEGIN:VEVENT\nUID:d{i}\nDTSTAMP:20260101T000000Z\nDTSTART:2026010{}T090000\nDURATION:PT1H\nRRULE:FREQ=DAILY\nEND:VEVENT\n",
                i + 1
            )
        })
        .collect();
    let text = format!("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{daily}END:VCALENDAR\n");
    let started = std::time::Instant::now();
    let error = WindowSet::from_yaml("w.yaml", &inline("w", "freeze", &text))
        .unwrap_err()
        .to_string();
    assert!(error.contains("more than 100000 occurrences"), "{error}");
    println!("135,000 occurrences refused in {:?}", started.elapsed());
}

/// Admission of a window object has only the object: a calendar in a ConfigMap is checked for
/// its shape (one source, a name), an inline one in full.
#[test]
fn admission_checks_a_window_objects_calendars() {
    let review = |calendars: Value| {
        let mut body: Value = serde_json::from_str(
            &std::fs::read_to_string(fixture_path(
                "admission/flux-create-reconciliationwindow.json",
            ))
            .unwrap(),
        )
        .unwrap();
        body["request"]["object"]["spec"]["calendars"] = calendars;
        let body = serde_json::to_vec(&body).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
        let reviewed = fluxgate_core::admission::review(
            &body,
            &WindowSet::embedded().unwrap(),
            &Policy::default(),
            now,
        )
        .unwrap();
        (reviewed.decision.allowed, reviewed.decision.message)
    };
    let (allowed, message) = review(
        json!([{"name": "holidays.ics", "configMapRef": {"name": "holidays", "key": "holidays.ics"}}]),
    );
    assert!(allowed, "{message}");
    let (allowed, message) = review(json!([{"name": "holidays.ics", "ics": holidays()}]));
    assert!(allowed, "{message}");
    let (allowed, message) = review(
        json!([{"name": "x", "ics": "BEGIN:VCALENDAR\nBEGIN:VTODO\nEND:VTODO\nEND:VCALENDAR\n"}]),
    );
    assert!(!allowed);
    assert!(
        message.contains("spec.calendars[0].ics: calendar \"x\", line 2: a VTODO is not supported"),
        "{message}"
    );
    let (allowed, message) = review(
        json!([{"name": "x", "ics": holidays(), "configMapRef": {"name": "h", "key": "k"}}]),
    );
    assert!(!allowed);
    assert!(
        message.contains("spec.calendars[0]: give exactly one source"),
        "{message}"
    );
}

/// fluxgate without RBAC to list the ConfigMaps of its namespace, answered as kube-apiserver
/// answers (403, `configmaps is forbidden: User … cannot list resource "configmaps" …`): what
/// `status --from-cluster` and a serving replica's log say names the ConfigMap the window
/// needs and the RBAC to grant; the window naming no ConfigMap is not held back.
#[tokio::test]
async fn config_maps_that_cannot_be_listed_name_the_config_map_and_the_rbac_to_grant() {
    let fake = Fake::default();
    fake.put(config_map("fluxgate-system", &holidays()));
    fake.put(window_object());
    let mut plain = window_object();
    plain["metadata"]["name"] = json!("nightly");
    plain["spec"].as_object_mut().unwrap().remove("calendars");
    fake.put(plain);
    fake.forbid("v1/configmaps");
    let url = fake.serve().await;
    let user = "system:serviceaccount:fluxgate-system:fluxgate";
    let kubeconfig = fake_api::Kubeconfig::new(&url, user);
    let config = kubeconfig.0.clone();
    let status = tokio::task::spawn_blocking(move || {
        fluxgate(
            &["status", "--from-cluster", "--at", "2027-03-26T10:00:00Z"],
            &[("KUBECONFIG", &config)],
        )
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&status.stdout);
    let stderr = String::from_utf8_lossy(&status.stderr);
    // What the API server said, and what to grant to whom; no dump of kube's types.
    let said = |namespace: &str| {
        format!(
            "configmaps is forbidden: User \"{user}\" cannot list resource \"configmaps\" in \
             API group \"\" in the namespace \"{namespace}\""
        )
    };
    let grant = |namespace: &str| {
        format!(
            "grant get, list and watch on configmaps in {namespace} to the user named there (the \
             Role and RoleBinding fluxgate-calendars of deploy/base/rbac.yaml"
        )
    };
    assert!(status.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("nightly") && !stdout.contains("business-hours"),
        "the window naming no ConfigMap is shown, the other is not in force:\n{stdout}"
    );
    for part in [
        "not in force: cluster ReconciliationWindow/business-hours",
        "ConfigMap fluxgate-system/holidays cannot be read",
        &said("fluxgate-system"),
        &grant("fluxgate-system"),
    ] {
        assert!(stderr.contains(part), "{part}\nnot in:\n{stderr}");
    }
    assert!(!stderr.contains("Status {"), "{stderr}");

    // A serving replica logs the same, for its own namespace (the kubeconfig's: default).
    let dir = common::Scratch::new("calendars-rbac");
    let kubeconfig_path = kubeconfig.0.display().to_string();
    let server = common::Server::start_with_env(
        &dir,
        &["--windows-from-cluster", "--accept-unverified-callers"],
        &[("KUBECONFIG", &kubeconfig_path), ("POD_NAME", "fluxgate-0")],
    )
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !server
        .log()
        .contains("ConfigMap default/holidays cannot be read")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no log of the window not in force:\n{}",
            server.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let log = server.log();
    for part in [
        "not in force",
        "cluster ReconciliationWindow/business-hours",
        &said("default"),
        &grant("default"),
    ] {
        assert!(log.contains(part), "{part}\nnot in:\n{log}");
    }
}
