"""modelcheck: pre-deployment validation for model serving.

Heavy libraries (torch, vllm, numpy, huggingface_hub) are never imported here: ``import checker`` must
stay cheap because every ``check`` run pays for it.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "check"]


def check(path, **kwargs):  # noqa: ANN001, ANN201 - thin lazy wrapper, documented in checker.api
    """Check one model folder or file. See :func:`checker.api.check`."""
    from checker.api import check as _check

    return _check(path, **kwargs)
