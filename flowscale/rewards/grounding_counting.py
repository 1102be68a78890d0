"""Counting reward with Grounding DINO (method.md e, "Counting reward"; the paper's quantity-aware task).

Steps per image (thresholds of the released code):
1. Query = the class names joined as "a. b." (lower case), e.g. "red apples. bananas.".
2. Grounding DINO (IDEA-Research/grounding-dino-base) with box_threshold 0.2 and text_threshold 0.2.
3. Keep detections whose phrase equals a class name exactly.
4. Per class keep score > 0.6 * (class max) or score > 0.32.
5. A mask per kept box: SAM (facebook/sam-vit-base) when FLOWSCALE_SAM_PATH is set, else the box itself
   rasterised (our documented SAM-free variant: the same rules below applied to box masks, i.e. dedup by
   box containment/overlap on a pixel grid).
6. Inner-class dedup: per class, visit masks by ascending area; accept one only if > 50 % of its pixels are
   not yet covered by accepted masks of that class. Keep a per-pixel map of the highest accepted score.
7. Cross-class dedup: keep an accepted detection only if < 50 % of its pixels have a higher score in the map.
8. Count per class; reward = -sum_c (target_c - count_c)^2, accuracy = 1 when every count is exact.

Targets come from the prompt ("3 red apples and 2 bananas", digits or number words; "a/an X" counts 1 in a
list that has an explicit number) or explicitly from the spec `count:red apples=3,bananas=2`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from flowscale.config import ConfigError
from flowscale.rewards.common import batched, cached, load_hf, location, resolve_device, reward_dtype, to_uint8_hwc

GDINO_ID = "IDEA-Research/grounding-dino-base"
GDINO_ENV = "FLOWSCALE_GDINO_PATH"
SAM_ENV = "FLOWSCALE_SAM_PATH"
BOX_THRESHOLD = 0.2
TEXT_THRESHOLD = 0.2
RELATIVE_KEEP = 0.6
ABSOLUTE_KEEP = 0.32
GRID = 256  # dedup masks live on a grid whose longer side is at most this many pixels

_NUMBERS = ("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
            "seventeen eighteen nineteen twenty")
NUMBER_WORDS = {w: i + 1 for i, w in enumerate(_NUMBERS.split())}
ARTICLES = ("a", "an")
LIST_STARTS = ("and", ",", "plus", ";")
STOP_WORDS = frozenset((
    "and or with on in at of next near under beside behind above below over inside outside around top to by "
    "from while that which who is are sit sits stand stands lie lies left right front middle").split())


def _clause_phrase(tokens: list[str], start: int) -> tuple[str, str | None]:
    """The noun phrase starting at tokens[start] (at most 3 words) and the token that ended it."""
    words: list[str] = []
    i = start
    while i < len(tokens) and len(words) < 3:
        tok = tokens[i]
        if tok in ",.;:!?" or tok in STOP_WORDS or tok in NUMBER_WORDS or tok.isdigit() or tok in ARTICLES:
            return " ".join(words), tok
        if tok.endswith("ing") and len(tok) > 4:
            return " ".join(words), tok
        words.append(tok)
        i += 1
    return " ".join(words), tokens[i] if i < len(tokens) else None


def parse_count_prompt(prompt: str) -> dict[str, int]:
    """'3 red apples and 2 bananas' -> {'red apples': 3, 'bananas': 2} (insertion order kept).

    Counts are digits or number words (one..twenty); "a"/"an" counts 1 only in prompts with an explicit
    number, at the start or after "and" / "," (a list item, not "on a table"), and not before "of"
    ("a photo of ..."). Phrases end at punctuation, a preposition/conjunction,
    an -ing word or after three words. Returns {} when nothing is found.
    """
    tokens = re.findall(r"[a-z0-9]+(?:[-'][a-z0-9]+)*|[,.;:!?]", prompt.lower())
    explicit = any(t.isdigit() or t in NUMBER_WORDS for t in tokens)
    targets: dict[str, int] = {}
    for i, tok in enumerate(tokens):
        if tok.isdigit():
            count = int(tok)
        elif tok in NUMBER_WORDS:
            count = NUMBER_WORDS[tok]
        elif tok in ARTICLES and explicit and (i == 0 or tokens[i - 1] in LIST_STARTS):
            count = 1
        else:
            continue
        phrase, ended_by = _clause_phrase(tokens, i + 1)
        if not phrase or (tok in ARTICLES and ended_by == "of"):
            continue
        targets[phrase] = targets.get(phrase, 0) + count
    return targets


def parse_count_spec(spec: str, prompt: str | None) -> dict[str, int]:
    """`count` (targets from the prompt) or `count:NAME=N,NAME=N` (explicit). Raises ValueError."""
    _, _, body = spec.partition(":")
    if not body:
        targets = parse_count_prompt(prompt or "")
        if not targets:
            raise ValueError(f"found no object counts in the prompt {prompt!r} (write e.g. '3 red apples and "
                             "2 bananas', or give them as count:red apples=3,bananas=2)")
        return targets
    targets = {}
    for item in body.split(","):
        name, eq, value = item.partition("=")
        name = " ".join(name.lower().split())
        if not eq or not name or not value.strip().isdigit():
            raise ValueError(f"count targets are NAME=N pairs, e.g. count:red apples=3,bananas=2; got {item!r}")
        targets[name] = int(value)
    return targets


@dataclass(frozen=True)
class Detection:
    label: int  # class index
    score: float
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


def keep_confident(dets: list[Detection], n_classes: int) -> list[Detection]:
    """Step 4: per class, score > 0.6 * class max or score > 0.32."""
    best = [max((d.score for d in dets if d.label == c), default=0.0) for c in range(n_classes)]
    return [d for d in dets if d.score > RELATIVE_KEEP * best[d.label] or d.score > ABSOLUTE_KEEP]


def box_masks(dets: list[Detection], height: int, width: int) -> torch.Tensor:
    """Boxes rasterised as boolean masks [N, h, w] on the dedup grid."""
    scale = min(1.0, GRID / max(height, width))
    h, w = max(1, round(height * scale)), max(1, round(width * scale))
    masks = torch.zeros((len(dets), h, w), dtype=torch.bool)
    for i, d in enumerate(dets):
        x0, y0, x1, y1 = (v * scale for v in d.box)
        c0, r0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
        c1, r1 = min(w, max(c0 + 1, int(np.ceil(x1)))), min(h, max(r0 + 1, int(np.ceil(y1))))
        masks[i, r0:r1, c0:c1] = True
    return masks


def dedup(dets: list[Detection], masks: torch.Tensor, n_classes: int) -> list[Detection]:
    """Steps 6-7 on masks [N, h, w] (bool): inner-class coverage, then cross-class score map."""
    if not dets:
        return []
    area = masks.flatten(1).sum(1)
    score_map = torch.zeros(masks.shape[1:], dtype=torch.float64)
    accepted: list[int] = []
    for c in range(n_classes):
        covered = torch.zeros(masks.shape[1:], dtype=torch.bool)
        for i in sorted((i for i, d in enumerate(dets) if d.label == c), key=lambda i: int(area[i])):
            m = masks[i]
            if int(area[i]) == 0 or int((m & ~covered).sum()) <= 0.5 * int(area[i]):
                continue
            accepted.append(i)
            covered |= m
            score_map = torch.where(m, torch.clamp(score_map, min=dets[i].score), score_map)
    kept = []
    for i in accepted:
        m = masks[i]
        higher = int((score_map[m] > dets[i].score).sum())
        if higher < 0.5 * int(area[i]):
            kept.append(dets[i])
    return kept


class GroundingCounter:
    """Grounding DINO (+ optional SAM) object counter.

    Args:
        model_path: folder or hub id of a Grounding DINO checkpoint (processor in the same place).
        sam_path: folder or hub id of a SAM checkpoint, or None for box masks.
    """

    def __init__(self, model_path: str = GDINO_ID, sam_path: str | None = None,
                 device: str | torch.device | None = None, field: str = "reward", batch: int = 4) -> None:
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        self.device = resolve_device(device)
        self.dtype = reward_dtype(self.device)
        self.model = load_hf(AutoModelForZeroShotObjectDetection, model_path, field, "Grounding DINO", GDINO_ENV)
        self.model.to(self.device, self.dtype).eval().requires_grad_(False)
        self.processor = load_hf(AutoProcessor, model_path, field, "Grounding DINO processor", GDINO_ENV)
        self.sam = self.sam_processor = None
        if sam_path:
            from transformers import SamModel, SamProcessor

            self.sam = load_hf(SamModel, sam_path, field, "SAM", SAM_ENV).to(self.device, self.dtype).eval()
            self.sam.requires_grad_(False)
            self.sam_processor = load_hf(SamProcessor, sam_path, field, "SAM processor", SAM_ENV)
        self.batch = batch
        self._memo: tuple | None = None

    @torch.inference_mode()
    def detect(self, images: torch.Tensor, classes: list[str]) -> list[list[Detection]]:
        """Steps 1-3: detections whose phrase is exactly a class name, per image."""
        query = " ".join(f"{c}." for c in classes)
        index = {c: i for i, c in enumerate(classes)}
        height, width = images.shape[-2:]
        found: list[list[Detection]] = []
        for chunk in batched(images, self.batch):
            inputs = self.processor(images=to_uint8_hwc(chunk), text=[query] * chunk.shape[0], return_tensors="pt")
            inputs = {k: (v.to(self.device, self.dtype) if v.is_floating_point() else v.to(self.device))
                      for k, v in inputs.items()}
            outputs = self.model(**inputs)
            outputs.logits, outputs.pred_boxes = outputs.logits.float(), outputs.pred_boxes.float()
            results = self.processor.post_process_grounded_object_detection(
                outputs, inputs["input_ids"], threshold=BOX_THRESHOLD, text_threshold=TEXT_THRESHOLD,
                target_sizes=[(height, width)] * chunk.shape[0])
            for res in results:
                labels = res["text_labels"] if "text_labels" in res else res["labels"]
                found.append([Detection(index[lab], float(s), tuple(float(v) for v in b))
                              for s, b, lab in zip(res["scores"], res["boxes"], labels, strict=True)
                              if isinstance(lab, str) and lab in index])
        return found

    @torch.inference_mode()
    def masks(self, image: torch.Tensor, dets: list[Detection]) -> torch.Tensor:
        """Step 5: masks [N, h, w] on the dedup grid (SAM when loaded, else the boxes)."""
        height, width = image.shape[-2:]
        grid = box_masks(dets, height, width)
        if self.sam is None or not dets:
            return grid
        inputs = self.sam_processor(images=to_uint8_hwc(image[None]), input_boxes=[[list(d.box) for d in dets]],
                                    return_tensors="pt")
        pixel_values = inputs["pixel_values"].to(self.device, self.dtype)
        out = self.sam(pixel_values=pixel_values, input_boxes=inputs["input_boxes"].to(self.device, self.dtype),
                       multimask_output=False)
        masks = self.sam_processor.image_processor.post_process_masks(
            out.pred_masks.float().cpu(), inputs["original_sizes"].cpu(), inputs["reshaped_input_sizes"].cpu())[0]
        masks = masks[:, 0].float()[:, None]  # [N, 1, H, W]
        return F.interpolate(masks, size=grid.shape[1:], mode="nearest")[:, 0] > 0.5

    def counts(self, images: torch.Tensor, classes: list[str]) -> torch.Tensor:
        """Per-class counts [B, K] (int64) after thresholds and dedup; memoised for the last batch."""
        key = (tuple(classes), images.shape, images._version)
        if self._memo is not None and self._memo[0] is images and self._memo[1] == key:
            return self._memo[2]
        per_image = self.detect(images, classes)
        rows = []
        for img, dets in zip(images, per_image, strict=True):
            dets = keep_confident(dets, len(classes))
            kept = dedup(dets, self.masks(img, dets), len(classes))
            rows.append([sum(1 for d in kept if d.label == c) for c in range(len(classes))])
        out = torch.tensor(rows, dtype=torch.int64).reshape(len(rows), len(classes))
        self._memo = (images, key, out)
        return out


def grounding_counter(device: torch.device, field: str = "reward") -> GroundingCounter:
    model, sam = location(GDINO_ENV, GDINO_ID), location(SAM_ENV, "") or None
    key = ("gdino", model, sam, str(device), str(reward_dtype(device)))
    return cached(key, lambda: GroundingCounter(model, sam, device, field))


def count_reward_fns(counter: GroundingCounter, targets: dict[str, int]):
    """(reward, accuracy, details) functions of decoded images for the given targets."""
    classes = list(targets)
    target = torch.tensor([targets[c] for c in classes], dtype=torch.float64)

    def reward(images: torch.Tensor) -> torch.Tensor:
        return -((counter.counts(images, classes).double() - target) ** 2).sum(1)

    def accuracy(images: torch.Tensor) -> torch.Tensor:
        return (counter.counts(images, classes).double() == target).all(1).double()

    def details(images: torch.Tensor) -> list[dict]:
        counts = counter.counts(images, classes)
        return [{"counts": dict(zip(classes, row.tolist(), strict=True)), "targets": dict(targets)} for row in counts]

    return reward, accuracy, details


def check_targets(spec: str, prompt: str | None, field: str) -> dict[str, int]:
    try:
        return parse_count_spec(spec, prompt)
    except ValueError as exc:
        raise ConfigError(field, str(exc)) from None
