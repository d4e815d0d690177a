"""The `kind` a checkpoint's card declares: what its network predicts. No imports, so any layer can read them."""

TC_KIND = "tc_regressor"  # a Tc model (a card without "kind" is taken as one)
HYDRIDE_KIND = "tc_regressor_hydride"  # a Tc model trained in hydride mode
FORMATION_ENERGY_KIND = "formation_energy"  # a formation-energy model (eV/atom)
TREES_KIND = "tc_trees"  # the gradient-boosted trees beside a Tc checkpoint
SC_CLASSIFIER_KIND = "tc_sc_classifier"  # the P(superconductor) trees beside a Tc checkpoint (model/sc_classifier.py)
