"""Inference: from image files to answers.

batches.py      decoding many files for a model in threads, ahead of it (no torch)
predictor.py    Predictor: one image or many in batches; the Prediction record; CSV
calibration.py  temperature scaling and reliability bins
familiarity.py  "unlike anything I was trained on": distances in the penultimate features
gradcam.py      why the model answered: Grad-CAM at the last residual stage
onnx_graph.py   the network as an ONNX graph built from numpy weights (no torch): folded, normalisation inside
"""
