"""Print bench results.json files as the paper's Table 4: count error (RSS = -reward) and accuracy per NFE.

    python benchmarks/scaling_table.py runs/bench_shapes/results.json [more results.json ...]

Rows of several files (e.g. one bench per method) go into one table; a missing budget prints "-".
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def cell(row: dict) -> str:
    # 0.0 - reward: an exact run prints 0.00, not -0.00. Accuracy gets 3 decimals: with 40 prompts it
    # moves in steps of 0.025.
    return f"{0.0 - row['reward_mean']:.2f} / {row['accuracy_mean']:.3f}"


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
            print(f"| ode (1 sample, {r['nfe']} NFE) | {process} | " + " | ".join([cell(r)] * len(budgets)) + " |")
            continue
        cells = []
        for n in budgets:
            r = by_nfe.get(n)
            cells.append("-" if r is None else cell(r))
        print(f"| {method} | {process} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(*sys.argv[1:])
