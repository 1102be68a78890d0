"""Search methods: each a generator of trace events that returns a SearchResult.

`methods.METHODS` maps a method name to (params dataclass, runner); `settings` turns user values into
those dataclasses, each value checked against its declared range before anything runs.
"""

from flowscale.search.context import Batch, SearchContext, SearchResult
from flowscale.search.methods import METHODS, SEARCH_METHODS
from flowscale.search.settings import (
    CHOICES,
    Setting,
    check_method,
    check_param_keys,
    method_params,
    method_settings,
    params_dict,
    without_method_params,
)

__all__ = ["CHOICES", "METHODS", "SEARCH_METHODS", "Batch", "SearchContext", "SearchResult", "Setting", "check_method",
           "check_param_keys", "method_params", "method_settings", "params_dict", "without_method_params"]
