"""The package's shape: no import cycle anywhere in flowscale (lazy imports count), no module over 500
lines, and figures that read only traces (no gradio, no world, no search method)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "flowscale"
MAX_LINES = 500


def modules() -> dict[str, Path]:
    out = {}
    for file in ROOT.rglob("*.py"):
        parts = file.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = file
    return out


def imports(name: str, file: Path, known: dict[str, Path]) -> set[str]:
    """Every flowscale module a module imports, anywhere in its body; importing a.b.c counts a and a.b too."""
    package = name if file.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            while target:
                if target != name and not name.startswith(target + "."):
                    found.add(target)
                target = target.rpartition(".")[0]
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, file, known) for name, file in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_in_flowscale():
    assert cycles(graph()) == []


def test_no_module_over_500_lines():
    long = {str(f.relative_to(ROOT.parent)): n for f in ROOT.rglob("*.py") if (n := len(f.read_text().splitlines()))
            > MAX_LINES}
    assert long == {}


def test_figures_import_no_gradio_no_world_and_no_search():
    known = modules()
    for name, file in known.items():
        if not name.startswith("flowscale.figures"):
            continue
        reached = imports(name, file, known)
        assert not {m for m in reached if m.startswith(("flowscale.worlds", "flowscale.search", "flowscale.ui"))}, name
        text = file.read_text()
        assert "import gradio" not in text and "from gradio" not in text, name


def test_the_ui_rooms_hold_no_sampling_maths():
    """The app draws what the trace holds: no ui module imports the samplers, processes or search internals."""
    known = modules()
    engine = ("flowscale.sampler", "flowscale.processes", "flowscale.convert", "flowscale.interpolants",
              "flowscale.search.context", "flowscale.search.rbf", "flowscale.search.smc", "flowscale.search.blocks")
    for name, file in known.items():
        if name.startswith("flowscale.ui"):
            assert not imports(name, file, known) & set(engine), name
