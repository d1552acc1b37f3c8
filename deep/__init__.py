"""The large-batch experiments: models, ghost batch norm, regimes and a distance-recording trainer."""
