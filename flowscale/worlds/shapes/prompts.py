"""Counting prompts of the Shapes world: "3 red circles", "1 blue square and 2 yellow triangles".

Grammar: one or two clauses joined by "and" or a comma; a clause is `<digit 1-6> <colour> <shape>` with
the shape singular or plural. A prompt parses to a spec {(colour, shape): count}; the 12 classes in the
fixed CLASSES order (scenes.py) turn a spec into a count vector of length 12.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from flowscale.worlds.shapes.scenes import CLASSES, COLOURS, MAX_OBJECTS, SHAPES, Spec, sample_spec, spec_to_vector

PLURALS: dict[str, str] = {"circle": "circles", "square": "squares", "triangle": "triangles"}
_SHAPE_WORDS: dict[str, str] = {**{s: s for s in SHAPES}, **{p: s for s, p in PLURALS.items()}}
NUMBER_WORDS: dict[str, int] = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "a": 1, "an": 1}
PROMPTS_FILE = Path(__file__).resolve().parents[3] / "assets" / "shapes" / "prompts_count.txt"


def vocabulary() -> str:
    """The accepted words, for error messages."""
    return (
        f"counts 1-{MAX_OBJECTS} (digits, or one..six); colours {', '.join(COLOURS)}; "
        f"shapes {', '.join(SHAPES)} (or plural {', '.join(PLURALS.values())}); clauses joined by 'and' or ','"
    )


def _parse_clause(clause: str, prompt: str) -> tuple[tuple[str, str], int]:
    words = clause.split()
    if len(words) != 3:
        raise ValueError(
            f"cannot parse {clause!r} in prompt {prompt!r}: expected '<count> <colour> <shape>'. "
            f"Vocabulary: {vocabulary()}"
        )
    count_word, colour, shape_word = words
    if count_word.isdigit():
        count = int(count_word)
    elif count_word in NUMBER_WORDS:
        count = NUMBER_WORDS[count_word]
    else:
        raise ValueError(f"unknown count {count_word!r} in prompt {prompt!r}. Vocabulary: {vocabulary()}")
    if not 1 <= count <= MAX_OBJECTS:
        raise ValueError(f"count {count} out of range in prompt {prompt!r}. Vocabulary: {vocabulary()}")
    if colour not in COLOURS:
        raise ValueError(f"unknown colour {colour!r} in prompt {prompt!r}. Vocabulary: {vocabulary()}")
    if shape_word not in _SHAPE_WORDS:
        raise ValueError(f"unknown shape {shape_word!r} in prompt {prompt!r}. Vocabulary: {vocabulary()}")
    return (colour, _SHAPE_WORDS[shape_word]), count


def parse_prompt(prompt: str) -> Spec:
    """'1 blue square and 2 yellow triangles' -> {('blue', 'square'): 1, ('yellow', 'triangle'): 2}.

    Raises:
        ValueError: unknown word, bad count, more than two clauses, a repeated class, or a total above 6;
            the message lists the vocabulary.
    """
    text = prompt.strip().lower().rstrip(".")
    clauses = [c.strip() for c in re.split(r",|\band\b", text) if c.strip()]
    if not 1 <= len(clauses) <= 2:
        raise ValueError(f"expected one or two clauses in prompt {prompt!r}. Vocabulary: {vocabulary()}")
    spec: Spec = {}
    for clause in clauses:
        cls, count = _parse_clause(clause, prompt)
        if cls in spec:
            raise ValueError(f"class '{cls[0]} {cls[1]}' named twice in prompt {prompt!r}")
        spec[cls] = count
    if sum(spec.values()) > MAX_OBJECTS:
        raise ValueError(f"prompt {prompt!r} asks for {sum(spec.values())} objects; at most {MAX_OBJECTS} fit")
    return spec


def prompt_to_vector(prompt: str) -> torch.Tensor:
    """Count vector float32 [12] (CLASSES order) of a prompt."""
    return spec_to_vector(parse_prompt(prompt))


def format_prompt(spec: Spec) -> str:
    """{('red', 'circle'): 3} -> '3 red circles'; clauses in the spec's order, joined by ' and '."""
    clauses = []
    for (colour, shape), count in spec.items():
        clauses.append(f"{int(count)} {colour} {shape if int(count) == 1 else PLURALS[shape]}")
    return " and ".join(clauses)


def random_prompts(n: int, seed: int = 0) -> list[str]:
    """n random counting prompts (the same distribution as the training conditions), seeded."""
    rng = np.random.default_rng(seed)
    return [format_prompt(sample_spec(rng)) for _ in range(n)]


def load_prompts(path: str | Path = PROMPTS_FILE) -> list[str]:
    """The shipped prompt list (one prompt per line, blank lines and '#' comments skipped)."""
    lines = Path(path).read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def write_prompt_file(path: str | Path = PROMPTS_FILE, n: int = 120, seed: int = 2024) -> None:
    """Regenerate assets/shapes/prompts_count.txt deterministically (unique prompts, seeded)."""
    seen: list[str] = []
    rng = np.random.default_rng(seed)
    while len(seen) < n:
        p = format_prompt(sample_spec(rng))
        if p not in seen:
            seen.append(p)
    Path(path).write_text("\n".join(seen) + "\n")


__all__ = [
    "CLASSES",
    "format_prompt",
    "load_prompts",
    "parse_prompt",
    "prompt_to_vector",
    "random_prompts",
    "vocabulary",
    "write_prompt_file",
]
