"""Readable NumPy references of every op: the oracle of the tests and a learner's first read."""
