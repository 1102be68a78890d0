"""Run records in the app, with no gradio: offering one for download, reading an upload, judging a replay.

An upload is size-capped JSON whose config is validated before anything runs; nothing in it is executed.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from flowscale import cost, safe_json
from flowscale.config import ConfigError, RunConfig, validate_types
from flowscale.trace import RunRecord, expected_replay

# Requests are refused when their record is estimated above the cap; uploads are read up to 1.5x the cap, a
# margin over the estimate, so any record the app writes it can read back.
MAX_RECORD_BYTES = int(1.5 * cost.caps()[1] * 1e6)
RECORD_DIR = Path(tempfile.gettempdir()) / "flowscale-records"


def save_record(record: RunRecord) -> str:
    """Write a record to a fresh per-run file (old ones are pruned after an hour)."""
    RECORD_DIR.mkdir(parents=True, exist_ok=True)
    for old in RECORD_DIR.glob("*.json"):
        if time.time() - old.stat().st_mtime > 3600:
            old.unlink(missing_ok=True)
    cfg = record.config
    fd, path = tempfile.mkstemp(
        prefix=f"flowscale-{cfg.get('model')}-{cfg.get('method')}-seed{cfg.get('seed')}-", suffix=".json",
        dir=RECORD_DIR,
    )
    with os.fdopen(fd, "w") as f:
        json.dump(record.saved(), f, indent=1, allow_nan=False)
    return path


def read_upload(path: str | None) -> dict[str, Any]:
    """An uploaded record: size-capped JSON object with a valid config; nothing in it is executed."""
    if not path:
        raise ConfigError("record", "upload a record JSON file first")
    if Path(path).suffix.lower() != ".json":
        raise ConfigError("record", "must be a .json file")
    record = safe_json.check_record(safe_json.read_file(path, "record", MAX_RECORD_BYTES))
    cfg = RunConfig.from_dict(record["config"])
    validate_types(cfg)
    if cfg.model_path is not None:
        raise ConfigError("model_path", "records that name a local model folder cannot be replayed in the app")
    return record


def replay_verdict(uploaded: dict[str, Any], again: RunRecord) -> str:
    """Whether a re-run record equals the uploaded one (timings aside), and where it differs."""
    expected = expected_replay(uploaded)
    result = again.comparable()
    if result == expected:
        return "✓ **Replay identical**: the re-run record matches the uploaded one exactly (timings aside)."
    keys = sorted(k for k in set(result) | set(expected) if result.get(k) != expected.get(k))
    versions = "" if result.get("versions") == expected.get("versions") else " (the versions differ)"
    return f"≠ **Replay differs** in: {', '.join(keys)}{versions}."
