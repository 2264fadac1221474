"""The Runs tab: every training run, compared, resumed or cleaned up.

tab.py          the tab
session.py      the tab's work without widgets: list, compare, free space
table.py        the runs as a table
curves.py       several runs' curves on one pair of plots
config_diff.py  settings side by side, differences marked
tensorboard.py  Open in TensorBoard
"""
