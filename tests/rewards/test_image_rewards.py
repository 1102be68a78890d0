"""Image rewards on tiny random reward models built offline (ecosystem.md 4.1-4.8).

Each tiny model is saved to a folder and loaded through the same constructor (and env var) as the real
checkpoint. Checks shapes, finiteness, the formulas (100 cos, logit_scale cos, the aesthetic MLP), the
counting prompt parser and dedup rules, the VQAScore HTTP contract, and ConfigErrors offline.
"""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("transformers")

from tiny_pipelines import tiny_clip_tokenizer
from transformers import (
    BertTokenizer,
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    CLIPProcessor,
    GroundingDinoConfig,
    GroundingDinoForObjectDetection,
    GroundingDinoImageProcessor,
    GroundingDinoProcessor,
    SwinConfig,
)

from flowscale.config import ConfigError
from flowscale.rewards import (
    common,
    make_image_reward,
)
from flowscale.rewards.aesthetic import AestheticScorer, convert_head
from flowscale.rewards.clip import ClipScorer
from flowscale.rewards.grounding_counting import (
    Detection,
    GroundingCounter,
    box_masks,
    dedup,
    keep_confident,
    parse_count_prompt,
    parse_count_spec,
)
from flowscale.rewards.vqascore_client import VQAScoreClient

PROMPT = "3 red apples and 2 bananas"
CLASSES = ["red apples", "bananas"]


pytestmark = pytest.mark.usefixtures("offline_single_thread")  # conftest.py


def images(n: int = 3, size: int = 48, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


# --- tiny models ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> str:
    torch.manual_seed(0)
    text = dict(vocab_size=128, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1)
    vision = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=32,
                  patch_size=8)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).eval()
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                                 crop_size={"height": 32, "width": 32}),
                              tokenizer=tiny_clip_tokenizer(16))
    folder = tmp_path_factory.mktemp("clip")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def gdino_dir(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("gdino")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "red", "apples", "bananas", "a", "and"]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    config = GroundingDinoConfig(
        d_model=32, encoder_layers=1, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
        encoder_ffn_dim=8, decoder_ffn_dim=8, num_queries=10, num_feature_levels=4, encoder_n_points=2,
        decoder_n_points=2, use_timm_backbone=False, max_text_len=16,
        backbone_config=SwinConfig(window_size=7, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                                   image_size=98, out_indices=[2, 3, 4]),
        text_config=dict(model_type="bert", hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=8, max_position_embeddings=32, vocab_size=64))
    torch.manual_seed(0)
    GroundingDinoForObjectDetection(config).eval().save_pretrained(folder)
    GroundingDinoProcessor(image_processor=GroundingDinoImageProcessor(size={"shortest_edge": 98, "longest_edge": 98}),
                           tokenizer=BertTokenizer(str(folder / "vocab.txt"))).save_pretrained(folder)
    return str(folder)


# --- CLIP score, PickScore, aesthetic --------------------------------------------------------------------
def test_clip_pixels_match_the_processor(clip_dir):
    processor = CLIPProcessor.from_pretrained(clip_dir)
    same = images(2, 32)
    ours = common.clip_pixels(same, processor.image_processor, torch.device("cpu"), torch.float32)
    ref = processor.image_processor(images=common.to_uint8_hwc(same), return_tensors="pt").pixel_values
    assert ours.shape == ref.shape == (2, 3, 32, 32)
    assert (ours - ref).abs().max() < 0.02  # uint8 rounding only
    resized = common.clip_pixels(images(2, 80), processor.image_processor, torch.device("cpu"), torch.float32)
    assert resized.shape == (2, 3, 32, 32)


def test_clip_score(clip_dir, monkeypatch):
    scorer = ClipScorer(clip_dir, device="cpu")
    x = images()
    s = scorer.score(x, PROMPT)
    assert s.shape == (3,) and s.dtype == torch.float64 and bool(torch.isfinite(s).all())
    assert bool((s.abs() <= 100).all())
    cos = scorer.image_embeddings(x) @ scorer.text_embedding(PROMPT)
    assert torch.allclose(s, 100 * cos.double(), atol=1e-5)
    monkeypatch.setenv("FLOWSCALE_CLIP_PATH", clip_dir)
    reward = make_image_reward("clip", PROMPT, "cpu")
    assert reward.name == "clip" and torch.allclose(reward(x), s, atol=1e-6)


def test_pickscore(clip_dir, monkeypatch):
    monkeypatch.setenv("FLOWSCALE_PICKSCORE_PATH", clip_dir)
    monkeypatch.setenv("FLOWSCALE_PICKSCORE_PROCESSOR", clip_dir)
    reward = make_image_reward("pickscore", PROMPT, "cpu")
    x = images()
    s = reward(x)
    plain = ClipScorer(clip_dir, device="cpu")
    cos = plain.image_embeddings(x) @ plain.text_embedding(PROMPT)
    assert torch.allclose(s, float(plain.model.logit_scale.detach().exp()) * cos.double(), atol=1e-5)


def _random_head(dim: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    sizes = [(1024, dim), (128, 1024), (64, 128), (16, 64), (1, 16)]
    return {f"layers.{i}.{p}": (torch.randn(o, n) * 0.05 if p == "weight" else torch.randn(o) * 0.05)
            for i, (o, n) in zip((0, 2, 4, 6, 7), sizes) for p in ("weight", "bias")}


def test_aesthetic_head_and_conversion(clip_dir, tmp_path, monkeypatch):
    state = _random_head(16)
    torch.save(state, tmp_path / "head.pth")
    convert_head(tmp_path / "head.pth", tmp_path / "head.safetensors")
    scorer = AestheticScorer(str(tmp_path / "head.safetensors"), clip_dir, device="cpu")
    x = images()
    s = scorer.score(x)
    assert s.shape == (3,) and bool(torch.isfinite(s).all())
    emb = F.normalize(ClipScorer(clip_dir, device="cpu").image_embeddings(x), dim=-1)
    h = emb
    for i in (0, 2, 4, 6, 7):  # no activations in the LAION v2 head
        h = h @ state[f"layers.{i}.weight"].T + state[f"layers.{i}.bias"]
    assert torch.allclose(s, h[:, 0].double(), atol=1e-4)
    monkeypatch.setenv("FLOWSCALE_AESTHETIC_HEAD", str(tmp_path / "head.pth"))
    monkeypatch.setenv("FLOWSCALE_CLIP_PATH", clip_dir)
    assert torch.allclose(make_image_reward("aesthetic", None, "cpu")(x), s, atol=1e-5)
    with pytest.raises(ConfigError, match="16-d"):
        AestheticScorer(str(_save(tmp_path, _random_head(8))), clip_dir, device="cpu")


def _save(tmp_path, state):
    from safetensors.torch import save_file

    path = tmp_path / "small.safetensors"
    save_file(state, str(path))
    return path


# --- counting --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("prompt,expected", [
    ("3 red apples and 2 bananas", {"red apples": 3, "bananas": 2}),
    ("a photo of three dogs", {"dogs": 3}),
    ("a cat and two dogs on a sofa", {"cat": 1, "dogs": 2}),
    ("Five blue cups, one teapot.", {"blue cups": 5, "teapot": 1}),
    ("four birds sitting on a wire", {"birds": 4}),
    ("a cat on a mat", {}),
])
def test_parse_count_prompt(prompt, expected):
    assert parse_count_prompt(prompt) == expected


def test_parse_count_spec():
    assert parse_count_spec("count:Red Apples=3,bananas=2", None) == {"red apples": 3, "bananas": 2}
    assert parse_count_spec("count", PROMPT) == {"red apples": 3, "bananas": 2}
    with pytest.raises(ValueError):
        parse_count_spec("count", "a cat on a mat")
    with pytest.raises(ValueError):
        parse_count_spec("count:apples=x", None)


def test_keep_confident_and_dedup_rules():
    dets = [Detection(0, 0.9, (0, 0, 10, 10)), Detection(0, 0.5, (1, 1, 9, 9)),  # nested: the smaller wins
            Detection(0, 0.3, (50, 50, 60, 60)),  # below 0.6 * 0.9 and 0.32: dropped by step 4
            Detection(1, 0.4, (20, 20, 30, 30)), Detection(0, 0.8, (20, 20, 30, 29)),  # same place, class 0 wins
            Detection(1, 0.35, (70, 70, 80, 80))]
    kept = keep_confident(dets, 2)
    assert Detection(0, 0.3, (50, 50, 60, 60)) not in kept and len(kept) == 5
    final = dedup(kept, box_masks(kept, 100, 100), 2)
    assert sorted((d.label, d.score) for d in final) == [(0, 0.5), (0, 0.8), (1, 0.35)]
    # the smaller box is visited first: the big one is then > 50 % new and is kept as a second object
    two = [Detection(0, 0.9, (0, 0, 40, 40)), Detection(0, 0.9, (0, 0, 10, 10))]
    assert len(dedup(two, box_masks(two, 100, 100), 1)) == 2
    assert dedup([], box_masks([], 10, 10), 1) == []


def test_grounding_counter_on_tiny_model(gdino_dir, monkeypatch):
    counter = GroundingCounter(gdino_dir, device="cpu")
    x = images(4, 64)
    counts = counter.counts(x, CLASSES)
    assert counts.shape == (4, 2) and counts.dtype == torch.int64 and bool((counts >= 0).all())
    assert counter.counts(x, CLASSES) is counts  # memoised for reward / accuracy / details
    monkeypatch.setenv("FLOWSCALE_GDINO_PATH", gdino_dir)
    reward = make_image_reward("count", PROMPT, "cpu")
    r = reward(x)
    assert r.shape == (4,) and bool(torch.isfinite(r).all()) and bool((r <= 0).all())
    acc = reward.accuracy(x)
    assert bool(((acc == 0) | (acc == 1)).all()) and bool((acc == (r == 0).double()).all())
    details = reward.details(x)
    assert len(details) == 4 and details[0]["targets"] == {"red apples": 3, "bananas": 2}
    got = torch.tensor([[d["counts"][c] for c in CLASSES] for d in details])
    assert torch.equal(-((got - torch.tensor([3, 2])) ** 2).sum(1).double(), r)


def test_sam_masks_on_tiny_model(gdino_dir, tmp_path):
    from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor

    config = SamConfig(
        vision_config={"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 37,
                       "image_size": 64, "patch_size": 16, "output_channels": 16, "mlp_dim": 37, "window_size": 0,
                       "global_attn_indexes": [1], "num_pos_feats": 8},
        prompt_encoder_config={"hidden_size": 16, "image_size": 64, "patch_size": 16, "mask_input_channels": 4,
                               "num_point_embeddings": 4},
        mask_decoder_config={"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "mlp_dim": 32,
                             "iou_head_hidden_dim": 16, "num_multimask_outputs": 3})
    torch.manual_seed(0)
    SamModel(config).eval().save_pretrained(tmp_path / "sam")
    SamProcessor(image_processor=SamImageProcessor(size={"longest_edge": 64}, pad_size={"height": 64, "width": 64}))\
        .save_pretrained(tmp_path / "sam")
    counter = GroundingCounter(gdino_dir, sam_path=str(tmp_path / "sam"), device="cpu")
    dets = [Detection(0, 0.9, (5.0, 5.0, 40.0, 40.0)), Detection(1, 0.5, (30.0, 30.0, 70.0, 90.0))]
    masks = counter.masks(torch.rand(3, 96, 80), dets)
    assert masks.shape == (2, 96, 80) and masks.dtype == torch.bool
    counts = counter.counts(images(2, 64), CLASSES)
    assert counts.shape == (2, 2) and bool((counts >= 0).all())


# --- weight-free, VQAScore, errors ----------------------------------------------------------------------
def test_weight_free_rewards():
    x = images()
    b = make_image_reward("brightness", PROMPT, "cpu")(x)
    j = make_image_reward("jpeg-compressibility", PROMPT, "cpu")(x)
    assert b.shape == j.shape == (3,) and bool((b > 0).all()) and bool((j < 0).all())


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        scores = [0.1 * (i + 1) + 0.01 * len(body["prompt"]) for i in range(len(body["images"]))]
        data = json.dumps({"scores": scores}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # quiet
        pass


def test_vqascore_client_contract(monkeypatch):
    with pytest.raises(ConfigError) as err:
        make_image_reward("vqascore", PROMPT, "cpu")
    assert err.value.field == "reward" and "FLOWSCALE_VQASCORE_URL" in str(err.value)
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("FLOWSCALE_VQASCORE_URL", f"http://127.0.0.1:{server.server_port}")
        s = make_image_reward("vqascore", "ab", "cpu")(images(2))
        assert torch.allclose(s, torch.tensor([0.12, 0.22], dtype=torch.float64))
    finally:
        server.shutdown()
    with pytest.raises(ConfigError, match="not reachable"):
        VQAScoreClient(f"http://127.0.0.1:{server.server_port}", timeout=1.0)


def test_missing_weights_are_config_errors(tmp_path, monkeypatch):
    for spec in ("clip", "pickscore", "count"):  # hub ids, offline, not cached
        with pytest.raises(ConfigError) as err:
            make_image_reward(spec, PROMPT, "cpu", field="heldout")
        assert err.value.field == "heldout" and "offline" in str(err.value)
    with pytest.raises(ConfigError, match="FLOWSCALE_AESTHETIC_HEAD"):
        make_image_reward("aesthetic", PROMPT, "cpu")
    monkeypatch.setenv("FLOWSCALE_CLIP_PATH", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="folder not found"):
        make_image_reward("clip", PROMPT, "cpu")
    with pytest.raises(ConfigError):
        make_image_reward("nope", PROMPT, "cpu")
    with pytest.raises(ConfigError):
        make_image_reward("count", "a cat on a mat", "cpu")
    assert math.isfinite(float(make_image_reward("brightness", None, "cpu")(images(1))[0]))


def _finite_difference_check(score, x: torch.Tensor) -> None:
    """The autograd gradient of sum(score) agrees with a central finite difference along a random direction."""
    leaf = x.clone().double().float().requires_grad_(True)
    (grad,) = torch.autograd.grad(score(leaf).sum(), leaf)
    assert grad.shape == x.shape and bool(torch.isfinite(grad).all()) and float(grad.abs().sum()) > 0
    direction = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    eps = 1e-2
    numeric = (score(x + eps * direction).sum() - score(x - eps * direction).sum()) / (2 * eps)
    assert abs(float((grad * direction).sum()) - float(numeric)) < 0.05 * abs(float(numeric)) + 1e-3


def test_clip_and_aesthetic_rewards_are_differentiable_for_guidance(clip_dir, tmp_path, monkeypatch):
    """The rewards that declare themselves differentiable (dps) give the gradient of their score."""
    monkeypatch.setenv("FLOWSCALE_CLIP_PATH", clip_dir)
    monkeypatch.setenv("FLOWSCALE_AESTHETIC_HEAD", str(_save(tmp_path, _random_head(16))))
    x = images(2, 40).clamp(0.05, 0.95)  # away from the clamp at 0 and 1, where the gradient is cut
    for name in ("clip", "aesthetic", "brightness"):
        reward = make_image_reward(name, PROMPT, "cpu")
        assert reward.differentiable
        _finite_difference_check(reward.graded, x)
        assert not reward(x).requires_grad  # a plain call still builds no graph
    for name in ("jpeg-compressibility",):
        assert not make_image_reward(name, PROMPT, "cpu").differentiable
