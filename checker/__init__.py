"""modelcheck: pre-deployment validation for model serving.

Heavy libraries (torch, vllm, numpy, huggingface_hub) are never imported here: ``import checker`` must
stay cheap because every ``check`` run pays for it.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.2.0"

__all__ = ["__version__", "check"]


def __getattr__(name: str) -> Any:
    # PEP 562: ``modelcheck.check`` loads the pipeline on first use, so ``from modelcheck import __version__``
    # (the formatters, the CLI) does not import it
    if name == "check":
        import importlib

        return importlib.import_module("modelcheck.api").check
    raise AttributeError(f"module 'modelcheck' has no attribute {name!r}")
