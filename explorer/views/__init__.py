"""The only Plotly in the package: shared charts, the architecture graph (layout and figure),
overlay figures, the study charts, links that rebuild a view, the tour. It draws what
`explorer.studies` measured; it may import `explorer.compute` and the folders below it."""
