"""GDMCD Studio's entry: the navigation over the six pages, the sidebar, persisted widget state."""

from __future__ import annotations

import streamlit as st

from gdmcd_app.components.sidebar import model_sidebar, run_indicator
from gdmcd_app.navigation import PAGES, page
from gdmcd_app.shared import persist_widget_state


def main() -> None:
    st.set_page_config(page_title="GDMCD Studio", page_icon=":material/science:", layout="wide")
    navigation = st.navigation([page(path) for path, _, _ in PAGES])
    st.sidebar.title("GDMCD Studio")
    st.sidebar.caption("Gradient-driven design of superconductor compositions")
    persist_widget_state()
    # which page the last full run showed: a page can tell its first run after another page
    st.session_state["_prev_page"], st.session_state["_page"] = st.session_state.get("_page"), navigation.url_path
    model_sidebar()
    run_indicator(page("design"))
    navigation.run()
