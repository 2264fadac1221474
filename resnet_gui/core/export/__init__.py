"""Export: a model as ONNX or TorchScript for other programs.

exporter.py    the export itself, loaded back and checked against PyTorch
model_card.py  the Markdown card written next to the exported file
"""
