"""Hypothesis strategies for random run settings, shared by the engine's property tests."""

from hypothesis import strategies as st

from flowscale.search import SEARCH_METHODS

PROCESSES = ["linear-ode", "linear-sde", "vp-ode", "vp-sde"]


def run_settings(methods=SEARCH_METHODS, max_steps: int = 12, max_nfe: int = 400) -> dict:
    """Keyword strategies for @given: method, process, steps, nfe, seed, the RBF variant and its batch."""
    return dict(
        method=st.sampled_from(tuple(methods)),
        process=st.sampled_from(PROCESSES),
        steps=st.integers(2, max_steps),
        nfe=st.integers(1, max_nfe),
        seed=st.integers(0, 2**31),
        variant=st.sampled_from(["paper", "code"]),
        batch=st.sampled_from([1, 1, 2, 3, 8]),
    )
