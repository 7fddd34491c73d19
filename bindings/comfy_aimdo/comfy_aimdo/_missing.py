# SPDX-License-Identifier: Apache-2.0
"""What a module of the drop-in answers while the dynvram piece it wraps is
not part of this build: every entry point raises RuntimeError (the error
the spec gives for every failure of these modules) naming the piece."""


def need(feature, what):
    """Raise RuntimeError: `what` needs dynvram's `feature`."""
    raise RuntimeError(
        "comfy_aimdo (dynvram): %s needs dynvram's %s, which this build of "
        "dynvram does not have yet" % (what, feature))
