"""A batch fanned out over many build machines, through Celery with Redis as broker and backend.

The embedded default (:class:`rebuild.batch.LocalPool`) needs no server; this sub-package is the
other executor. It is the only place that imports celery, and it is imported only when a batch
is given ``--broker`` or ``rebuild worker`` runs (extra ``distributed``):

- :mod:`.app`: the Celery application and its settings (late acks, rejection on a lost worker,
  one message prefetched per process, a visibility timeout beyond the longest task, JSON only).
- :mod:`.capabilities`: what a worker can build, as the queues it consumes.
- :mod:`.tasks`: the one task, the verification of one release; its payload and result.
- :mod:`.coordinator`: the executor a batch runs on: sends, follows, resumes, times out.
- :mod:`.worker`: ``rebuild worker``: checks the machine, announces it, consumes.
"""
