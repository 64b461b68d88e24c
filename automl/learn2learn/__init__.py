"""Learning to learn: task series, Omniglot, the meta-learners, meta-training, its meta-hyperparameter search,
and fit's start from a meta-learned network.
"""
