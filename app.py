"""pareto-app: explore the Pareto fronts of multi-objective bilevel learning problems.

The entry point: page configuration, the sidebar every page shares, and the navigation.
The sidebar is drawn here, before the page, so its settings carry over from page to page; a
page run on its own (AppTest reruns only the page script) draws it itself.

`streamlit run app.py` finds the `st.App` below and serves this script through it, with the route
the live views are read from (ui/live_feed.py); each browser session then runs this file as its
script (as `__main__`).
"""

import streamlit as st

if __name__ != "__main__":  # imported by the server, not run for a session
    from ui.live_feed import routes

    app = st.App(__file__, routes=routes())
else:
    from ui.setup import render_sidebar

    st.set_page_config(page_title="pareto-app", page_icon=":material/filter_tilt_shift:", layout="wide")

    page = st.navigation([
        st.Page("pages/explore.py", title="Explore", icon=":material/explore:", default=True),
        st.Page("pages/sweep.py", title="Sweep", icon=":material/grid_on:"),
        st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("pages/runs.py", title="Runs", icon=":material/inventory_2:"),
    ])
    st.session_state["_setup"] = render_sidebar()
    page.run()
