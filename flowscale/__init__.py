"""flowscale: inference-time scaling for flow models (Kim et al., arXiv 2503.19385), measured.

Time runs from t = 1 (noise) to t = 0 (data); a model's velocity is u = eps - x0 (method.md a.1).
"""

from flowscale.config import ConfigError, RunConfig
from flowscale.run import RunFailed, RunOutput, __version__, replay, run, stream

__all__ = ["ConfigError", "RunConfig", "RunFailed", "RunOutput", "__version__", "replay", "run", "stream"]
