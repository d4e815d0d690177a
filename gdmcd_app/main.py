"""GDMCD Studio's navigation: one `st.Page` per view, the model sidebar, persisted widget state."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from gdmcd_app.job_sidebar import run_indicator
from gdmcd_app.shared import model_sidebar, persist_widget_state

VIEWS = Path(__file__).resolve().parent / "views"
PAGES = (  # (file in views/, title, icon); the first is the default page
    ("design.py", "Design", ":material/science:"),
    ("trajectories.py", "Trajectories", ":material/timeline:"),
    ("predict.py", "Predict", ":material/calculate:"),
    ("runs.py", "Runs", ":material/folder_open:"),
    ("model.py", "Model", ":material/model_training:"),
)


def page(name: str) -> st.Page:
    """The st.Page of a view file, by its file name (e.g. "design.py"); used by st.switch_page too."""
    for i, (file, title, icon) in enumerate(PAGES):
        if file == name:
            return st.Page(str(VIEWS / file), title=title, icon=icon, default=i == 0)
    raise ValueError(f"no view named {name!r}; views: {', '.join(p[0] for p in PAGES)}")


def main() -> None:
    st.set_page_config(page_title="GDMCD Studio", page_icon=":material/science:", layout="wide")
    navigation = st.navigation([page(file) for file, _, _ in PAGES])
    st.sidebar.title("GDMCD Studio")
    st.sidebar.caption("Gradient-driven design of superconductor compositions")
    persist_widget_state()
    # which page the last full run showed: a page can tell its first run after another page
    st.session_state["_prev_page"], st.session_state["_page"] = st.session_state.get("_page"), navigation.url_path
    model_sidebar()
    run_indicator(page("design.py"))
    navigation.run()
