#!/usr/bin/env python3
"""Generate tests/fixtures/float-pairs.json: pairs of JSON number texts and whether they are the
same number, as Python's `json` (correctly rounded, like Go's encoding/json and so the API
server) reads them. Used by the no-op check's tests (core/src/policy/noop.rs).

    python3 tools/gen-float-pairs.py

Three kinds of pairs, all floats (integers and floats are different values to the no-op
check, as to `serde_json::Value`; Python would call 1 == 1.0):
- adjacent doubles in [1, 1000) (`x`, `math.nextafter(x, inf)`), each in its shortest form:
  always different numbers. serde_json without `float_roundtrip` confuses about 10% of them;
- the same double written longer (17 significant digits, a trailing zero, an exponent): the
  same number;
- a 17-digit text halfway-ish between two doubles, against each neighbour: whatever Python says.
"""

import json
import math
import os
import random

random.seed(14)
pairs = []
for _ in range(1500):
    x = random.uniform(1, 1000)
    y = math.nextafter(x, math.inf)
    pairs.append((repr(x), repr(y)))
for _ in range(300):
    x = random.uniform(1, 1000)
    for other in ("%.17g" % x, repr(x) + "0", "%.16e" % x):
        if "." not in other and "e" not in other:
            other += ".0"
        pairs.append((repr(x), other))
for _ in range(300):
    x = random.uniform(1, 1000)
    y = math.nextafter(x, math.inf)
    mid = "%.20g" % ((x + y) / 2)  # rounds to one of them; only Python's reading decides which
    pairs.append((repr(x), mid))
    pairs.append((repr(y), mid))
pairs.append(("943.6266835439236", "943.6266835439237"))

cases = [[a, b, json.loads(a) == json.loads(b)] for a, b in pairs]
about = ("Pairs of JSON numbers [a, b, same]: whether Python's json reads them as the same "
         "number. Written by tools/gen-float-pairs.py; do not edit by hand.")
path = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "float-pairs.json")
with open(path, "w") as f:
    f.write('{"about": %s,\n"cases": [\n' % json.dumps(about))
    f.write(",\n".join(json.dumps(c) for c in cases))
    f.write("\n]}\n")
print(f"{len(cases)} pairs, {sum(c[2] for c in cases)} the same number")
