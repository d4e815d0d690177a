"""The non-gradient search methods: baselines.py (random, evolution, database on any score function), mutation.py
(the search space and random moves), substitution.py (data-mined ionic substitutions of known superconductors),
methods.py (`run_search`: those methods against a design loop's model and constraints, behind
`DesignConfig.method`)."""
