"""Early exits added to a trained model (`ariel augment`): at tensors where the backbone is
a single activation (candidates.py), small heads trained on the host on onnxruntime's
features (features.py, heads.py) are written into the model as extra outputs (surgery.py),
described by a JSON sidecar (sidecar.py); pipeline.py runs the steps."""
