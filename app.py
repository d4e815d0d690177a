"""GDMCD Studio — the web app's entry point: navigation and the model in use.

Run with `streamlit run app.py`. Each page lives in pages/ and only lays out widgets and
figures; everything computed comes from gdmcd_core.
"""

import streamlit as st

from pages._shared import model_sidebar, persist_widget_state

st.set_page_config(page_title="GDMCD Studio", page_icon=":material/science:", layout="wide")

navigation = st.navigation(
    [
        st.Page("pages/design.py", title="Design", icon=":material/science:", default=True),
        st.Page("pages/trajectories.py", title="Trajectories", icon=":material/timeline:"),
        st.Page("pages/predict.py", title="Predict", icon=":material/calculate:"),
        st.Page("pages/runs.py", title="Runs", icon=":material/folder_open:"),
        st.Page("pages/model.py", title="Model", icon=":material/model_training:"),
    ]
)
st.sidebar.title("GDMCD Studio")
st.sidebar.caption("Gradient-driven design of superconductor compositions")
persist_widget_state()
model_sidebar()
navigation.run()
