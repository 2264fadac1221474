"""Evaluation: how good a model is, and how good the data is.

labelled.py      labelled images in a folder of class folders, matched to a model's classes
metrics.py       figures that tell the truth (balanced accuracy, calibration error, verdicts)
evaluate.py      a model on a class folder, the CIFAR-10 test set or its own validation split
health.py        the dataset health check (unreadable files, duplicates, leakage, imbalance)
fit_imported.py  familiarity data (and a temperature) for an imported model, from a folder
"""
