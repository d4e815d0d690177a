"""The design loop: optimize.py (`DesignLoop`: stages 2 and 3, integer selection, refinement), with scoring.py
(the model's view), starts.py (start compositions), best_integer.py, refine.py, step_log.py (progress reports),
trajectory.py and results.py (what the loop returns). Nothing here imports a run folder or a search method."""
