"""``rebuild worker``: a build machine that takes releases from the broker and verifies them.

Before it consumes anything the worker checks that it can build: a Docker engine that answers
and the build images present (``rebuild image ensure --all`` makes them), then that the broker
answers. It announces what it can build (architecture, Python versions, images) and consumes
exactly the queues of those images (:mod:`.capabilities`), ``concurrency`` releases at a time,
each in its own pool process, so that a build that kills its process loses only its own task,
which Celery puts back.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence

from rebuild.credentials import keep_secret_of
from rebuild.distributed import app as app_module
from rebuild.distributed import capabilities, tasks
from rebuild.errors import DistributedError


def serve(
    broker: str,
    *,
    concurrency: int,
    settings: tasks.WorkerSettings,
    setup_s: float = app_module.DEFAULT_SETUP_S,
    images: Sequence[str] = (),
    name: str | None = None,
    say: Callable[[str], None] = lambda _: None,
    loglevel: str = "INFO",
) -> None:
    """Check this machine and the broker, then consume until stopped (SIGTERM, Ctrl-C)."""
    if concurrency < 1:
        raise DistributedError(f"--concurrency must be at least 1, not {concurrency}")
    if settings.artifacts is not None and not settings.artifacts.is_dir():
        raise DistributedError(
            f"--artifacts {settings.artifacts} is not a directory",
            hint="give a directory every worker and the coordinator see at the same path "
            "(a network file system)",
        )
    can = capabilities.this_machine(images)
    app = app_module.make_app(broker, timeout_s=settings.timeout_s, setup_s=setup_s)
    app_module.check_broker(app)
    tasks.register(app, settings)
    hostname = name or f"rebuild-{os.getpid()}@{socket.gethostname()}"
    say(f"worker {hostname} on {keep_secret_of(broker)}: {can.describe()}")
    say(f"queues: {', '.join(can.queues)}")
    say(
        f"builds of up to {settings.timeout_s:.0f} s, {concurrency} at a time; a task not "
        f"acknowledged for {app_module.visibility_timeout(settings.timeout_s, setup_s)} s goes "
        "to another worker"
    )
    app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            "--pool=prefork",
            f"--queues={','.join(can.queues)}",
            f"--hostname={hostname}",
            f"--loglevel={loglevel}",
            # No start-up exchange with other workers: nothing of theirs is needed here.
            "--without-gossip",
            "--without-mingle",
        ]
    )
