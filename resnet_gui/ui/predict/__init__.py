"""The Predict tab: choose a model and an image (button, drop, paste, sample) or a folder; see the answer.

tab.py                  the tab: model chooser, actions, the two views
session.py              the tab's work without widgets: load the model, classify one image or a folder
single_image_view.py    one image and its answer (sure, not sure, unfamiliar)
folder_results_view.py  a folder's answers as a sortable, filterable table, filled as they come
results_table.py        one answer as a table row, and the table
answer.py               the answer in words
model_cache.py          predictors cached per file and purpose
heatmap.py              the heat map laid over the image
"""
