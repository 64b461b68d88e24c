"""What the engine knows, used for a search: the warm start (suggestions and priors from the knowledge base),
the write-back of every search, and the build of a knowledge base from a corpus.

The learned starters themselves live in :mod:`metaknowledge`, which knows nothing of the engine.
"""
