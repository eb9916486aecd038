#!/usr/bin/env python3
"""Write N heavy ReconciliationWindows (default 1,000) to stdout: windows whose schedules are
built from one-minute runs that merge, or whose parts change every minute without the window
changing, the worst a window file realistically asks of the state search (issue 21, item 9).

    python3 tools/gen-heavy-windows.py 1000 > /tmp/heavy.yaml
    python3 tools/gen-heavy-windows.py 200 flicker > /tmp/flicker.yaml   # one kind only
    time target/release/fluxgate status --windows /tmp/heavy.yaml --at 2026-11-26T12:00:00Z

Five kinds, in turn (the name says which), in Berlin (whose DST folds break the merged runs
for an hour, since a repeated wall-clock minute fires once) and UTC:

- always: a start every minute lasting 1h (open for good but at the folds), a one-off freeze
  and a weekend freeze;
- flicker: an open/close pair changing every minute next to a start every minute lasting 1h,
  so the parts change 1,440 times a day and the window hardly ever;
- alternate: two start schedules of one minute on alternate minutes (runs that abut), and a
  one-off freeze;
- office: starts every minute of office hours lasting 5 minutes (one run a working day);
- overlap: a start every two minutes lasting 3 minutes, and a nightly recurring freeze.
"""

import sys

KINDS = {
    "always": """\
  timeZone: Europe/Berlin
  schedules:
    - start: "* * * * *"
      duration: 1h
  freezes:
    - start: "2026-12-20T00:00:00"
      end: "2027-01-04T00:00:00"
      reason: Year-end
    - schedule: "0 15 * * FRI"
      duration: 65h
      reason: Weekend
""",
    "flicker": """\
  timeZone: Europe/Berlin
  schedules:
    - open: "0-58/2 * * * *"
      close: "1-59/2 * * * *"
    - start: "* * * * *"
      duration: 1h
""",
    "alternate": """\
  timeZone: UTC
  schedules:
    - start: "0-58/2 * * * *"
      duration: 1m
    - start: "1-59/2 * * * *"
      duration: 1m
  freezes:
    - start: "2027-06-01T00:00:00Z"
      end: "2027-06-02T00:00:00Z"
""",
    "office": """\
  timeZone: Europe/Berlin
  schedules:
    - start: "* 8-16 * * MON-FRI"
      duration: 5m
""",
    "overlap": """\
  timeZone: UTC
  schedules:
    - start: "*/2 * * * *"
      duration: 3m
  freezes:
    - schedule: "0 22 * * *"
      duration: 8h
      reason: Nightly
""",
}


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    kinds = [(k, v) for k, v in KINDS.items() if len(sys.argv) < 3 or k == sys.argv[2]]
    documents = []
    for i in range(count):
        kind, spec = kinds[i % len(kinds)]
        documents.append(
            "apiVersion: fluxgate.io/v1alpha1\nkind: ReconciliationWindow\n"
            f"metadata:\n  name: {kind}-{i}\nspec:\n{spec}"
        )
    sys.stdout.write("---\n".join(documents))


if __name__ == "__main__":
    main()
