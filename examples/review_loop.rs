//! A request's pure work in a loop: `review` (parse and decide), the response and the audit
//! line, on one of the recorded reviews; for counting instructions per review under callgrind,
//! where criterion's timing loop would count its own work too (BENCHMARKS.md, session 6):
//!
//! ```sh
//! cargo build --release --example review_loop
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/review_loop busy 400
//! ```
//!
//! Cases: `recorded`, `busy`, `noop`, `configmap`, `prune`. Take the difference between two
//! iteration counts, divided by their difference, to leave out the setup.
use fluxgate_core::admission::review;
use fluxgate_core::policy::Policy;
use fluxgate_core::window::WindowSet;
use std::hint::black_box;

#[path = "../benches/support/reviews.rs"]
mod reviews;
use reviews::{BUMP, CONFIGMAP, PRUNE, UNCHANGED, big};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let case = args[1].as_str();
    let n: usize = args[2].parse().unwrap();
    let body = match case {
        "recorded" => BUMP.as_bytes().to_vec(),
        "busy" => big(BUMP),
        "noop" => big(UNCHANGED),
        "configmap" => CONFIGMAP.as_bytes().to_vec(),
        "prune" => PRUNE.as_bytes().to_vec(),
        other => panic!("unknown case {other}: recorded, busy, noop, configmap or prune"),
    };
    let windows = WindowSet::from_yaml("x", fluxgate::windows::EMBEDDED_WINDOWS).unwrap();
    let policy = Policy::default();
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
        .unwrap()
        .to_utc();
    let mut out = Vec::with_capacity(4096);
    let t = std::time::Instant::now();
    for _ in 0..n {
        let reviewed = review(black_box(&body), &windows, &policy, now).unwrap();
        black_box(reviewed.response_json().unwrap());
        out.clear();
        fluxgate_core::audit::write_line(
            &mut out,
            &reviewed.request,
            &reviewed.decision,
            "unverified 10.0.0.1:1234",
            now,
            0.000021,
        );
        black_box(&out);
    }
    eprintln!(
        "{case}: {:.2} us/iter",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}
