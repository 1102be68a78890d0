"""JSON from users (mixture files, records, uploads), read with a size and a nesting-depth bound and checked
by schema before use, so malformed input is one clear ConfigError, never a traceback or a RecursionError.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flowscale.config import ConfigError, short

MAX_DEPTH = 32  # a record nests about 5 deep; a mixture 3
RECORD_BYTES = 64 * 1024 * 1024  # the CLI's bound on a record file (the app's upload cap is smaller)


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting of a JSON text, outside strings (a linear scan, no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def loads(text: str, field: str, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON text; too deep or invalid is a ConfigError naming `field`."""
    if nesting_depth(text) > max_depth:
        raise ConfigError(field, f"nests deeper than {max_depth} levels; not a flowscale file")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise ConfigError(field, f"is not valid JSON ({short(str(exc), 80)})") from None


def read_file(path: str | Path, field: str, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """Read and parse a JSON file: it must exist, fit in max_bytes, be UTF-8 text and valid JSON."""
    file = Path(path)
    try:
        if not file.is_file():
            raise ConfigError(field, f"file not found: {short(str(path), 80)}")
        if file.stat().st_size > max_bytes:
            raise ConfigError(field, f"file is larger than {max_bytes // 1024} KiB")
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(field, "is not UTF-8 text (a binary file?)") from None
    except OSError as exc:
        raise ConfigError(field, f"cannot be read: {exc.strerror or type(exc).__name__}") from None
    return loads(text, field, max_depth)


_EVENT_FIELDS = {"kind": str, "step": int, "nfe_total": int}
_CANDIDATE_LISTS = ("ids", "parents", "t", "states", "x0", "rewards")


def check_record(record: Any, field: str = "record") -> dict[str, Any]:
    """A flowscale record (or a partial one): a JSON object with a "config" object and a list of well-formed
    events. Returns it unchanged; anything else is a ConfigError naming `field`."""
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise ConfigError(field, 'must be a JSON object with a "config" object (a flowscale record.json)')
    events = record.get("events", [])
    if not isinstance(events, list):
        raise ConfigError("events", "must be a list of event objects")
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            raise ConfigError("events", f"event {i} is not an object")
        for key, kind in _EVENT_FIELDS.items():
            if not isinstance(event.get(key), kind) or isinstance(event.get(key), bool):
                raise ConfigError("events", f"event {i} needs {key!r} ({kind.__name__})")
        if event["kind"] == "candidates" and "ids" in event:
            lists = [event.get(k) for k in _CANDIDATE_LISTS]
            if not all(isinstance(v, list) for v in lists) or len({len(v) for v in lists}) != 1:
                raise ConfigError("events", f"event {i}: {', '.join(_CANDIDATE_LISTS)} must be lists of one length")
    return record
