"""The Models tab: the model registry.

tab.py            the registry as a table; import, rename, delete, set default
dialogs.py        class names, preprocessing and the details of a model
jobs.py           export and familiarity data, each in a worker
export_dialog.py  Export…: format and file
"""
