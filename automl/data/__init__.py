"""Data: reading tables and other sources, the feature schema, column kinds (dates, text, IDs), the task.

The first stage of the data flow; it knows nothing of learners or searches.
"""
