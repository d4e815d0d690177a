"""The design objective as pure maths, the bottom layer of `design/` (it imports nothing else from it).

simplex.py (projections onto the masked, capped simplex), constraints.py and constraint_tensors.py (pins,
exclusions, element cap), integer_loss.py (paper eqs. 5-8, integerization), loss.py (the design loss and its
chemistry terms), adam.py (the loop's optimizer).
"""
