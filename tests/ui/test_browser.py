"""A real browser on the app: the default run draws the three live plots (Playwright + Debian's Chromium).

No browser is downloaded: the test drives the system Chromium (.ci/run installs Debian's `chromium`), and
fails, rather than skips, when it is missing. Screenshots go to $FLOWSCALE_SCREENSHOTS or a temp folder.
"""

import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-extensions",
]
SLOW = 240_000  # ms; a loaded 2-core CI machine renders plotly slowly
expect.set_options(timeout=SLOW)


def chromium() -> str:
    for candidate in (os.environ.get("CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail("Chromium not found: install Debian's chromium (apt-get install -y chromium; .ci/run does this)")


@pytest.fixture(scope="module")
def app_server(tmp_path_factory, app_py):
    """app.py as a user starts it (its own process), on loopback."""
    with app_py(tmp_path_factory.mktemp("app") / "server.log") as (_, url):
        yield url


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = os.environ.get("FLOWSCALE_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def page(app_server):
    executable = chromium()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.set_default_timeout(SLOW)
        page.goto(app_server)
        yield page
        browser.close()


def test_default_run_draws_the_three_live_plots(page, shots):
    expect(page.locator("#run")).to_be_visible()
    page.locator("#run").click()
    page.wait_for_timeout(700)
    page.screenshot(path=str(shots / "app_running.png"))  # mid-run on a slow machine, finished on a fast one
    # The run ends with all three figures redrawn from the finished record.
    expect(page.locator("#status")).to_contain_text("Done")
    expect(page.locator("#plot-trajectories")).to_contain_text("finished")
    for elem_id, text in (
        ("plot-trajectories", "Particle paths — RBF · VP-SDE"),
        ("plot-budget", "NFE per denoising step — RBF · VP-SDE"),
        ("plot-reward", "Best reward vs. NFE spent"),
    ):
        plot = page.locator(f"#{elem_id} .js-plotly-plot")
        expect(plot).to_be_visible()
        expect(plot.locator(".main-svg").first).to_be_visible()
        expect(plot).to_contain_text(text)
    expect(page.locator("#plot-reward")).to_contain_text("BoN, same budget")
    expect(page.locator("#plot-budget")).to_contain_text("rolled over")
    expect(page.locator("#side-by-side")).to_contain_text("ODE baseline")
    expect(page.locator("#record-file")).to_be_visible()
    page.screenshot(path=str(shots / "app_done.png"), full_page=True)
    assert (shots / "app_done.png").stat().st_size > 10_000


def test_method_help_follows_the_selection(page, shots):
    page.locator("#method label:has-text('SMC')").click()
    expect(page.locator("#method-help")).to_contain_text("Sequential Monte Carlo")
    page.locator("#process label:has-text('Linear-SDE')").click()
    expect(page.locator("#method-help")).to_contain_text("Linear-SDE")
    page.locator("#run").click()
    expect(page.locator("#status")).to_contain_text("Done · SMC · Linear-SDE")
    expect(page.locator("#plot-reward")).to_contain_text("effective sample size")
    page.screenshot(path=str(shots / "app_smc.png"), full_page=True)


def test_stop_ends_a_long_run(page, shots):
    # A Shapes run: the 2-D world's largest run through the controls (5000 NFE, 200 steps) now ends in a few
    # seconds, before a Stop can land on a loaded machine, and the record of a finished run is offered.
    page.locator("#world label:has-text('Shapes')").click()
    expect(page.locator("#nfe input[type=number]")).to_have_value("100")  # the world's defaults have arrived
    page.locator("#method label:has-text('RBF')").click()
    page.locator("#process label:has-text('VP-SDE')").click()
    sizes = (("nfe", "3000"), ("steps", "20"))
    for elem_id, value in sizes:
        box = page.locator(f"#{elem_id} input[type=number]")
        box.fill(value)
        box.press("Enter")
    for elem_id, value in sizes:
        expect(page.locator(f"#{elem_id} input[type=number]")).to_have_value(value)
    page.locator("#run").click()
    # the long run itself is under way (baseline 20 + RBF 3000 + BoN 3000 NFE: tens of seconds)
    expect(page.locator("#status")).to_contain_text("/ 6020 NFE")
    page.locator("#stop").click()
    expect(page.locator("#status")).to_contain_text("Stopped")
    page.wait_for_timeout(5000)
    expect(page.locator("#status")).to_contain_text("Stopped")  # no late "Done": the run really ended
    expect(page.locator("#record-file")).to_be_hidden()  # a record is only offered for a finished run
    expect(page.locator("#plot-trajectories")).not_to_contain_text("finished", timeout=1000)
    page.screenshot(path=str(shots / "app_stopped.png"), full_page=True)


def test_the_step_scrubber_replays_a_middle_step(page, shots):
    """Run the default world, move #step-scrubber to a middle step: the paths plot redraws at that step
    and #step-story tells it."""
    page.reload()
    expect(page.locator("#run")).to_be_visible()
    page.locator("#run").click()
    expect(page.locator("#status")).to_contain_text("Done")
    expect(page.locator("#plot-trajectories")).to_contain_text("finished")
    before = page.locator("#plot-trajectories .main-svg").first.inner_html()
    box = page.locator("#step-scrubber input[type=number]")
    expect(box).to_be_enabled()
    box.fill("12")
    box.press("Enter")
    expect(page.locator("#step-story")).to_contain_text("Step 12 (t =")
    expect(page.locator("#plot-trajectories")).to_contain_text("step 12 (t =")
    expect(page.locator("#plot-trajectories")).to_contain_text("candidates of step 12")
    expect(page.locator("#plot-budget")).to_contain_text("step 12:")
    assert page.locator("#plot-trajectories .main-svg").first.inner_html() != before
    page.locator("#step-scrubber").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "app_step12.png"), full_page=True)
    # Play walks on through the later steps; Latest goes back to the finished run.
    page.locator("#step-play").click()
    expect(page.locator("#step-story")).to_contain_text("Step 14", timeout=60_000)
    page.locator("#step-latest").click()
    expect(page.locator("#plot-trajectories")).to_contain_text("finished")
