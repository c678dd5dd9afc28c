"""One module per analysis: its computation and its result data, nothing else.

Each builds on ``neuro_magics.core`` (Subject, runner, results); views of the results
live in ``neuro_magics.widgets``.
"""
