"""Real serving: the models, a Ray Serve model server pinned to given cores, an open-loop load
generator, and the profiler that measures a capacity profile on this machine
(``infadapter profile``; ``infadapter_env.serving.profiler``).

Needs the ``serve`` extra (``pip install 'infadapter-gym[serve]'``: Ray Serve) and torch.
"""
