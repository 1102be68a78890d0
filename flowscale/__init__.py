"""flowscale: inference-time scaling for flow models (Kim et al., arXiv 2503.19385), measured.

Time runs from t = 1 (noise) to t = 0 (data); a model's velocity is u = eps - x0 (method.md a.1).
"""

import os

# OpenMP threads that spin while they wait make a run collapse beside any other busy process; this must be
# set before torch loads (flowscale/threads.py has the whole policy). An explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from flowscale.config import ConfigError, RunConfig  # noqa: E402 - after the OpenMP setting
from flowscale.run import RunFailed, RunOutput, __version__, replay, run, stream  # noqa: E402

__all__ = ["ConfigError", "RunConfig", "RunFailed", "RunOutput", "__version__", "replay", "run", "stream"]
