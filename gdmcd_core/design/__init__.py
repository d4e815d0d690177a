"""Composition design: the objective, the optimizer, integerization, candidates and run folders.

`from gdmcd_core.design import DesignConfig, DesignEngine` is the public entry point.
"""

from gdmcd_core.design.engine import DesignConfig, DesignEngine, DesignResult, Progress

__all__ = ["DesignConfig", "DesignEngine", "DesignResult", "Progress"]
