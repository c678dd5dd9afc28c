"""The engine core: architecture adapters, layer programs, the Subject, the
residual-stream runner, model loading, results and errors.

Pure torch/transformers: nothing here imports IPython, ipywidgets or plotly.
"""
