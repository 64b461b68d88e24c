"""The torch networks the neural learners train: layers, scikit-learn style estimators, compression.
"""
