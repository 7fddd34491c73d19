# SPDX-License-Identifier: Apache-2.0
"""Version of dynvram's comfy_aimdo drop-in.

The public part is the comfy-aimdo API level this package implements (the
newest release whose interface it covers, 0.4.11 to 0.5.5 in the spec);
the local label names the implementation and its own version, so ``pip``
and ``importlib.metadata`` tell it from the original. A requirement such as
``comfy-aimdo>=0.5`` is satisfied by it (PEP 440 ignores local labels when
matching public specifiers). The literal below is read by pyproject.toml
and by the CMake build, so it stays a plain string.
"""
__version__ = "0.5.5+dynvram.0.1.0"
API_VERSION, _, _local = __version__.partition("+")
IMPLEMENTATION_VERSION = _local.split(".", 1)[1]
