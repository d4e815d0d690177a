"""Composition design: the objective, the optimizer, integerization, candidates and run folders.

`from gdmcd_core.design import DesignConfig, DesignEngine` is the public entry point.
"""

from gdmcd_core.design.config import DesignConfig
from gdmcd_core.design.engine import DesignEngine, Progress
from gdmcd_core.design.run import DesignResult

__all__ = ["DesignConfig", "DesignEngine", "DesignResult", "Progress"]
