//! `fluxgate plan` on a large pull request: 2,000 objects in 20 Flux owners, governed by 50
//! windows in several zones, half of them changed (updates, creates and prunes), on a Saturday
//! when most windows are closed, so most changes search for their landing. Issue 24 asks for
//! under a second. `parse-and-plan` is the whole core path of the command (the inputs' text and
//! the windows' YAML in, the plan out), `parse` the inputs alone, `plan` the planning alone on parsed inputs; `render`
//! the three outputs.
//!
//! `cargo bench --bench plan` for the figures; `cargo bench --bench plan -- --test` runs each
//! once.

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use fluxgate_core::plan::{Input, parse_input, plan, render};
use fluxgate_core::policy::Policy;
use fluxgate_core::window::WindowSet;
use std::hint::black_box;

const OBJECTS: usize = 2_000;
const OWNERS: usize = 20;
const WINDOWS: usize = 50;

/// Saturday 2026-11-28 12:00 UTC.
fn saturday() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z")
        .unwrap()
        .to_utc()
}

/// 50 windows: weekday and nightly schedules in four zones, some with a year-end freeze.
fn windows_yaml() -> String {
    let zones = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC"];
    (0..WINDOWS)
        .map(|i| {
            let schedule = if i.is_multiple_of(2) {
                format!("{{open: \"0 {} * * MON\", close: \"0 17 * * THU\"}}", 6 + i % 5)
            } else {
                format!("{{start: \"{} 22 * * *\", duration: 2h}}", i % 60)
            };
            let freeze = if i.is_multiple_of(3) {
                "  freezes:\n    - {start: \"2026-12-20\", end: \"2027-01-04\", reason: year end}\n"
            } else {
                ""
            };
            format!(
                "---\napiVersion: fluxgate.io/v1alpha1\nkind: ReconciliationWindow\nmetadata: {{name: team-{i}}}\nspec:\n  timeZone: {}\n  schedules: [{schedule}]\n{freeze}",
                zones[i % zones.len()]
            )
        })
        .collect()
}

/// One rendered object: every other one rw, governed by one of the windows.
fn object(i: usize, version: &str) -> String {
    let labels = if i.is_multiple_of(2) {
        format!(
            "  labels:\n    app: app-{i}\n    fluxgate.io/mode: rw\n    fluxgate.io/window: team-{}\n",
            i % WINDOWS
        )
    } else {
        format!("  labels:\n    app: app-{i}\n")
    };
    format!(
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  namespace: ns-{}\n{labels}spec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: app-{i}}}\n  template:\n    metadata:\n      labels: {{app: app-{i}}}\n    spec:\n      containers:\n        - name: app\n          image: registry.example/app-{i}:{version}\n          ports: [{{containerPort: 8080}}]\n",
        i % 40
    )
}

/// The owners' texts at the base and the head: at the head, a quarter of the objects get a
/// new image, one in twenty is new and one in twenty is gone.
fn renders() -> (Vec<String>, Vec<String>) {
    let mut base = vec![String::new(); OWNERS];
    let mut head = vec![String::new(); OWNERS];
    for i in 0..OBJECTS {
        let owner = i % OWNERS;
        match i % 20 {
            0 => head[owner].push_str(&object(i, "1.0")),
            1 => base[owner].push_str(&object(i, "1.0")),
            n if n % 4 == 2 => {
                base[owner].push_str(&object(i, "1.0"));
                head[owner].push_str(&object(i, "1.1"));
            }
            _ => {
                base[owner].push_str(&object(i, "1.0"));
                head[owner].push_str(&object(i, "1.0"));
            }
        }
    }
    (base, head)
}

fn parse(texts: &[String]) -> Vec<Input> {
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let owner = format!("owner-{i}");
            parse_input(&format!("{owner}.yaml"), &owner, text).unwrap()
        })
        .collect()
}

fn bench_plan(c: &mut Criterion) {
    let (base_text, head_text) = renders();
    let windows_text = windows_yaml();
    let policy = Policy::default();
    let now = saturday();
    let mut group = c.benchmark_group("plan-2000-objects-50-windows");
    group.sample_size(10);
    group.bench_function("parse-and-plan", |b| {
        b.iter(|| {
            let windows = WindowSet::from_yaml("windows.yaml", &windows_text).unwrap();
            let (base, head) = (parse(&base_text), parse(&head_text));
            black_box(plan(&base, &head, &windows, &policy, now).unwrap())
        })
    });
    group.bench_function("parse", |b| {
        b.iter(|| black_box((parse(&base_text), parse(&head_text))))
    });
    let (base, head) = (parse(&base_text), parse(&head_text));
    let objects: usize = head.iter().map(Input::len).sum();
    assert!(objects > OBJECTS * 9 / 10, "{objects} objects");
    group.bench_function("plan", |b| {
        b.iter(|| {
            // A fresh set each time: the windows' cached states are part of the cost.
            let windows = WindowSet::from_yaml("windows.yaml", &windows_text).unwrap();
            black_box(plan(&base, &head, &windows, &policy, now).unwrap())
        })
    });
    let windows = WindowSet::from_yaml("windows.yaml", &windows_text).unwrap();
    let planned = plan(&base, &head, &windows, &policy, now).unwrap();
    assert!(planned.waiting(), "the bench plans waiting changes");
    group.bench_function("render", |b| {
        b.iter(|| {
            black_box(render::table(&planned));
            black_box(render::markdown(&planned));
            black_box(serde_json::to_string(&render::json(&planned)).unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, bench_plan);
criterion_main!(benches);
