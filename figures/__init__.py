"""Regenerate the package's figures: ``python -m figures``.

One module per figure (:data:`figures.registry.FIGURES`), each with
``build(profile, runs, out) -> FigureResult``: it computes the runs behind the figure through
the layers' own run functions -- or reuses them, since a run folder is named by the hash of
its configuration -- and writes ``out/<name>.png``, ``.pdf`` and ``.npz`` (the arrays drawn
and the fitted laws). :mod:`figures.style` holds the one look of every figure.
"""
