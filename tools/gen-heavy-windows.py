#!/usr/bin/env python3
"""Write N heavy ReconciliationWindows (default 1,000) to stdout: the five windows of
benches/support/heavy-windows.yaml in turn (read there what each is), renamed KIND-i, the worst
a window file realistically asks of the state search (issue 21, item 9).

    python3 tools/gen-heavy-windows.py 1000 > /tmp/heavy.yaml
    python3 tools/gen-heavy-windows.py 200 flicker > /tmp/flicker.yaml   # one kind only
    time target/release/fluxgate status --windows /tmp/heavy.yaml --at 2026-11-26T12:00:00Z
"""

import os
import re
import sys

KINDS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benches", "support",
                     "heavy-windows.yaml")


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    only = sys.argv[2] if len(sys.argv) > 2 else None
    with open(KINDS, encoding="utf-8") as f:
        text = re.sub(r"(?m)^#.*\n", "", f.read())
    kinds = []
    for document in text.split("---\n"):
        name = re.search(r"(?m)^  name: (\S+)$", document).group(1)
        if only in (None, name):
            kinds.append((name, document))
    if not kinds:
        sys.exit(f"no window {only!r} in {KINDS}")
    documents = []
    for i in range(count):
        name, document = kinds[i % len(kinds)]
        documents.append(document.replace(f"  name: {name}\n", f"  name: {name}-{i}\n", 1))
    sys.stdout.write("---\n".join(documents))


if __name__ == "__main__":
    main()
