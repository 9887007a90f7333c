"""Summaries (TensorBoard scalars, histograms, text) with scopes, a global
step counter and record-if conditions.

Every summary call is a no-op until a writer is set with
``set_default_writer(create_summary_writer(dir))``; the TensorBoard backend is
imported only then, so this module works without tensorboard installed
(``pip install alf-math[tensorboard]`` for the writer).
"""

import pkgutil

from alf.summary.summary_ops import (
    create_summary_writer,
    enable_summary,
    get_default_writer,
    get_global_counter,
    histogram,
    increment_global_counter,
    is_summary_enabled,
    record_if,
    reset_global_counter,
    scalar,
    scope,
    set_default_writer,
    set_global_counter,
    should_record_summaries,
    text,
)

# Let other distributions contribute submodules (e.g. ``alf.summary.render``).
__path__ = pkgutil.extend_path(__path__, __name__)

__all__ = [
    "create_summary_writer",
    "enable_summary",
    "get_default_writer",
    "get_global_counter",
    "histogram",
    "increment_global_counter",
    "is_summary_enabled",
    "record_if",
    "reset_global_counter",
    "scalar",
    "scope",
    "set_default_writer",
    "set_global_counter",
    "should_record_summaries",
    "text",
]
