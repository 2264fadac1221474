"""The Train tab: recipes, data, the run and its live curves.

tab.py                the tab: form and data on the left, the run on the right
session.py            the tab's work without widgets: runs (start, stop, resume), downloads, scans
form.py               what to train: recipe, model and settings
data_panel.py         CIFAR-10 found, downloaded or located; a class folder scanned
data_health_panel.py  the dataset health check with thumbnails
health_check.py       the health check kept about the scans and settings; its choices in a run's config
lr_finder_panel.py    the learning-rate finder
monitor.py            progress, result, verdicts and the log of a run
live_plots.py         loss and accuracy while training
torchrun.py           several GPUs: torchrun as a child process
"""
