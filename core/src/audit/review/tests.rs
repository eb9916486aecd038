//! The audit review's filter, line classification and aggregates, on records built here.

use super::filter::glob;
use super::*;
use crate::audit::record::AuditBypass;
use crate::audit::{AuditOwner, AuditWindow};
use crate::policy::Reason;
use chrono::{DateTime, Duration, Utc};

fn utc(t: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc)
}

/// A Flux update of Deployment `ns/name`, denied as window-closed in business-hours.
fn mk_record(name: &str) -> AuditRecord {
    AuditRecord {
        time: utc("2026-11-27T12:00:00Z"),
        uid: format!("uid-{name}"),
        decision: AuditDecision::Deny,
        reason: Reason::WindowClosed,
        message: "closed".into(),
        dry_run: false,
        operation: kube::core::admission::Operation::Update,
        user: "system:serviceaccount:flux-system:kustomize-controller".into(),
        groups: vec![],
        field_manager: Some("kustomize-controller".into()),
        group: "apps".into(),
        version: "v1".into(),
        kind: "Deployment".into(),
        namespace: Some("nginx".into()),
        name: name.into(),
        mode: Some("rw".into()),
        windows: vec![AuditWindow {
            name: "business-hours".into(),
            exists: true,
            open: false,
            frozen: false,
            since: None,
            next: None,
            time_zone: Some("Europe/Berlin".into()),
            override_: None,
        }],
        owner: Some(AuditOwner {
            kind: "Kustomization".into(),
            namespace: Some("flux-system".into()),
            name: "apps-rw".into(),
        }),
        bypass: None,
        enforcement: None,
        duration_seconds: 0.0001,
        caller: String::new(),
    }
}

fn allow(mut r: AuditRecord, reason: Reason) -> AuditRecord {
    r.decision = AuditDecision::Allow;
    r.reason = reason;
    r
}

fn line(r: &AuditRecord) -> Vec<u8> {
    r.to_line()
}

// === filter ===

#[test]
fn glob_matches_stars_only() {
    let cases = [
        ("nginx", "nginx", true),
        ("nginx", "nginx2", false),
        ("ngin*", "nginx-rw", true),
        ("*-rw", "apps-rw", true),
        ("*-rw", "apps-rt", false),
        ("a*b*c", "aXXbYYc", true),
        ("a*b*c", "aXXbYY", false),
        ("*", "", true),
        ("", "", true),
        ("", "x", false),
        (
            "system:serviceaccount:flux-system:*",
            "system:serviceaccount:flux-system:helm-controller",
            true,
        ),
    ];
    for (pattern, text, expected) in cases {
        assert_eq!(glob(pattern, text), expected, "{pattern:?} ~ {text:?}");
    }
}

#[test]
fn times_are_durations_before_now_or_instants() {
    let now = utc("2026-11-27T12:00:00Z");
    assert_eq!(
        TimeSpec::parse("24h").unwrap().resolve(now),
        utc("2026-11-26T12:00:00Z")
    );
    assert_eq!(
        TimeSpec::parse("1h30m").unwrap().resolve(now),
        utc("2026-11-27T10:30:00Z")
    );
    assert_eq!(
        TimeSpec::parse("2026-11-27T13:00:00+01:00")
            .unwrap()
            .resolve(now),
        utc("2026-11-27T12:00:00Z")
    );
    let error = TimeSpec::parse("yesterday").unwrap_err();
    assert!(error.contains("neither a duration"), "{error}");
    assert!(TimeSpec::parse("-1h").is_err());
}

#[test]
fn filters_combine_and_values_within_one_are_alternatives() {
    let r = mk_record("nginx");
    let check = |f: Filter| f.check(&r);
    assert_eq!(check(Filter::default()), Verdict::Match);
    let deny = Filter {
        decisions: vec![AuditDecision::Deny],
        ..Filter::default()
    };
    assert_eq!(check(deny.clone()), Verdict::Match);
    assert_eq!(
        check(Filter {
            decisions: vec![AuditDecision::Allow],
            ..Filter::default()
        }),
        Verdict::NoMatch
    );
    let cases: Vec<(Filter, Verdict)> = vec![
        (
            Filter {
                reasons: vec![Reason::Frozen, Reason::WindowClosed],
                ..deny.clone()
            },
            Verdict::Match,
        ),
        (
            Filter {
                reasons: vec![Reason::Frozen],
                ..deny.clone()
            },
            Verdict::NoMatch,
        ),
        (
            Filter {
                windows: vec!["business-*".into()],
                ..deny.clone()
            },
            Verdict::Match,
        ),
        (
            Filter {
                windows: vec!["nightly".into()],
                ..deny.clone()
            },
            Verdict::NoMatch,
        ),
        (
            Filter {
                kinds: vec!["deployment".into()],
                ..deny.clone()
            },
            Verdict::Match,
        ),
        (
            Filter {
                kinds: vec!["Service".into()],
                ..deny.clone()
            },
            Verdict::NoMatch,
        ),
        (
            Filter {
                namespaces: vec!["other".into(), "ngi*".into()],
                ..deny.clone()
            },
            Verdict::Match,
        ),
        (
            Filter {
                names: vec!["nginx".into()],
                namespaces: vec!["other".into()],
                ..deny.clone()
            },
            Verdict::NoMatch,
        ),
        (
            Filter {
                users: vec!["*:kustomize-controller".into()],
                ..deny.clone()
            },
            Verdict::Match,
        ),
        (
            Filter {
                users: vec!["admin".into()],
                ..deny.clone()
            },
            Verdict::NoMatch,
        ),
        (
            Filter {
                owners: vec!["apps-rw".into()],
                ..deny.clone()
            },
            Verdict::Match,
        ),
        (
            Filter {
                owners: vec!["flux-system/apps-rw".into()],
                ..deny.clone()
            },
            Verdict::Match,
        ),
        (
            Filter {
                owners: vec!["kustomization/flux-system/apps-*".into()],
                ..deny.clone()
            },
            Verdict::Match,
        ),
        (
            Filter {
                owners: vec!["HelmRelease/flux-system/apps-rw".into()],
                ..deny.clone()
            },
            Verdict::NoMatch,
        ),
        (
            Filter {
                owners: vec!["other/apps-rw".into()],
                ..deny.clone()
            },
            Verdict::NoMatch,
        ),
        // since is inclusive, until exclusive.
        (
            Filter {
                since: Some(r.time),
                until: Some(r.time + Duration::seconds(1)),
                ..deny.clone()
            },
            Verdict::Match,
        ),
        (
            Filter {
                until: Some(r.time),
                ..deny.clone()
            },
            Verdict::NoMatch,
        ),
        (
            Filter {
                since: Some(r.time + Duration::seconds(1)),
                ..deny.clone()
            },
            Verdict::NoMatch,
        ),
    ];
    for (i, (filter, expected)) in cases.into_iter().enumerate() {
        assert_eq!(check(filter), expected, "case {i}");
    }
}

#[test]
fn only_admitted_dry_runs_are_hidden_unless_asked_for() {
    // Flux's drift check: an admitted dry-run.
    let mut drift = mk_record("nginx");
    drift.dry_run = true;
    drift.decision = AuditDecision::Allow;
    drift.reason = Reason::NoOp;
    assert_eq!(Filter::default().check(&drift), Verdict::HiddenDryRun);
    let deny_only = Filter {
        decisions: vec![AuditDecision::Deny],
        ..Filter::default()
    };
    assert_eq!(deny_only.check(&drift), Verdict::NoMatch);
    let include = Filter {
        include_dry_run: true,
        ..Filter::default()
    };
    assert_eq!(include.check(&drift), Verdict::Match);

    // kustomize-controller stops at its first failed dry-run: that denial is the one record
    // of a denied Flux change, so it is always shown.
    let mut denied = mk_record("nginx");
    denied.dry_run = true;
    assert_eq!(Filter::default().check(&denied), Verdict::Match);

    // Every bypass is shown, valid (admitted) or not, dry-run or not.
    let mut bypass = drift.clone();
    bypass.reason = Reason::Bypass;
    bypass.bypass = Some(AuditBypass {
        reason: Some("CVE".into()),
        until: Some("2026-11-27T18:00:00Z".into()),
        valid: true,
    });
    assert_eq!(Filter::default().check(&bypass), Verdict::Match);
}

// === lines ===

/// Reads `input` as `source` with no filter: the names of the records read, and the rest.
fn review(source: &str, input: &[u8]) -> (Vec<String>, Finished) {
    let mut report = Review::new(Filter::default(), 10);
    let mut seen = Vec::new();
    report
        .read(source, input, |r| {
            seen.push(r.name);
            Ok(())
        })
        .unwrap();
    (seen, report.finish())
}

#[test]
fn lines_are_records_app_logs_blank_or_unparseable() {
    let record = line(&mk_record("nginx"));
    assert!(matches!(classify(&record), Line::Record(_)));
    assert!(matches!(classify(b"  \r\n"), Line::Blank));
    // kubectl logs --prefix and --timestamps.
    let prefixed = [b"[pod/fluxgate-7d9/fluxgate] ".as_slice(), &record].concat();
    assert!(matches!(classify(&prefixed), Line::Record(_)));
    let stamped = [b"2026-11-27T12:00:00.123456789Z ".as_slice(), &record].concat();
    assert!(matches!(classify(&stamped), Line::Record(_)));
    // fluxgate's own logs on stderr, text (coloured or not) and JSON.
    let app_logs: [&[u8]; 4] = [
        b"2026-11-27T12:00:00.123456Z  INFO fluxgate::cli::serve: windows loaded windows=3",
        b"\x1b[2m2026-11-27T12:00:00.123456Z\x1b[0m \x1b[33m WARN\x1b[0m \x1b[2mfluxgate\x1b[0m: no --windows",
        br#"{"timestamp":"2026-11-27T12:00:00Z","level":"INFO","message":"listening","target":"fluxgate"}"#,
        // An event with a `uid` field of its own (a record that could not be written).
        br#"{"timestamp":"2026-11-27T12:00:00Z","level":"ERROR","error":"disk full","uid":"u1","message":"cannot write audit record; answering with an error","target":"fluxgate::server"}"#,
    ];
    for text in app_logs {
        assert!(
            matches!(classify(text), Line::AppLog),
            "{}",
            String::from_utf8_lossy(text)
        );
    }
    let unparseable: [(&[u8], &str); 4] = [
        (b"garbage", "not JSON"),
        (br#"{"uid":"x"}"#, "not an audit record: missing field"),
        (&record[..40], "not an audit record"),
        (b"\xff\xfe{", "not UTF-8"),
    ];
    for (text, expected) in unparseable {
        match classify(text) {
            Line::Unparseable(error) => assert!(error.contains(expected), "{error}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn reading_counts_every_line_and_lists_the_bad_ones_by_number() {
    let mut input = Vec::new();
    input.extend(line(&mk_record("a")));
    input.extend(b"not json\n");
    input.extend(b"\n");
    input.extend(b"2026-11-27T12:00:00.1Z  INFO fluxgate: hello\n");
    for _ in 0..25 {
        input.extend(b"{\"broken\":\n");
    }
    // A Windows line end, then a last line not ended yet (a file being written): a whole
    // record but for its newline, read once the newline is there.
    input.extend(b"{}\r\n");
    let last = line(&mk_record("b"));
    input.extend(&last[..last.len() - 1]);

    let (seen, finished) = review("audit.log", &input);
    assert_eq!(seen, ["a"]);
    assert_eq!(
        finished.stats,
        Stats {
            lines: 30,
            blank_lines: 1,
            records: 1,
            matched: 1,
            hidden_dry_runs: 0,
            app_log_lines: 1,
            unparseable_lines: 27,
        }
    );
    assert_eq!(
        finished.partial_last_lines,
        [PartialLine {
            source: "audit.log".to_owned(),
            line: 31,
            bytes: last.len() as u64 - 1,
        }]
    );
    let bad = &finished.unparseable[0];
    assert_eq!((bad.source.as_str(), bad.count), ("audit.log", 27));
    assert_eq!(bad.lines.len(), MAX_LISTED_LINES);
    let numbers: Vec<u64> = bad.lines.iter().map(|l| l.line).collect();
    assert_eq!(numbers[..3], [2, 5, 6]);
    assert_eq!(finished.app_log_lines[0].lines[0].line, 4);
}

/// Issue 21 (10): a review of a file while fluxgate appends to it ends at the last newline.
/// The half line after it is not unparseable: the next review reads it whole.
#[test]
fn a_growing_file_is_read_to_its_last_newline_and_the_rest_on_the_next_read() {
    let (a, b) = (line(&mk_record("a")), line(&mk_record("b")));
    let review = |input: &[u8]| review("audit.log", input).1;
    let now = review(&[a.as_slice(), &b[..100]].concat());
    assert_eq!((now.stats.records, now.stats.unparseable_lines), (1, 0));
    assert_eq!(
        now.partial_last_lines,
        [PartialLine {
            source: "audit.log".to_owned(),
            line: 2,
            bytes: 100
        }]
    );
    let later = review(&[a.as_slice(), &b].concat());
    assert_eq!((later.stats.records, later.stats.unparseable_lines), (2, 0));
    assert_eq!(later.partial_last_lines, []);
    // An overlong half line too.
    let huge = vec![b'x'; MAX_LINE_BYTES + 10];
    let now = review(&[a.as_slice(), &huge].concat());
    assert_eq!((now.stats.lines, now.stats.unparseable_lines), (1, 0));
    assert_eq!(now.partial_last_lines[0].bytes, huge.len() as u64);
}

/// Standard error's lines in a container runtime's log file are application log, whatever
/// they hold: a record forged into an older version's text log (its newline written raw) is
/// not counted. Standard output's split lines are joined; a split line without its last
/// piece is left for the next read.
#[test]
fn a_runtime_log_file_counts_only_standard_output_as_records() {
    let record = |name: &str| {
        let mut l = line(&mk_record(name));
        l.pop();
        l
    };
    let cri = |stream: &str, tag: &str, text: &[u8]| {
        [
            format!("2026-11-27T12:00:00.123456789Z {stream} {tag} ").as_bytes(),
            text,
            b"\n",
        ]
        .concat()
    };
    let forged = record("forged");
    let split = record("split");
    let (head, tail) = split.split_at(50);
    let mut input = Vec::new();
    input.extend(cri(
        "stderr",
        "F",
        b"2026-11-27T12:00:00.1Z  INFO fluxgate: hello",
    ));
    input.extend(cri("stdout", "F", &record("a")));
    input.extend(cri(
        "stderr",
        "F",
        b"2026-11-27T12:00:00.2Z  WARN fluxgate: rejected error=`",
    ));
    input.extend(cri("stderr", "F", &forged));
    input.extend(cri("stdout", "P", head));
    input.extend(cri(
        "stderr",
        "F",
        b"2026-11-27T12:00:00.3Z  INFO fluxgate: between",
    ));
    input.extend(cri("stdout", "F", tail));
    input.extend(b"{\"time\": not a runtime line\n");
    input.extend(cri("stdout", "P", &record("unfinished")[..30]));

    let (seen, finished) = review("0.log", &input);
    assert_eq!(seen, ["a", "split"]);
    assert_eq!(finished.stats.records, 2);
    assert_eq!(finished.stats.app_log_lines, 4);
    assert_eq!(finished.summary.bypasses.len(), 0);
    let bad = &finished.unparseable[0].lines;
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].line, 8);
    assert!(
        bad[0].error.contains("not a container runtime log line"),
        "{}",
        bad[0].error
    );
    assert_eq!(finished.partial_last_lines[0].line, 9);
    assert_eq!(finished.partial_last_lines[0].bytes, 30);
}

#[test]
fn overlong_lines_are_skipped_without_being_held() {
    let mut input = vec![b'x'; MAX_LINE_BYTES + 10];
    input.push(b'\n');
    input.extend(line(&mk_record("a")));
    let mut report = Review::new(Filter::default(), 10);
    let mut count = 0;
    report
        .read(
            "big.log",
            std::io::BufReader::with_capacity(4096, input.as_slice()),
            |_| {
                count += 1;
                Ok(())
            },
        )
        .unwrap();
    assert_eq!(count, 1);
    let finished = report.finish();
    assert_eq!(finished.unparseable[0].lines[0].line, 1);
    assert!(
        finished.unparseable[0].lines[0]
            .error
            .contains("longer than")
    );
}

#[test]
fn input_errors_name_the_source_and_line() {
    struct Failing(usize);
    impl std::io::Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("disk on fire"));
            }
            self.0 -= 1;
            buf[0] = b'\n';
            Ok(1)
        }
    }
    let mut report = Review::new(Filter::default(), 10);
    let error = report
        .read("x.log", std::io::BufReader::new(Failing(2)), |_| Ok(()))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot read x.log after line 2: disk on fire"
    );
}

// === summary ===

#[test]
fn summary_counts_by_decision_window_owner_and_lists_bypasses() {
    let mut report = Review::new(Filter::default(), 2);
    let mut records = vec![
        mk_record("a"),
        mk_record("a"),
        mk_record("b"),
        mk_record("c"),
        allow(mk_record("d"), Reason::WindowOpen),
    ];
    records[1].time = utc("2026-11-28T12:00:00Z");
    records[1].reason = Reason::Frozen;
    let mut human = allow(mk_record("e"), Reason::NotFlux);
    human.owner = None;
    human.windows.clear();
    human.user = "admin".into();
    records.push(human);
    let mut bypass = allow(mk_record("f"), Reason::Bypass);
    bypass.bypass = Some(AuditBypass {
        reason: Some("CVE".into()),
        until: Some("2026-11-27T18:00:00Z".into()),
        valid: true,
    });
    records.push(bypass);
    let mut invalid = mk_record("g");
    invalid.reason = Reason::InvalidBypass;
    invalid.bypass = Some(AuditBypass {
        reason: None,
        until: Some("2026-11-26T18:00:00Z".into()),
        valid: false,
    });
    records.push(invalid);
    let mut dry = allow(mk_record("a"), Reason::NoOp);
    dry.dry_run = true;
    records.push(dry);

    for (i, r) in records.iter().enumerate() {
        report.feed("log", i as u64 + 1, &line(r));
    }
    let f = report.finish();
    assert_eq!(
        (f.stats.records, f.stats.matched, f.stats.hidden_dry_runs),
        (9, 8, 1)
    );
    let s = &f.summary;
    assert_eq!(s.matched, 8);
    assert_eq!(s.first_time, Some(utc("2026-11-27T12:00:00Z")));
    assert_eq!(s.last_time, Some(utc("2026-11-28T12:00:00Z")));
    let deny = &s.by_decision["deny"];
    assert_eq!(deny.total, 5);
    assert_eq!(
        deny.reasons
            .iter()
            .map(|(r, n)| (*r, *n))
            .collect::<Vec<_>>(),
        [
            (Reason::WindowClosed, 3),
            (Reason::Frozen, 1),
            (Reason::InvalidBypass, 1)
        ]
    );
    let allow_counts = &s.by_decision["allow"];
    assert_eq!(allow_counts.total, 3);
    assert_eq!(s.by_window["business-hours"], Counts { allow: 2, deny: 5 });
    assert_eq!(
        s.by_owner["Kustomization flux-system/apps-rw"],
        Counts { allow: 2, deny: 5 }
    );
    assert_eq!(s.by_owner.len(), 1);
    // Top 2: "a" twice (latest frozen), then the first by name among the singles.
    let top: Vec<(&str, u64, Reason)> = s
        .top_denied
        .iter()
        .map(|d| (d.object.as_str(), d.denials, d.last_reason))
        .collect();
    assert_eq!(
        top,
        [
            ("Deployment nginx/a", 2, Reason::Frozen),
            ("Deployment nginx/b", 1, Reason::WindowClosed)
        ]
    );
    let bypasses: Vec<(&str, bool, Option<&str>)> = s
        .bypasses
        .iter()
        .map(|b| (b.object.as_str(), b.valid, b.until.as_deref()))
        .collect();
    assert_eq!(
        bypasses,
        [
            ("Deployment nginx/f", true, Some("2026-11-27T18:00:00Z")),
            ("Deployment nginx/g", false, Some("2026-11-26T18:00:00Z")),
        ]
    );
    assert_eq!(s.bypasses[0].reason.as_deref(), Some("CVE"));
    assert_eq!(
        s.bypasses[0].actor,
        "system:serviceaccount:flux-system:kustomize-controller"
    );
    assert_eq!(s.bypasses[0].windows, ["business-hours"]);
}
