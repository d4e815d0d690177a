"""The app's seven pages: url path, title and icon, each drawn by the `render()` of views/<url path>.py.

The url path is the page's address (/design, /runs, ...) and its identity: `st.navigation` registers the
pages by it, and `st.switch_page` / `st.page_link` find a page through `page(url_path)`.
"""

from __future__ import annotations

import importlib

import streamlit as st

PAGES = (  # (url path = module in views/, title, icon); the first is the default page
    ("design", "Design", ":material/science:"),
    ("trajectories", "Trajectories", ":material/timeline:"),
    ("candidate", "Candidate", ":material/biotech:"),
    ("predict", "Predict", ":material/calculate:"),
    ("runs", "Runs", ":material/folder_open:"),
    ("model", "Model", ":material/model_training:"),
    ("campaign", "Campaign", ":material/experiment:"),
)


def keep_in_address(name: str, value: str) -> None:
    """Show `value` as the address's query parameter `name` (`?name=value`), so that a reload or a copied link
    shows the same; written only when it differs."""
    if st.query_params.get(name) != value:
        st.query_params[name] = value


def page(url_path: str) -> st.Page:
    """The st.Page of a view by its url path (e.g. "design"), for st.navigation, st.switch_page and st.page_link."""
    for i, (path, title, icon) in enumerate(PAGES):
        if path == url_path:
            view = importlib.import_module(f"gdmcd_app.views.{path}")  # by name: views link to each other
            return st.Page(view.render, title=title, icon=icon, url_path=path, default=i == 0)
    raise ValueError(f"no page {url_path!r}; pages: {', '.join(p[0] for p in PAGES)}")
