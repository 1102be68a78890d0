"""Print bench results.json files as the paper's Table 4: count error (RSS = -reward) and accuracy per NFE.

    python benchmarks/scaling_table.py runs/bench_shapes/results.json [more results.json ...]

Rows of several files (e.g. one bench per method) go into one table; a missing budget prints "-".
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def main(*paths: str) -> None:
    rows = [row for path in paths for row in json.loads(open(path).read())["rows"]]
    budgets = sorted({r["nfe"] for r in rows if r["method"] != "ode"})
    table: dict[tuple[str, str], dict[int, dict]] = defaultdict(dict)
    for r in rows:
        table[(r["method"], r["process"])][r["nfe"]] = r
    head = " | ".join(f"{n} NFE: RSS / Acc" for n in budgets)
    print(f"| method | process | {head} |")
    print("|---|---|" + "---|" * len(budgets))
    for (method, process), by_nfe in table.items():
        if method == "ode":
            (r,) = by_nfe.values()
            cell = f"{-r['reward_mean']:.2f} / {r['accuracy_mean']:.2f}"
            print(f"| ode (1 sample, {r['nfe']} NFE) | {process} | " + " | ".join([cell] * len(budgets)) + " |")
            continue
        cells = []
        for n in budgets:
            r = by_nfe.get(n)
            cells.append("-" if r is None else f"{-r['reward_mean']:.2f} / {r['accuracy_mean']:.2f}")
        print(f"| {method} | {process} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(*sys.argv[1:])
