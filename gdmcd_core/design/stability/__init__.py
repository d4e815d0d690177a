"""Thermodynamic stability of a candidate: formation energy and the energy above the convex hull.

hull.py (the JARVIS hull of known compounds), energy.py (the formation-energy model as the loop and the table call
it, and the table's hull columns). The loop's relu(E_f) term needs the formation-energy callable, so this sits below
loop/ rather than beside the candidate table in evidence/; it imports nothing else from `design/`.
"""
