"""The leaf of the package: network specs and their plans, what a network costs (parameters,
multiply-adds), the bounds and budgets of a request, the style of numbers, and TensorFlow's
process settings. It imports nothing else of `explorer` (nor Gradio, nor Plotly)."""
