"""What a search did, shown: the HTML report, its plots, feature and hyperparameter importance.
"""
