"""The step story: what happened at step k, told from the method's own events."""

from hand_trace import RECORD

from flowscale import RunConfig, run
from flowscale.figures import step_story
from flowscale.figures.story import ordinal
from flowscale.trace import Trace


def test_rbf_story_names_the_step_the_draws_r_star_and_the_rollover():
    story = step_story(Trace.from_record(RECORD), 1)
    assert story.startswith("**Step 1** (t = 0.50)")
    assert "Chain 1 drew 2 candidates; the 2nd beat r* = -3 (reward -1) and was taken; 2 unused NFE roll over to " \
           "step 2." in story
    assert "The run returned candidate 4" in step_story(Trace.from_record(RECORD), 2)


def test_forced_moves_and_the_last_step_are_told_as_such():
    out = run(RunConfig(method="rbf", process="vp-sde", nfe=60, steps=5, seed=0))
    told = "\n".join(step_story(out.trace, k) for k in out.trace.eval_steps())
    modes = {e["mode"] for e in out.trace.events if e["kind"] == "budget"}
    if "forced" in modes:
        assert "none beat r*" in told
    assert "at the last step and keeps its best candidate" in told


def test_smc_story_tells_ess_and_resampling():
    out = run(RunConfig(method="smc", process="linear-sde", nfe=100, steps=10, seed=1, params={"smc.lam": 0.1}))
    resampled = [e["step"] for e in out.trace.events if e["kind"] == "resample"]
    assert resampled, "a small lambda resamples"
    story = step_story(out.trace, resampled[0])
    assert "effective sample size is ESS =" in story and "resampled before the next step" in story
    assert "distinct ancestors survive of 10" in story


def test_svdd_and_code_stories_tell_the_selection():
    svdd = run(RunConfig(method="svdd", process="linear-sde", nfe=100, steps=10, seed=1)).trace
    assert "One survivor per group was chosen by the highest reward: 2 survive." in step_story(svdd, 3)
    code = run(RunConfig(method="code", process="linear-sde", nfe=100, steps=10, seed=1)).trace
    assert "No selection here" in step_story(code, 1) and "chosen by the highest reward" in step_story(code, 2)


def test_a_story_before_any_run_says_what_to_do():
    assert "move the step slider" in step_story(None, None)
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 112)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "112th"]
