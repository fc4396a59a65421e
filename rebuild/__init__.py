"""rebuild: was this published wheel really built from its published source?

The public API is the pipeline's entry points and the data they return; everything else is
internal to its stage.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
