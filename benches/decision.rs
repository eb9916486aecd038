//! The pure decision on realistic AdmissionReviews: parse included (`review`: bytes in, response
//! out, exactly the server's path minus HTTP) and excluded (`decide`: a parsed request), with 1,
//! 100 and 1,000 windows, window evaluation alone, and the metrics each decision updates. See
//! BENCHMARKS.md.
//!
//! `cargo bench --bench decision` for the figures; CI runs `cargo bench --bench decision --
//! --test`, which runs each benchmark once.

use chrono::{DateTime, Utc};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fluxgate::metrics::Metrics;
use fluxgate_core::admission::review;
use fluxgate_core::object::Object;
use fluxgate_core::policy::{Policy, decide, response};
use fluxgate_core::window::{WindowSet, evaluate};
use kube::core::admission::{AdmissionRequest, AdmissionReview};
use std::hint::black_box;

#[path = "support/reviews.rs"]
mod reviews;
use reviews::{BUMP, CONFIGMAP, PRUNE, UNCHANGED, big};

/// Friday 13:00 Berlin: business-hours closed (the denial path, the longest message).
fn friday() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
        .unwrap()
        .to_utc()
}

/// The embedded example windows plus `extra` more, `business-hours` among them.
fn windows(total: usize) -> WindowSet {
    let mut yaml = String::from(fluxgate::windows::EMBEDDED_WINDOWS);
    for i in 3..total.max(3) {
        yaml.push_str(&format!(
            "\n---\napiVersion: fluxgate.io/v1alpha1\nkind: ReconciliationWindow\nmetadata: {{name: team-{i}}}\nspec:\n  timeZone: Europe/Berlin\n  schedules: [{{open: \"0 8 * * MON\", close: \"0 17 * * THU\"}}]\n"
        ));
    }
    let set = WindowSet::from_yaml("bench", &yaml).unwrap();
    assert_eq!(set.len(), total.max(3));
    set
}

fn parsed(body: &[u8]) -> AdmissionRequest<Object> {
    serde_json::from_slice::<AdmissionReview<Object>>(body)
        .unwrap()
        .try_into()
        .unwrap()
}

fn bench_review(c: &mut Criterion) {
    let policy = Policy::default();
    let now = friday();
    let cases = [
        (
            "deployment-update-recorded-closed",
            BUMP.as_bytes().to_vec(),
        ),
        ("deployment-update-closed", big(BUMP)),
        ("deployment-update-no-op", big(UNCHANGED)),
        ("configmap-create-rt", CONFIGMAP.as_bytes().to_vec()),
        ("deployment-delete", PRUNE.as_bytes().to_vec()),
    ];
    let mut group = c.benchmark_group("review");
    for total in [1usize, 100, 1000] {
        let windows = windows(total);
        for (name, body) in &cases {
            group.throughput(Throughput::Bytes(body.len() as u64));
            group.bench_with_input(
                BenchmarkId::new(*name, format!("{total}-windows")),
                body,
                |b, body| {
                    b.iter(|| {
                        let reviewed = review(black_box(body), &windows, &policy, now).unwrap();
                        black_box(reviewed.response_json().unwrap())
                    })
                },
            );
        }
    }
    group.finish();

    // The physical limit of `review`: serde_json only validating the body (no value built), the
    // least any parser that checks its input must do.
    let mut group = c.benchmark_group("floor");
    for (name, body) in &cases {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("json-validation", *name),
            body,
            |b, body| {
                b.iter(|| {
                    let text = std::str::from_utf8(black_box(body)).unwrap();
                    black_box(serde_json::from_str::<serde::de::IgnoredAny>(text).unwrap())
                })
            },
        );
    }
    group.finish();

    let mut group = c.benchmark_group("decide");
    for total in [1usize, 100, 1000] {
        let windows = windows(total);
        for (name, body) in &cases[1..3] {
            let request = parsed(body);
            group.bench_with_input(
                BenchmarkId::new(*name, format!("{total}-windows")),
                &request,
                |b, request| {
                    b.iter(|| {
                        let decision = decide(black_box(request), &windows, &policy, now);
                        black_box(serde_json::to_vec(&response(request, &decision)).unwrap())
                    })
                },
            );
        }
    }
    group.finish();
}

fn bench_windows(c: &mut Criterion) {
    let windows = windows(3);
    let business = windows.get("business-hours").unwrap();
    let nightly = windows.get("nightly").unwrap();
    let now = friday();
    let mut group = c.benchmark_group("window");
    group.bench_function("state_at-cached", |b| {
        b.iter(|| black_box(business.state_at(black_box(now))))
    });
    group.bench_function("evaluate-open-close", |b| {
        b.iter(|| black_box(evaluate(business, black_box(now))))
    });
    group.bench_function("evaluate-start-duration", |b| {
        b.iter(|| black_box(evaluate(nightly, black_box(now))))
    });
    group.finish();
    // Issue 21 (item 9): the windows whose state search costs most (read in the file why).
    let heavy = WindowSet::from_yaml("heavy", HEAVY_WINDOWS).unwrap();
    let mut group = c.benchmark_group("window-heavy");
    for window in heavy.iter() {
        group.bench_function(BenchmarkId::new("evaluate", window.name()), |b| {
            b.iter(|| black_box(evaluate(window, black_box(now))))
        });
    }
    group.finish();
}

/// benches/support/heavy-windows.yaml.
const HEAVY_WINDOWS: &str = include_str!("support/heavy-windows.yaml");

/// What every decision adds on the server: counting it (request counter, latency histogram, and
/// for denials the window's and the per-owner counter) and one scrape of /metrics, with the
/// example windows and with 5,000 (issue "Integrity", item 8).
fn bench_metrics(c: &mut Criterion) {
    let policy = Policy::default();
    let now = friday();
    let windows = std::sync::Arc::new(windows(3));
    let metrics = Metrics::default();
    let mut group = c.benchmark_group("metrics");
    for (name, body) in [
        ("deployment-update-closed", BUMP),
        ("configmap-create-rt", CONFIGMAP),
    ] {
        let reviewed = review(body.as_bytes(), &windows, &policy, now).unwrap();
        group.bench_function(BenchmarkId::new("record_decision", name), |b| {
            b.iter(|| {
                metrics.record_decision(
                    black_box(&reviewed.request),
                    black_box(&reviewed.decision),
                    0.00002,
                    true,
                )
            })
        });
    }
    group.bench_function("encode-3-windows", |b| {
        b.iter(|| black_box(metrics.encode(&windows, now)))
    });
    let many = std::sync::Arc::new(self::windows(5000));
    many.warm(now);
    group.bench_function("encode-5000-windows", |b| {
        b.iter(|| black_box(metrics.encode(&many, now)))
    });
    group.finish();
}

criterion_group!(benches, bench_review, bench_windows, bench_metrics);
criterion_main!(benches);
