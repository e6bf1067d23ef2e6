"""The applications built on the engine: the ``minicnn`` command line (``cli``), the training
loop and checkpointed runs (``train``), the step-through (``trace``), the layer table
(``summary``), pictures (``maps``, ``augment_view``) and the kernel benchmark (``bench``).

They import the engine (``minicnn.tensor``, ``functional``, ``nn``, ``models``, ``optim``,
``data``); the engine never imports them.
"""
