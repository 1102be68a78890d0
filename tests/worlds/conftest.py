"""The tiny text-to-image pipelines, saved once per session to folders the world loads them from."""

from __future__ import annotations

import pytest
from tiny_pipelines import tiny_flux, tiny_sd3


@pytest.fixture(scope="session")
def pipe_dirs(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("pipes")
    dirs = {}
    for name, pipe in (("flux-schnell", tiny_flux(False)), ("flux-dev", tiny_flux(True)), ("sd3", tiny_sd3())):
        dirs[name] = str(root / name)
        pipe.save_pretrained(dirs[name])
    return dirs
