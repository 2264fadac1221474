"""Inference: from image files to answers, with no PyTorch (an import-linter contract says so).

prediction.py   Prediction, the one rule for sure / not sure / unfamiliar / error, and the CSV
predictor.py    Predictor: one image or many in batches, over a backend that runs the network
batches.py      decoding many files for a model in threads, ahead of it
onnx_graph.py   the network as an ONNX graph built from numpy weights: BatchNorm folded, normalisation inside
ort_backend.py  that graph in ONNX Runtime on the CPU (the default engine)
graph_cache.py  built graphs kept in the app's cache folder, by the weights they are built from
int8.py         the int8 version of a model: built, verified against fp32, kept only when it agrees
calibration.py  temperature scaling and reliability bins
familiarity.py  "unlike anything I was trained on": distances in the penultimate features
cam.py          why the model answered: the class activation map of the last stage
"""
