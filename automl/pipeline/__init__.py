"""Pipelines: each learner's preprocessing, the row encoder and the lean prediction path, footprints.

What turns a prepared table into a learner's input, and what a fitted pipeline costs to serve.
"""
