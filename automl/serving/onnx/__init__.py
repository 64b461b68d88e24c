"""ONNX graphs of fitted members: scikit-learn estimators, tree ensembles written from their models, networks.
"""
