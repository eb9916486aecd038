#!/usr/bin/env python3
"""Generate tests/fixtures/cron-reference.json: fire times of cron expressions computed by
croniter (PyPI), an implementation independent of ours, for tests/cron_reference.rs.

    python3 -m venv /tmp/croniter-venv && /tmp/croniter-venv/bin/pip install croniter
    /tmp/croniter-venv/bin/python tools/gen-cron-reference.py

fluxgate follows Kubernetes, i.e. robfig/cron v3's standard parser. croniter is a different
cron and differs from robfig in a few knowing ways; expressions that hit those are listed in
EXCLUDED below with the reason, kept out of the fixture, and covered instead by hand-written
expectations in tests/cron_reference.rs. As a guard against differences nobody listed, every
generated fire time is also checked against `RobfigModel`, a deliberately naive (day by day)
statement of robfig's rules: the script refuses to write a fixture on any disagreement, and
checks that every excluded expression really does disagree (so the list stays honest).

Fire times are computed in UTC: the DST rules of fluxgate are its own (neither croniter's nor
robfig's) and are tested in core/src/cron.rs.
"""

import datetime as dt
import importlib.metadata
import json
import os
import sys

from croniter import croniter

UTC = dt.timezone.utc
NEXT_COUNT = 12
PREV_COUNT = 4

# Instants the searches start from, spread over 2024-2031: exact minutes that are fires of many
# expressions (a start is exclusive for "next" and "prev", so these test that), sub-minute
# instants, leap-day and month/year boundaries. To keep the fixture small each expression runs
# from three of them: expression i from STARTS[(i + k) % 7] for k in START_OFFSETS, a perfect
# difference set, so every start is used equally often and every two starts meet equally often.
STARTS = [
    "2024-01-01T00:00:00Z",  # Monday, midnight of New Year's Day
    "2024-02-28T23:59:30Z",  # the eve of a leap day, half a minute before midnight
    "2025-03-31T23:59:59Z",  # the last second of a 31-day month
    "2026-08-31T12:34:56Z",  # month end, arbitrary seconds
    "2028-02-29T00:00:00Z",  # exactly a leap day at midnight (a Tuesday)
    "2030-06-15T06:07:00Z",  # a Saturday, an exact minute
    "2031-12-31T23:59:00Z",  # the last minute of a year
]
START_OFFSETS = (0, 1, 3)

EXPRESSIONS = [
    # --- minute field ---
    "* * * * *",
    "0 * * * *",
    "30 * * * *",
    "59 * * * *",
    "*/5 * * * *",
    "*/7 * * * *",
    "*/13 * * * *",
    "*/59 * * * *",
    "*/60 * * * *",  # a step longer than the field: only the start (0)
    "0/30 * * * *",
    "5/20 * * * *",  # N/step means N-max/step
    "59/15 * * * *",  # ... so a start at the field maximum is just that value
    "10-20 * * * *",
    "10-20/3 * * * *",
    "0-59/10 * * * *",
    "45-59/2 * * * *",
    "0,15,30,45 * * * *",
    "1,2,3,58,59 * * * *",
    "5,10-15,40-50/5 * * * *",
    "0-4,*/20 * * * *",
    "30/7,3 * * * *",
    # --- hour field ---
    "0 0 * * *",
    "0 12 * * *",
    "59 23 * * *",
    "* 5 * * *",
    "0 */2 * * *",
    "0 */5 * * *",
    "30 */7 * * *",
    "0 3/6 * * *",
    "0 22/1 * * *",
    "15 9-17 * * *",
    "0 9-17/2 * * *",
    "0 8,12,18 * * *",
    "*/15 8-10 * * *",
    "0 0-23/23 * * *",
    "30 2 * * *",
    "0 1,13-15,22 * * *",
    # --- day-of-month field (day-of-week unrestricted) ---
    "0 0 1 * *",
    "0 0 15 * *",
    "0 0 28 * *",
    "0 0 29 * *",
    "0 0 30 * *",
    "0 0 31 * *",
    "59 23 31 * *",
    "59 23 30 * *",
    "0 0 28-31 * *",
    "59 23 28-31 * *",
    "0 0 */2 * *",
    "0 0 */10 * *",
    "0 0 2/3 * *",
    "0 0 1,15 * *",
    "0 0 10-20/5 * *",
    "30 6 1-7 * *",
    "0 0 1,31 * *",
    "0 0 31 1,3,5,7,8,10,12 *",
    "0 0 31 */2 *",
    "0 0 31 feb-may *",
    "0 12 30 jan-mar *",
    # --- month field ---
    "0 0 1 1 *",
    "0 0 1 12 *",
    "0 0 1 */3 *",
    "0 0 1 2/4 *",
    "0 0 1 feb/3 *",
    "0 0 1 jan,apr,jul,oct *",
    "0 0 * feb *",
    "0 12 1 JAN-MAR *",
    "0 0 15 Jun-Aug *",
    "0 0 1 Jan,jUl *",
    "0 0 1 MAR-sep/3 *",
    "0 0 1 nov-dec *",
    "0 0 * 3-5/2 *",
    "0 0 1 dec,1,JUN *",
    "*/30 * * aug *",
    # --- day-of-week field (day-of-month unrestricted) ---
    "0 0 * * 0",
    "0 0 * * 7",  # 7 = Sunday (an extension: robfig's standard parser rejects 7)
    "0 0 * * 1",
    "0 0 * * 6",
    "0 0 * * 0,7",
    "0 0 * * 6,7",
    "0 0 * * 5-7",
    "0 0 * * 0-7",
    "0 0 * * 1-7/2",
    "0 0 * * 5-7/2",
    "0 0 * * 1-5",
    "0 0 * * mon-fri",
    "0 0 * * MON-FRI",
    "0 0 * * Sat,Sun",
    "0 0 * * 0,6",
    "0 0 * * tue-thu",
    "0 0 * * wEd",
    "0 0 * * */2",
    "0 0 * * */3",
    "0 0 * * 1/2",
    "0 0 * * sun/3",
    "0 0 * * 6/2",
    "0 0 * * 0-6",
    "30 8 * * MON,wed,FRI",
    "0 9 * * 1-5/2",
    "0 0 * * sun-sat",
    "*/20 6-7 * * SAT",
    # --- both day fields restricted: a day matches if EITHER does ---
    "0 0 1 * 1",
    "0 0 13 * 5",
    "0 0 13 * FRI",
    "0 0 1,15 * MON",
    "0 12 1-7 * 1",
    "0 0 31 * 0",
    "0 0 15 * 7",
    "0 0 */2 * 1",  # `*/2` restricts (robfig clears the star bit for a step > 1)
    "0 0 1 * */2",
    "0 0 */10 * */3",
    "0 0 2-30/2 * sat,sun",
    "0 0 1-31 * 1",  # a full range is not `*`: OR, so every day
    "0 0 1-31/1 * 1",
    "0 0 1 * 0-6",
    "0 0 1 jan mon",
    "0 0 13 feb,aug fri",
    "0 0 29 2 1",
    "0 0 30 2 1",  # the 30th never comes in February; Mondays in February do
    "0 0 29 2 */2",
    "0 0 31 * 1-5",
    "45 23 1,10,20 * TUE-thu",
    "0 6 5-9 * 3,5",
    # --- `?` is `*` (croniter allows it only in the day fields, see EXCLUDED) ---
    "0 0 ? * MON",
    "0 0 1 * ?",
    "0 0 ? * ?",
    "15 10 ? jan-jun *",
    # --- descriptors ---
    "@hourly",
    "@daily",
    "@midnight",
    "@weekly",
    "@monthly",
    "@yearly",
    "@annually",
    # --- leap days, month ends, year ends ---
    "0 0 29 2 *",
    "59 23 29 2 *",
    "0 0 28,29 2 *",
    "0 0 28-29 feb *",
    "30 12 29 * *",
    "0 0 31 12 *",
    "59 23 31 12 *",
    "59 23 31 DEC *",
    "0 0 1 1,3 *",
    "59 23 28 2 *",
    "0 0 30 4,6,9,11 *",
    # --- mixtures ---
    "*/15 9-17 * * 1-5",
    "0 */4 1-10 * *",
    "0 0,12 1 */2 *",
    "15,45 */6 10-20 mar-oct 1-5",
    "5 4 * * sun",
    "0 22 * * 1-5",
    "23 0-20/2 * * *",
    "0 0,12 * * 0",
    "0 9 1-7 * 1",
    "59 23 * * 6",
    "*/10 0 1 1 *",
    "0 0 1 */6 0",
    "1-59/58 0-23/11 1-31/15 1-12/5 0-6/3",
    # --- whitespace ---
    "  5   4\t*  * *  ",
]

# Expressions on which croniter knowingly disagrees with robfig/cron v3 (Kubernetes); robfig
# wins. Each is covered by hand in tests/cron_reference.rs (robfig_specific_*).
EXCLUDED = {
    # robfig keeps the star bit for a step of 1 (`getRange`: `if step > 1 { extra = 0 }`), so
    # `*/1` leaves its day field unrestricted and the days are ANDed; croniter has no such bit:
    # it keeps `*/1` as a restricting list when the other day field's text has no `*`, and ORs.
    "0 0 */1 * 1": "robfig: `*/1` is unrestricted, so only Mondays; croniter: every day",
    "0 0 1 * */1": "robfig: `*/1` is unrestricted, so only the 1st; croniter: every day",
    # croniter rewrites a day field that lists every value to `*` when the other day field's
    # text contains a `*` (e.g. `*/2`), and then ANDs; robfig ORs because neither field has
    # its star bit.
    "0 0 1-31 * */2": "robfig: OR, so every day; croniter: `1-31` became `*`, so Sun/Tue/Thu/Sat",
    "0 0 */2 * 0-6": "robfig: OR, so every day; croniter: `0-6` became `*`, so odd days only",
    # croniter reads an explicit equal range `N-N` (with or without a step) as the whole field;
    # robfig reads it as N.
    "5-5 * * * *": "robfig: minute 5; croniter: every minute",
    "0 3-3 * * *": "robfig: 03:00; croniter: every hour",
    "10-10/5 * * * *": "robfig: minute 10; croniter: every 5 minutes",
    "0 0 1 1-1/2 *": "robfig: January; croniter: every other month",
    "0 0 * * mon-mon": "robfig: Mondays; croniter: every day",
    # robfig accepts `?` in every field (as `*`); croniter only in the day fields.
    "? * * * *": "robfig: every minute; croniter: rejects",
    "0 ? * * *": "robfig: every hour; croniter: rejects",
    "0 0 ?/2 * *": "robfig: `?/2` is `*/2` (odd days); croniter: rejects",
}


class RobfigModel:
    """robfig/cron v3 standard-parser semantics, stated naively, plus day-of-week 7 = Sunday."""

    MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
    DESCRIPTORS = {
        "@yearly": "0 0 1 1 *",
        "@annually": "0 0 1 1 *",
        "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *",
        "@midnight": "0 0 * * *",
        "@hourly": "0 * * * *",
    }

    def __init__(self, expr):
        text = self.DESCRIPTORS.get(expr.strip(), expr)
        fields = text.split()
        assert len(fields) == 5, expr
        self.minutes, _ = self.field(fields[0], 0, 59, {})
        self.hours, _ = self.field(fields[1], 0, 23, {})
        self.doms, self.dom_star = self.field(fields[2], 1, 31, {})
        self.months, _ = self.field(fields[3], 1, 12, {n: i + 1 for i, n in enumerate(self.MONTHS)})
        dows, self.dow_star = self.field(fields[4], 0, 6, {n: i for i, n in enumerate(self.DAYS)})
        self.dows = {d % 7 for d in dows}

    @staticmethod
    def field(text, lo, hi, names):
        values, star = set(), False

        def value(s):
            v = names[s.lower()] if s.lower() in names else int(s)
            # The only departure from robfig: day-of-week 7 is accepted (as Sunday).
            assert lo <= v <= (7 if hi == 6 else hi), text
            return v

        for part in text.split(","):
            rng, _, step = part.partition("/")
            step = int(step) if step else 1
            assert step > 0
            if rng in ("*", "?"):
                start, end, part_star = lo, hi, step == 1
            else:
                a, dash, b = rng.partition("-")
                start = value(a)
                end = value(b) if dash else (hi if "/" in part else start)
                part_star = False
            assert start <= end, text
            values.update(range(start, end + 1, step))
            star |= part_star
        return values, star

    def day(self, d):
        dom, dow = d.day in self.doms, (d.isoweekday() % 7) in self.dows
        return (dom and dow) if (self.dom_star or self.dow_star) else (dom or dow)

    def fires_on(self, d):
        if d.month in self.months and self.day(d):
            for h in sorted(self.hours):
                for m in sorted(self.minutes):
                    yield dt.datetime(d.year, d.month, d.day, h, m, tzinfo=UTC)

    def next(self, start, n):
        out, d = [], start.date()
        while len(out) < n:
            out += [t for t in self.fires_on(d) if t > start][: n - len(out)]
            d += dt.timedelta(days=1)
        return out

    def prev(self, start, n):
        out, d = [], start.date()
        while len(out) < n:
            out += [t for t in reversed(list(self.fires_on(d))) if t < start][: n - len(out)]
            d -= dt.timedelta(days=1)
        return out


def parse_instant(s):
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def fmt(t):
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def croniter_fires(expr, start, n, backwards):
    it = croniter(expr, start)
    step = it.get_prev if backwards else it.get_next
    return [step(dt.datetime) for _ in range(n)]


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out_path = os.path.join(root, "tests", "fixtures", "cron-reference.json")
    version = importlib.metadata.version("croniter")

    assert len(set(EXPRESSIONS)) == len(EXPRESSIONS), "duplicate expression"
    assert not set(EXPRESSIONS) & set(EXCLUDED), "an expression is both included and excluded"

    problems = []
    for expr in EXCLUDED:
        model = RobfigModel(expr)
        start = parse_instant(STARTS[0])
        try:
            got = croniter_fires(expr, start, NEXT_COUNT, False)
        except Exception:  # croniter rejects it: that is the disagreement
            continue
        if got == model.next(start, NEXT_COUNT):
            problems.append(f"{expr!r} is excluded but croniter agrees with robfig on it")

    cases = []
    fires = 0
    for i, expr in enumerate(EXPRESSIONS):
        model = RobfigModel(expr)
        runs = []
        for s in sorted(STARTS[(i + k) % len(STARTS)] for k in START_OFFSETS):
            start = parse_instant(s)
            nxt = croniter_fires(expr, start, NEXT_COUNT, False)
            prv = croniter_fires(expr, start, PREV_COUNT, True)
            if nxt != model.next(start, NEXT_COUNT) or prv != model.prev(start, PREV_COUNT):
                problems.append(f"croniter disagrees with the robfig model on {expr!r} from {s}")
            runs.append({"start": s, "next": [fmt(t) for t in nxt], "prev": [fmt(t) for t in prv]})
            fires += len(nxt) + len(prv)
        cases.append({"expr": expr, "runs": runs})

    if problems:
        sys.exit("refusing to write the fixture:\n  " + "\n  ".join(problems))

    header = {
        "about": "Fire times computed by croniter, in UTC, by tools/gen-cron-reference.py. "
        "`next`: the first fires strictly after `start`; `prev`: the last fires strictly "
        "before it, newest first. Regenerate with that script; do not edit by hand.",
        "croniter_version": version,
        "generated": dt.datetime.now(UTC).date().isoformat(),
        "time_zone": "UTC",
        "excluded": EXCLUDED,
    }
    # One run per line: reviewable diffs, and well under the size budget.
    lines = ["{"]
    for key, value in header.items():
        text = json.dumps(value, ensure_ascii=False, indent=2).replace("\n", "\n  ")
        lines.append(f"  {json.dumps(key)}: {text},")
    lines.append('  "cases": [')
    for i, case in enumerate(cases):
        lines.append(f"    {{\"expr\": {json.dumps(case['expr'])}, \"runs\": [")
        for j, run in enumerate(case["runs"]):
            sep = "," if j + 1 < len(case["runs"]) else ""
            lines.append(f"      {json.dumps(run, separators=(',', ':'))}{sep}")
        lines.append("    ]}" + ("," if i + 1 < len(cases) else ""))
    lines.append("  ]")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    json.loads(text)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(text)
    print(
        f"wrote {os.path.relpath(out_path, root)}: croniter {version}, {len(cases)} expressions, "
        f"{len(cases) * len(START_OFFSETS)} runs, {fires} fire times, {len(text)} bytes; "
        f"{len(EXCLUDED)} expressions excluded"
    )


if __name__ == "__main__":
    main()
