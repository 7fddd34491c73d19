# SPDX-License-Identifier: Apache-2.0
"""comfy_aimdo.malloc_graph: the memory compiler for torch's allocations.

Wraps dynvram's allocation graphs. NOT WIRED YET: this build of dynvram
has no allocation graphs, so record() raises RuntimeError (ComfyUI then
needs --disable-comfy-compiler; see the README's ComfyUI section).
"""
from ._missing import need

__all__ = ["MallocGraph", "record"]


class MallocGraph:
    """A graph bound to one stream (see record)."""

    def __init__(self, *args, **kwargs):
        need("allocation graphs", "MallocGraph")


def record(stream, assert_graph_breaks=False):
    need("allocation graphs", "malloc_graph.record")
