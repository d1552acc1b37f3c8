"""The large-batch experiments.

Models, ghost batch norm, regimes and a trainer that records the distance travelled.
"""
