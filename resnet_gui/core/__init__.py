"""Everything that is not Qt: models, checkpoints, registry, images, datasets, training, prediction.

Nothing under this package imports Qt (tests/test_architecture.py proves it).
"""
