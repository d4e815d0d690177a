"""The candidate table and the evidence on each row: candidates.py (the ranked table), validity.py (charge
neutrality, electronegativity, novelty flags), filters.py (the named checks of `--filter` and the app)."""
