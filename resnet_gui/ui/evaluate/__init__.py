"""The Evaluate tab: how good is a model, really?

tab.py                    the tab: model, data, results
session.py                the tab's work without widgets
figure_cards.py           headline figures
confusion_matrix_view.py  the confusion matrix (a click shows a cell's images)
image_gallery.py          the images of a cell
per_class_table.py        precision, recall, F1 and support per class
reliability_plot.py       the reliability diagram
curves_panel.py           each class's precision-recall and ROC curves, and its own threshold
export.py                 an evaluation written as CSV files and a PNG of the matrix
"""
