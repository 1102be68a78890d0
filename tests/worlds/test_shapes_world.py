"""Shapes world: scene generator, prompt parser, detector, rewards, shipped model and verifier (CPU, fast)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from flowscale.worlds.shapes import detector, image_rewards, scenes
from flowscale.worlds.shapes.prompts import (
    format_prompt,
    load_prompts,
    parse_prompt,
    prompt_to_vector,
    random_prompts,
)
from flowscale.worlds.shapes.scenes import CLASSES, SceneObject, render

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "shapes"


# ----------------------------------------------------------------------------------------------- scenes


def test_random_scene_is_deterministic_per_seed() -> None:
    a_img, a_obj = scenes.random_scene(7)
    b_img, b_obj = scenes.random_scene(7)
    c_img, c_obj = scenes.random_scene(8)
    assert np.array_equal(a_img, b_img) and a_obj == b_obj
    assert not np.array_equal(a_img, c_img) or a_obj != c_obj


def test_render_spec_and_batches_are_deterministic() -> None:
    spec = {("red", "circle"): 2, ("blue", "triangle"): 3}
    a = scenes.render_spec(np.random.default_rng(3), spec)
    b = scenes.render_spec(np.random.default_rng(3), spec)
    c = scenes.render_spec(np.random.default_rng(4), spec)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    assert not np.array_equal(a[0], c[0])
    assert scenes.objects_to_spec(a[1]) == spec
    xa, ca = scenes.sample_batch(np.random.default_rng(0), 16)
    xb, cb = scenes.sample_batch(np.random.default_rng(0), 16)
    assert torch.equal(xa, xb) and torch.equal(ca, cb)
    assert xa.shape == (16, 3, 32, 32) and xa.dtype == torch.float32
    assert float(xa.min()) >= -1.0 and float(xa.max()) <= 1.0


def test_scenes_respect_object_rules() -> None:
    for seed in range(200):
        image, objects = scenes.random_scene(seed)
        assert image.shape == (3, 32, 32) and image.dtype == np.float32
        assert 1 <= len(objects) <= 6
        for colour, shape, cx, cy, size in objects:
            assert colour in scenes.COLOURS and shape in scenes.SHAPES
            assert scenes.MIN_SIZE <= size <= scenes.MAX_SIZE
            assert size / 2 <= cx <= 32 - size / 2 and size / 2 <= cy <= 32 - size / 2
        # pure colours only: every pixel is background or one of the four colours
        palette = {tuple(scenes.BACKGROUND)} | {scenes.RGB[c] for c in scenes.COLOURS}
        assert {tuple(p) for p in image.reshape(3, -1).T.tolist()} <= palette


def test_sample_spec_is_prompt_like() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        spec = scenes.sample_spec(rng)
        assert 1 <= len(spec) <= 2 and 1 <= sum(spec.values()) <= 6
        assert all(n >= 1 for n in spec.values())
        assert scenes.vector_to_spec(scenes.spec_to_vector(spec)) == spec


def test_uint8_round_trip() -> None:
    x, _ = scenes.sample_batch(np.random.default_rng(1), 4)
    u8 = scenes.to_uint8(x)
    assert u8.shape == (4, 32, 32, 3) and u8.dtype == np.uint8
    assert torch.equal(scenes.from_uint8(u8), x)


# ---------------------------------------------------------------------------------------------- prompts


def test_parse_singular_plural_and_two_clauses() -> None:
    assert parse_prompt("3 red circles") == {("red", "circle"): 3}
    assert parse_prompt("1 green square") == {("green", "square"): 1}
    assert parse_prompt("1 blue square and 2 yellow triangles") == {("blue", "square"): 1, ("yellow", "triangle"): 2}
    assert parse_prompt("2 Red Triangles, 1 blue circle.") == {("red", "triangle"): 2, ("blue", "circle"): 1}
    v = prompt_to_vector("1 blue square and 2 yellow triangles")
    assert v.shape == (12,) and float(v.sum()) == 3.0
    assert float(v[CLASSES.index(("yellow", "triangle"))]) == 2.0


@pytest.mark.parametrize(
    "bad",
    [
        "3 purple circles",
        "3 red hexagons",
        "seven red circles",
        "9 red circles",
        "red circles",
        "1 red circle and 1 red circle",
        "4 red circles and 3 blue squares",
    ],
)
def test_parse_errors(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_prompt(bad)


def test_unknown_word_error_lists_vocabulary() -> None:
    with pytest.raises(ValueError) as err:
        parse_prompt("2 purple circles")
    msg = str(err.value)
    for word in ("purple", "red", "green", "blue", "yellow", "circle", "square", "triangle"):
        assert word in msg


def test_format_round_trip_and_random_prompts() -> None:
    assert format_prompt({("red", "circle"): 1, ("blue", "square"): 2}) == "1 red circle and 2 blue squares"
    prompts = random_prompts(50, seed=3)
    assert prompts == random_prompts(50, seed=3) and prompts != random_prompts(50, seed=4)
    for p in prompts:
        assert format_prompt(parse_prompt(p)) == p


def test_shipped_prompt_file() -> None:
    prompts = load_prompts()
    assert len(prompts) >= 60 and len(set(prompts)) == len(prompts)
    n_clauses = [len(parse_prompt(p)) for p in prompts]
    assert {1, 2} <= set(n_clauses)
    assert len({sum(parse_prompt(p).values()) for p in prompts}) == 6


# --------------------------------------------------------------------------------------------- detector


def test_detector_is_exact_on_clean_scenes() -> None:
    n, correct = 400, 0
    images, targets = [], []
    for seed in range(10_000, 10_000 + n):
        image, objects = scenes.random_scene(seed)
        images.append(image)
        spec = scenes.objects_to_spec(objects)
        targets.append({cls: spec.get(cls, 0) for cls in CLASSES})
    detected = detector.detect_counts(torch.as_tensor(np.stack(images)))
    correct = sum(d == t for d, t in zip(detected, targets, strict=True))
    assert correct / n >= 0.99


def test_detector_on_prompt_scenes_and_ignores_specks() -> None:
    rng = np.random.default_rng(5)
    for prompt in load_prompts()[:60]:
        spec = parse_prompt(prompt)
        image, _ = scenes.render_spec(rng, spec)
        image = torch.as_tensor(image)[None]
        image[0, :, 0:2, 0:2] = torch.tensor([1.0, 0.0, 0.0])[:, None, None]  # a 4-pixel red speck
        assert float(detector.count_accuracy(image, spec)[0]) == 1.0


def _known_scene() -> torch.Tensor:
    """2 red circles + 1 blue square, hand placed."""
    objects = [
        SceneObject("red", "circle", 6.0, 6.0, 8),
        SceneObject("red", "circle", 20.0, 6.0, 8),
        SceneObject("blue", "square", 12.0, 22.0, 9),
    ]
    return torch.as_tensor(render(objects))[None]


def test_count_compose_and_accuracy_rewards() -> None:
    image = _known_scene()
    right = {("red", "circle"): 2, ("blue", "square"): 1}
    assert detector.count_reward(image, right).tolist() == [0.0]
    assert detector.count_reward(image, right).dtype == torch.float64
    assert detector.count_accuracy(image, right).tolist() == [1.0]
    assert detector.compose_reward(image, right).tolist() == [1.0]
    # 3 red circles asked: one missing (1) and one extra blue square (1) -> -2
    assert detector.count_reward(image, {("red", "circle"): 3}).tolist() == [-2.0]
    assert detector.count_accuracy(image, {("red", "circle"): 3}).tolist() == [0.0]
    assert detector.compose_reward(image, {("red", "circle"): 2, ("blue", "square"): 3}).tolist() == [0.5]
    # a count vector works as a target too, and a batch gives one value per image
    batch = torch.cat([image, torch.zeros_like(image)])
    assert detector.count_reward(batch, prompt_to_vector("2 red circles and 1 blue square")).tolist() == [0.0, -5.0]
    assert detector.count_details(image) == [{"red circle": 2, "blue square": 1}]


def test_image_rewards() -> None:
    black, white = torch.zeros(1, 3, 32, 32), torch.ones(1, 3, 32, 32)
    red = torch.zeros(1, 3, 32, 32)
    red[:, 0] = 1.0
    b = image_rewards.brightness(torch.cat([black, white, red]))
    assert b.dtype == torch.float64 and torch.allclose(b, torch.tensor([0.0, 1.0, 0.299], dtype=torch.float64))
    noise = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    j = image_rewards.jpeg_compressibility(torch.cat([black, noise, _known_scene()]))
    assert j.dtype == torch.float64 and j.shape == (3,)
    assert bool((j < 0).all()) and j[0] > j[2] > j[1]


# ------------------------------------------------------------------------------ shipped model, verifier


def test_shipped_model_loads_and_runs(tmp_path: Path) -> None:
    from flowscale.worlds.shapes.model import ShapesFlowModel

    config = json.loads((ASSETS / "config.json").read_text())
    assert config["training"]["steps"] >= 500, "assets/shapes holds an untrained model"
    model = ShapesFlowModel.from_pretrained(ASSETS)
    assert model.name == "shapes" and model.sample_shape == (3, 32, 32) and model.dtype == torch.float32
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 3, 32, 32, generator=gen)
    t = torch.tensor([1.0, 0.5, 0.05], dtype=torch.float64)
    u = model.velocity(x, t, prompt_to_vector("3 red circles"))
    assert u.shape == x.shape and u.dtype == torch.float32 and bool(torch.isfinite(u).all())
    u_batch = model.velocity(x, t, prompt_to_vector("3 red circles").expand(3, 12))
    assert torch.allclose(u, u_batch, atol=1e-5)
    images = model.decode(x - t.float()[:, None, None, None] * u)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    # save / load round trip
    model.save_pretrained(tmp_path / "copy")
    again = ShapesFlowModel.from_pretrained(tmp_path / "copy")
    assert torch.equal(again.velocity(x, t, prompt_to_vector("3 red circles")), u)


def test_shipped_verifier_loads_and_counts_clean_scenes() -> None:
    from flowscale.worlds.shapes.verifier import ShapesVerifier

    verifier = ShapesVerifier.from_pretrained(ASSETS)
    image = _known_scene()
    right = {("red", "circle"): 2, ("blue", "square"): 1}
    r = verifier.count_reward(image, right)
    assert r.dtype == torch.float64 and r.shape == (1,)
    rng = np.random.default_rng(77)
    imgs, specs = [], []
    for _ in range(50):
        spec = scenes.sample_spec(rng)
        imgs.append(scenes.render_spec(rng, spec)[0])
        specs.append(spec)
    preds = verifier.predict_counts(torch.as_tensor(np.stack(imgs)))
    acc = np.mean([torch.equal(p, scenes.spec_to_vector(s).double()) for p, s in zip(preds, specs, strict=True)])
    assert acc >= 0.7


def test_configs_without_newer_keys_load_as_the_architecture_they_were_trained_with(tmp_path: Path) -> None:
    """A checkpoint whose config.json predates a key must not silently get the new default for it."""
    from flowscale.worlds.shapes.model import LEGACY_CONFIG, ShapesVelocityNet, load_net, save_net

    torch.manual_seed(0)
    old = ShapesVelocityNet(dict(LEGACY_CONFIG)).eval()
    save_net(old, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    for key in LEGACY_CONFIG:
        del config[key]
    (tmp_path / "config.json").write_text(json.dumps(config))
    again = load_net(tmp_path)
    assert {k: again.config[k] for k in LEGACY_CONFIG} == LEGACY_CONFIG
    x, t, cond = torch.randn(2, 3, 32, 32), torch.tensor([0.3, 0.8]), torch.tensor([[1.0] + [0.0] * 11] * 2)
    with torch.no_grad():
        assert torch.equal(old(x, t, cond), again(x, t, cond))
    assert ShapesVelocityNet().config["resnet_time_scale_shift"] == "scale_shift"


def test_soft_count_is_a_differentiable_stand_in_for_the_count():
    from flowscale.worlds.shapes.scenes import render_spec
    from flowscale.worlds.shapes.world import load_verifier

    verifier = load_verifier()
    spec = {("red", "circle"): 2, ("blue", "square"): 1}
    image = torch.from_numpy(render_spec(np.random.default_rng(0), spec)[0]).unsqueeze(0)
    target = torch.zeros(12, dtype=torch.float64)
    soft = verifier.soft_counts(image)
    assert soft.shape == (1, 12) and abs(float(soft.sum()) - 3.0) < 0.75  # about three objects' mass
    leaf = image.clone().requires_grad_(True)
    value = verifier.soft_count_reward(leaf, target).sum()
    (grad,) = torch.autograd.grad(value, leaf)
    assert grad.shape == leaf.shape and bool(torch.isfinite(grad).all()) and float(grad.abs().sum()) > 0


@pytest.mark.parametrize("reward", ["brightness", "soft-count"])
def test_guidance_raises_the_reward_it_follows(reward):
    from flowscale.config import RunConfig
    from flowscale.run import run

    cfg = RunConfig(model="shapes", method="base", process="linear-sde", particles=8, steps=10, reward=reward,
                    heldout="count", seed=1)
    plain = run(cfg).record
    guided = run(dataclasses.replace(cfg, dps=20.0 if reward == "brightness" else 1.0)).record
    assert guided.extra["grad_evals"] == 8 * 9 and guided.nfe_used == plain.nfe_used == 80
    assert sum(guided.rewards) / len(guided.rewards) > sum(plain.rewards) / len(plain.rewards)


def test_template_ious_equal_a_direct_computation_on_random_components(monkeypatch):
    """The cached-grid template fit gives exactly the IoUs of the plain computation (pad, grid, compare)."""
    def direct(mask):
        m = np.pad(mask, 4)
        yy, xx = np.mgrid[0 : m.shape[0], 0 : m.shape[1]] + 0.5
        area = float(m.sum())
        cy, cx = yy[m].mean(), xx[m].mean()
        side, tri = np.sqrt(area), np.sqrt(2.0 * area)
        apex = cy - 2.0 * tri / 3.0
        shapes = {"circle": (xx - cx) ** 2 + (yy - cy) ** 2 <= area / np.pi,
                  "square": (np.abs(xx - cx) <= side / 2) & (np.abs(yy - cy) <= side / 2),
                  "triangle": (yy >= apex) & (yy <= apex + tri) & (np.abs(xx - cx) <= (yy - apex) / 2)}
        return {k: float((m & t).sum() / (m | t).sum()) for k, t in shapes.items()}

    rng = np.random.default_rng(0)
    masks = []
    for _ in range(200):
        h, w = rng.integers(3, 14, size=2)
        mask = rng.random((h, w)) < rng.uniform(0.3, 0.95)
        mask[h // 2, w // 2] = True
        assert detector.template_ious(mask) == direct(mask)
        masks.append(mask)
    # All at once, as the detector fits a reward call's components (boxes of different sizes in one array),
    # and in chunks of a few components.
    pixels = [np.nonzero(m) for m in masks]
    args = (np.array([m.shape[0] for m in masks]), np.array([m.shape[1] for m in masks]),
            np.concatenate([np.full(len(ys), i) for i, (ys, _) in enumerate(pixels)]),
            np.concatenate([ys for ys, _ in pixels]), np.concatenate([xs for _, xs in pixels]))
    expected = [list(direct(m).values()) for m in masks]
    assert detector.fit_templates(*args).tolist() == expected
    monkeypatch.setattr(detector, "CHUNK_PIXELS", 1000)
    assert detector.fit_templates(*args).tolist() == expected


def test_segment_equals_the_direct_nearest_colour_rule():
    """Plane-by-plane segmentation gives exactly the labels of the one-array rule (argmin over the palette of
    the RGB distance, then the radius), on random, saturated, tied and non-finite pixels."""
    def direct(images):
        x = np.moveaxis(images, 1, -1)
        dist = np.sqrt(((x[..., None, :] - detector._PALETTE) ** 2).sum(-1))
        nearest = dist.argmin(axis=-1)
        confident = np.take_along_axis(dist, nearest[..., None], axis=-1)[..., 0] <= detector.COLOUR_RADIUS
        return np.where(confident, nearest, 0)

    rng = np.random.default_rng(3)
    x = rng.random((12, 3, 16, 16)).astype(np.float32)
    x[1] = (x[1] > 0.5).astype(np.float32)
    x[2] = ((detector._PALETTE[1] + detector._PALETTE[2]) / 2)[:, None, None]  # equidistant from two colours
    x[3, 0, :4] = np.nan
    x[4, :, 4:8] = np.inf
    x[5] = detector._PALETTE[3][:, None, None] + rng.normal(0, 0.3, (3, 16, 16)).astype(np.float32)
    assert np.array_equal(detector.segment(x), direct(x))


def _components_per_plane(labels: np.ndarray) -> list[tuple]:
    """The direct rule: label each (image, colour) plane on its own (ndimage.label on the stacked planes), drop
    components under MIN_AREA, and read each one's plane, box, area and pixels; in label order."""
    from scipy import ndimage

    planes = labels[:, None] == np.arange(1, 5)[None, :, None, None]
    b, _, h, w = planes.shape
    in_plane = np.zeros((3, 3, 3), dtype=bool)  # 4-connected inside a plane, no links between planes
    in_plane[1] = ndimage.generate_binary_structure(2, 1)
    comp, _ = ndimage.label(planes.reshape(b * 4, h, w), structure=in_plane)
    out = []
    for j, (sl_plane, sl_y, sl_x) in enumerate(ndimage.find_objects(comp), start=1):
        pixels = np.argwhere(comp == j)
        if len(pixels) >= detector.MIN_AREA:
            out.append((sl_plane.start, sl_y.start, sl_y.stop, sl_x.start, sl_x.stop, len(pixels),
                        sorted(map(tuple, pixels[:, 1:].tolist()))))
    return out


def test_components_equal_labelling_each_colour_plane_on_its_own():
    """One foreground labelling (split where colours touch) finds exactly the components of every (image,
    colour) plane, in ndimage.label's order over the stacked planes: on blocky scenes where colours touch,
    speckled ones, and batches with no object or only noise."""
    rng = np.random.default_rng(11)
    batches = []
    for block in (1, 2, 3, 5):
        coarse = rng.integers(0, 5, size=(6, 40 // block + 1, 40 // block + 1))
        batches.append(np.repeat(np.repeat(coarse, block, 1), block, 2)[:, :40, :40])
    sparse = rng.integers(0, 5, size=(6, 24, 24)) * (rng.random((6, 24, 24)) < 0.15)
    batches += [sparse, np.zeros((3, 16, 16), dtype=np.int64), np.where(np.eye(16, dtype=bool), 2, 0)[None]]
    seen_touching = 0
    for labels in batches:
        labels = labels.astype(np.int8)
        c = detector.components(labels)
        found = [(int(c.plane[i]), int(c.top[i]), int(c.bottom[i]), int(c.left[i]), int(c.right[i]), int(c.area[i]),
                  sorted(zip(c.ys[c.which == i].tolist(), c.xs[c.which == i].tolist(), strict=True)))
                 for i in range(len(c.area))]
        assert found == _components_per_plane(labels)
        seen_touching += int(((labels[:, 1:] > 0) & (labels[:, :-1] > 0) & (labels[:, 1:] != labels[:, :-1])).any())
    assert seen_touching >= 4  # the split path ran


def test_count_vectors_equal_counting_the_detected_objects():
    """detect_vectors counts the components' classes from arrays at once; it agrees with counting the objects
    detect_objects_batch lists, image by image, on clean scenes and on blocky touching colours."""
    rng = np.random.default_rng(4)
    clean = np.stack([scenes.random_scene(seed)[0] for seed in range(40)])
    blocky = detector._PALETTE[np.repeat(np.repeat(rng.integers(0, 5, (40, 8, 8)), 4, 1), 4, 2)].transpose(0, 3, 1, 2)
    for images in (clean, blocky, np.zeros((2, 3, 32, 32), dtype=np.float32)):
        images = torch.as_tensor(images)
        expected = torch.zeros(len(images), len(CLASSES), dtype=torch.float64)
        for i, objects in enumerate(detector.detect_objects_batch(images)):
            for colour, shape, *_ in objects:
                expected[i, CLASSES.index((colour, shape))] += 1
        assert torch.equal(detector.detect_vectors(images), expected)
    assert float(expected.sum()) == 0 and float(detector.detect_vectors(torch.as_tensor(clean)).sum()) > 40
