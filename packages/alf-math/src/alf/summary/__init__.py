"""Summaries (TensorBoard scalars, histograms, text, images, videos,
embeddings) with scopes, a global step counter, record-if conditions and a
per-thread stack of writers.

Every summary call is a no-op until a writer is set with
``set_default_writer(create_summary_writer(dir))``; the TensorBoard backend is
imported only then, so this module works without tensorboard installed
(``pip install alf-math[tensorboard]`` for the writer; ``alf-math[video]``
adds Pillow for ``video``). Events still queued in a writer when the
interpreter exits normally are flushed to the file.
"""

import pkgutil

from alf.summary.summary_ops import (
    EnsureSummary,
    create_summary_writer,
    disable_summary,
    embedding,
    enable_summary,
    enter_summary_scope,
    get_default_writer,
    get_global_counter,
    histogram,
    images,
    increment_global_counter,
    is_summary_enabled,
    pop_summary_writer,
    push_summary_writer,
    record_if,
    reset_global_counter,
    scalar,
    scope,
    scope_name,
    set_default_writer,
    set_global_counter,
    should_record_summaries,
    should_summarize_output,
    text,
    video,
)

# Let other distributions contribute submodules (e.g. ``alf.summary.render``).
__path__ = pkgutil.extend_path(__path__, __name__)

__all__ = [
    "EnsureSummary",
    "create_summary_writer",
    "disable_summary",
    "embedding",
    "enable_summary",
    "enter_summary_scope",
    "get_default_writer",
    "get_global_counter",
    "histogram",
    "images",
    "increment_global_counter",
    "is_summary_enabled",
    "pop_summary_writer",
    "push_summary_writer",
    "record_if",
    "reset_global_counter",
    "scalar",
    "scope",
    "scope_name",
    "set_default_writer",
    "set_global_counter",
    "should_record_summaries",
    "should_summarize_output",
    "text",
    "video",
]
