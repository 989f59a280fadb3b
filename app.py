"""pareto-app: explore the Pareto fronts of multi-objective bilevel learning problems.

The entry point: page configuration and the navigation. Each page draws the shared
sidebar itself (`ui.setup.render_sidebar`, same widget keys on every page, so the settings
carry over), which also keeps every page testable on its own with AppTest.
"""

import streamlit as st

st.set_page_config(page_title="pareto-app", page_icon=":material/filter_tilt_shift:", layout="wide")

page = st.navigation([
    st.Page("pages/explore.py", title="Explore", icon=":material/explore:", default=True),
    st.Page("pages/sweep.py", title="Sweep", icon=":material/grid_on:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("pages/runs.py", title="Runs", icon=":material/inventory_2:"),
])
page.run()
