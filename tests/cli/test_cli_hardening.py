"""Hostile input to the command line: one line and exit 2 for every bad flag, output folders checked before a
run, nothing computed is lost, and the field in the message is the one the user typed."""

import importlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowscale import cli
from flowscale.search import context


def main(*argv: str, capsys) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) < 420, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("out", ["/proc/flowscale-x", "", "FILE"])
def test_unwritable_output_folders_are_refused_before_the_run(out, tmp_path, capsys, monkeypatch):
    if out == "FILE":
        out = str(tmp_path / "a-file")
        Path(out).write_text("x")
    started = []
    engine = importlib.import_module("flowscale.run")  # the module (flowscale.run is also the function's name)
    monkeypatch.setattr(engine, "stream", lambda *a, **k: started.append(1) or iter(()))
    for command in (["run", "--nfe", "20"], ["bench", "--methods", "bon", "--nfe", "20", "--seeds", "1"]):
        code, err = main(*command, "--out", out, capsys=capsys)
        assert code == 2 and "--out" in one_error_line(err)
    assert not started  # nothing ran


@pytest.mark.parametrize("argv, flag", [
    (["--method", "rbf", "--set", "rfb.variant=code"], "--set rfb.variant"),
    (["--method", "rbf", "--set", "smc.lam=0.5"], "--set smc.lam"),
    (["--method", "smc", "--set", "smc.ess_threshold=nan"], "--set smc.ess_threshold"),
    (["--method", "svdd", "--set", "svdd.lam=-5"], "--set svdd.lam"),
    (["--method", "rbf", "--set", f"rbf.chains={10**12}"], "--set rbf.chains"),
    (["--method", "svdd", "--set", f"svdd.k={10**9}"], "--set svdd.k"),
    (["--method", "sop", "--set", "sop.forward=1e-9", "--set", "sop.backward=2e-9"], "--set sop.backward"),
    (["--method", "base", "--particles", str(10**9)], "--particles"),
    (["--method", "rbf", "--particles", "5"], "--particles"),
    (["--height", "64"], "--height"),
    (["--model-path", "/tmp"], "--model-path"),
])
def test_bad_settings_name_the_flag_typed(argv, flag, tmp_path, capsys):
    code, err = main("run", *argv, "--out", str(tmp_path), capsys=capsys)
    assert code == 2
    assert one_error_line(err).startswith(f"error: {flag}: ")


def test_malformed_files_are_one_line_errors(tmp_path, capsys):
    files = {
        "deep.json": "[" * 5000 + "]" * 5000,
        "bool.json": json.dumps({"means": [[0, 0]], "stds": [True], "weights": [1]}),
        "huge.json": json.dumps({"means": [[0, 0], [1, 1]], "stds": [1, 1], "weights": [1e308, 1e308]}),
        "binary.json": b"\x00\xff\xfe",
        "list.json": "[1, 2]",
        "noconfig.json": json.dumps({"events": []}),
    }
    for name, text in files.items():
        path = tmp_path / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    for name in ("deep.json", "bool.json", "huge.json"):
        code, err = main("run", "--mixture", str(tmp_path / name), "--out", str(tmp_path / "o"), capsys=capsys)
        assert code == 2 and one_error_line(err).startswith("error: --mixture: ")
    for name in ("deep.json", "binary.json", "list.json", "noconfig.json", "missing.json"):
        code, err = main("replay", str(tmp_path / name), capsys=capsys)
        line = one_error_line(err)
        assert code == 2 and line.startswith("error: record: ") and "--record" not in line


def test_a_run_that_fails_part_way_keeps_what_it_computed(tmp_path, capsys, monkeypatch):
    calls = []
    original = context.SearchContext.propose

    def failing(self, batch):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("a fault in the middle of the run")
        return original(self, batch)

    monkeypatch.setattr(context.SearchContext, "propose", failing)
    with pytest.raises(RuntimeError):
        cli.main(["run", "--method", "bon", "--process", "linear-sde", "--nfe", "100", "--steps", "10",
                  "--out", str(tmp_path)])
    partial = json.loads((tmp_path / "record.partial.json").read_text())
    assert "fault in the middle" in partial["error"]
    assert sum(e["kind"] == "candidates" for e in partial["events"]) == 4


def test_long_runs_print_their_estimate_first(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "LONG_RUN_S", 0.0)
    code, err = main("run", "--method", "rbf", "--nfe", "100", "--out", str(tmp_path), capsys=capsys)
    assert code == 0 and err.startswith("estimated: about") and "model calls" in err and "MB" in err


SET_KEYS = ["rbf.variant", "rbf.chains", "svdd.k", "smc.lam", "smc.ess_threshold", "sop.forward", "bon.n", "rfb.x",
            "nope", "code.block", "t2i.guidance_scale"]
VALUES = st.one_of(st.sampled_from(["nan", "inf", "-1", "0", "1e308", "10" * 20, "code", "", "true", "x" * 500]),
                   st.integers(-10**6, 10**6).map(str), st.text(max_size=12))
FLAGS = st.one_of(
    st.tuples(st.sampled_from(["--nfe", "--steps", "--particles", "--seed", "--max-batch", "--height"]),
              VALUES),
    st.tuples(st.sampled_from(["--method", "--process", "--grid", "--grid-space", "--g-schedule", "--reward",
                               "--preset", "--model"]), st.sampled_from(["rbf", "bon", "vp-sde", "exp", "x", "",
                                                                         "point:1", "rare", "toy3d", "sd3"])),
    st.tuples(st.sampled_from(["--g-norm", "--beta-min", "--beta-max", "--shift"]), VALUES),
    st.tuples(st.just("--set"), st.tuples(st.sampled_from(SET_KEYS), VALUES).map("=".join)),
)


@pytest.mark.slow
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(flags=st.lists(FLAGS, min_size=1, max_size=4))
def test_fuzzed_command_lines_run_or_exit_2_with_one_line(flags, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = ["run", "--out", str(tmp_path), "--nfe", "40", "--steps", "4"]
    for flag, value in flags:
        argv += [flag, value]
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse's own refusals (a value that is no number)
        code = exit_.code
    err = capsys.readouterr().err
    assert code in (0, 2), err
    if code == 2:
        one_error_line(err)


def test_a_record_made_with_one_thread_replays_identical_with_its_own_thread_count(tmp_path):
    """The Shapes UNet's sums depend on the thread count: the app runs one thread per run, the CLI all cores;
    replay takes the record's count, so an app record replays identical from the CLI."""
    import torch

    from flowscale.config import RunConfig
    from flowscale.run import run

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        record = run(RunConfig(model="shapes", method="rbf", process="vp-sde", nfe=40, steps=6, seed=2)).record
    finally:
        torch.set_num_threads(before)
    assert record.to_dict()["threads"] == 1
    path = tmp_path / "record.json"
    path.write_text(json.dumps(record.saved()))
    assert cli.main(["replay", str(path)]) == 0


def test_a_record_from_before_the_newer_settings_still_replays_identical(tmp_path):
    """Records made before dps, state_dtype and recipe existed lack those keys; a replay records their defaults."""
    from flowscale.config import RunConfig
    from flowscale.run import run

    record = run(RunConfig(method="rbf", process="vp-sde", nfe=60, seed=3)).record.saved()
    for config in (record["config"], record["events"][0]["config"]):
        for key in ("dps", "state_dtype", "recipe"):
            config.pop(key)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(record))
    assert cli.main(["replay", str(path)]) == 0
    record["config"]["seed"] = 4  # and a record that does differ is still caught
    path.write_text(json.dumps(record))
    assert cli.main(["replay", str(path)]) == 1
