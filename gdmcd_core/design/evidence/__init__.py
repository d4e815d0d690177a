"""The candidate table and the evidence on each row: candidates.py (the ranked table), validity.py (charge
neutrality, electronegativity, novelty flags), filters.py (the named checks of `--filter` and the app), and the phase
analysis: known.py (SuperCon, COD, JARVIS compounds), phases.py (parent, mixture, known), edits.py (the parent plus
its edit), site_fit.py (ionic-radius mismatch of a substitution), diversity.py (families and the per-family cap)."""
