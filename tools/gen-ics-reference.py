#!/usr/bin/env python3
"""Generate tests/fixtures/ics-reference.json: the occurrences of the calendars in
tests/fixtures/ics/ as Python's icalendar and recurring-ical-events (PyPI) expand them, an
implementation independent of ours, for tests/ics_reference.rs.

    python3 -m venv /tmp/ics-venv && /tmp/ics-venv/bin/pip install icalendar recurring-ical-events
    /tmp/ics-venv/bin/python tools/gen-ics-reference.py

Each calendar is expanded for windows in several time zones, east and west of UTC, since
all-day (DATE) events and floating times are read in the window's zone: a date is the day from
its midnight to the next in that zone (RFC 5545 leaves the zone to the reader; fluxgate's is the
window's). Occurrences are kept when they start in [FROM, TO), as UTC instants.

Where fluxgate knowingly differs from recurring-ical-events, the fixtures keep out of the way
and the Rust side has hand-written tests instead:
- STATUS:CANCELLED: recurring-ical-events returns cancelled events (and instances) as they are;
  fluxgate leaves them out. This script drops them from its answer (the one adaptation made
  here).
- DURATION with hours, minutes or seconds across a DST change: RFC 5545 3.3.6 makes them exact
  (elapsed) time, as fluxgate does; Python adds them on the clock. No fixture event has one that
  crosses a change.
- What fluxgate refuses (DTSTART not an instance of its RRULE, UNTIL of another kind than
  DTSTART, zero-length events, ...) Python expands somehow; the fixtures have none of it.

As a guard on the reference itself, the script checks the Easter-dependent days of the German
and English calendars against dateutil's Easter (Karfreitag/Good Friday = Easter - 2, Ostermontag
/Easter Monday + 1, Christi Himmelfahrt + 39, Pfingstmontag + 50) and refuses to write on any
disagreement.
"""

import datetime as dt
import importlib.metadata
import json
import os
import sys
import zoneinfo

import icalendar
import recurring_ical_events
from dateutil.easter import easter

UTC = dt.timezone.utc
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "ics")
OUT = os.path.join(ROOT, "tests", "fixtures", "ics-reference.json")

FROM = dt.datetime(2020, 1, 1, tzinfo=UTC)
TO = dt.datetime(2036, 1, 1, tzinfo=UTC)

CALENDARS = [
    "de-be-public.ics",
    "de-by-ferien.ics",
    "UKHolidays-EnglandWales.ics",
    "AlbanianHolidays.ics",
    "fluxgate-rules.ics",
]
# East of UTC with DST (Berlin), west with DST (New York), far east with southern DST (Auckland).
ZONES = ["Europe/Berlin", "America/New_York", "Pacific/Auckland"]

# Summary -> days after Easter Sunday, for the guard.
EASTER_DAYS = {
    "Karfreitag": -2,
    "Ostermontag": 1,
    "Christi Himmelfahrt": 39,
    "Pfingstmontag": 50,
    "Good Friday": -2,
    "Easter Monday": 1,
}


def instant(value, zone):
    """A DATE, floating DATE-TIME or zoned DATE-TIME as a UTC instant, dates and floating times
    read in `zone` (fold=0: the first of a repeated hour, the offset before a gap)."""
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time(0))
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def utc_text(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def expand(path, zone_name):
    zone = zoneinfo.ZoneInfo(zone_name)
    with open(path, "rb") as f:
        calendar = icalendar.Calendar.from_ical(f.read())
    # A day of margin either side, in any zone; the instants are filtered below.
    events = recurring_ical_events.of(calendar).between(
        (FROM - dt.timedelta(days=2)).date(), (TO + dt.timedelta(days=2)).date()
    )
    out = []
    for event in events:
        if str(event.get("STATUS", "")).upper() == "CANCELLED":
            continue
        start = instant(event["DTSTART"].dt, zone)
        end = instant(event["DTEND"].dt, zone)
        if not FROM <= start < TO:
            continue
        summary = event.get("SUMMARY")
        out.append(
            [
                utc_text(start),
                utc_text(end),
                str(event["UID"]),
                None if summary is None else str(summary),
            ]
        )
    out.sort(key=lambda o: (o[0], o[1], o[2], o[3] or ""))
    return out


def check_easter(name, zone_name, occurrences):
    """The Easter-dependent days of the holiday calendars fall where dateutil's Easter puts
    them; returns the number checked."""
    zone = zoneinfo.ZoneInfo(zone_name)
    checked = 0
    for start, _, _, summary in occurrences:
        if summary not in EASTER_DAYS:
            continue
        day = dt.datetime.fromisoformat(start.replace("Z", "+00:00")).astimezone(zone).date()
        want = easter(day.year) + dt.timedelta(days=EASTER_DAYS[summary])
        if day != want:
            sys.exit(f"{name} in {zone_name}: {summary} on {day}, Easter says {want}")
        checked += 1
    return checked


def dumps(fixture):
    """JSON with one occurrence per line: reviewable diffs when a fixture or a library
    changes."""
    one = lambda v: json.dumps(v, ensure_ascii=False)
    head = ",\n".join(f" {one(k)}: {one(v)}" for k, v in fixture.items() if k != "cases")
    cases = []
    for case in fixture["cases"]:
        occurrences = ",\n".join(f"   {one(o)}" for o in case["occurrences"])
        cases.append(
            f'  {{"calendar": {one(case["calendar"])}, "zone": {one(case["zone"])}, '
            f'"occurrences": [\n{occurrences}\n  ]}}'
        )
    return "{\n" + head + ',\n "cases": [\n' + ",\n".join(cases) + "\n ]\n}"


def main():
    cases = []
    easter_checked = 0
    for name in CALENDARS:
        for zone_name in ZONES:
            occurrences = expand(os.path.join(FIXTURES, name), zone_name)
            if not occurrences:
                sys.exit(f"{name} in {zone_name}: no occurrences")
            easter_checked += check_easter(name, zone_name, occurrences)
            cases.append({"calendar": name, "zone": zone_name, "occurrences": occurrences})
    if easter_checked < 2 * 3 * 4 * 5:
        sys.exit(f"only {easter_checked} Easter-dependent days checked: are the fixtures there?")
    fixture = {
        "generated_by": "tools/gen-ics-reference.py",
        "icalendar_version": importlib.metadata.version("icalendar"),
        "recurring_ical_events_version": importlib.metadata.version("recurring-ical-events"),
        "from": utc_text(FROM),
        "to": utc_text(TO),
        "cases": cases,
    }
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(dumps(fixture) + "\n")
    total = sum(len(c["occurrences"]) for c in cases)
    print(
        f"wrote {OUT}: {len(cases)} cases, {total} occurrences, "
        f"{easter_checked} Easter-dependent days checked against dateutil.easter"
    )


if __name__ == "__main__":
    main()
