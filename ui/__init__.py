"""The app layer: widgets and Plotly figures over the library (pages stay thin)."""
