"""GDMCD Studio core: Tc model, featurization, data, design engine. No Streamlit here."""

__version__ = "0.1.0"
