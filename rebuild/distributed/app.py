"""The Celery application of rebuild, configured for builds that take minutes and must be
neither lost nor done twice.

- A message is acknowledged after its task ran (``acks_late``), and put back when the process
  running it died (``task_reject_on_worker_lost``): a worker killed mid-build loses nothing.
- Each pool process holds one message at a time (``worker_prefetch_multiplier = 1``): a long
  build does not sit on messages other workers could take.
- With Redis, a message not acknowledged within the *visibility timeout* is delivered again,
  even if its worker is still building: the timeout is set beyond the longest a task may run
  (the build's ``--timeout`` and the set-up's), which the task's hard time limit enforces.
- JSON is the only serializer accepted: a message never carries pickled code.
"""

from __future__ import annotations

import contextlib
from typing import Any

import redis.exceptions
from celery import Celery
from kombu.exceptions import OperationalError

from rebuild.credentials import keep_secret_of, redact
from rebuild.errors import DistributedError

TASK_NAME = "rebuild.verify"
RESULT_TTL_S = 7 * 24 * 3600  # results (and the tickets naming them) kept for a week
CONNECT_TIMEOUT_S = 5.0
SOCKET_TIMEOUT_S = 30.0
DEFAULT_SETUP_S = 600.0
# What a lost or refusing broker raises, through kombu (the broker) or redis-py (the backend).
BROKER_FAILURES = (
    OperationalError,
    OSError,
    redis.exceptions.RedisError,
)  # downloads and build environment, before the build's own timeout


def task_time_limit(timeout_s: float, setup_s: float) -> float:
    """The longest one verification may take on a worker: its set-up, then its build."""
    return timeout_s + setup_s


def visibility_timeout(timeout_s: float, setup_s: float) -> int:
    """Seconds before Redis gives an unacknowledged message to another worker: beyond the
    task's hard time limit, so a task still running is never delivered twice."""
    limit = task_time_limit(timeout_s, setup_s)
    return int(limit + max(30.0, 0.1 * limit)) + 1


def make_app(broker: str, *, timeout_s: float, setup_s: float = DEFAULT_SETUP_S) -> Celery:
    """The application for ``broker`` (a ``redis://`` or ``rediss://`` URL), also its backend."""
    if not broker.startswith(("redis://", "rediss://", "unix://")):
        raise DistributedError(
            f"{keep_secret_of(broker)!r} is not a Redis URL",
            hint="give --broker redis://[:PASSWORD@]HOST:6379/0 (rediss:// with TLS)",
        )
    vt = visibility_timeout(timeout_s, setup_s)
    transport: dict[str, Any] = {
        "visibility_timeout": vt,
        # Sweep for messages of dead workers often enough to matter at this timeout.
        "unacked_restore_interval": max(1, min(10, vt // 6)),
        "unacked_restore_throttle": 1,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "socket_timeout": SOCKET_TIMEOUT_S,
        "socket_keepalive": True,
        "health_check_interval": 25,
    }
    app = Celery("rebuild", broker=broker, backend=broker, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,  # a task over its time limit fails, once
        worker_prefetch_multiplier=1,
        task_track_started=True,  # the coordinator shows what runs, and where
        task_time_limit=task_time_limit(timeout_s, setup_s),
        result_expires=RESULT_TTL_S,
        broker_transport_options=transport,
        result_backend_transport_options=transport,
        redis_socket_connect_timeout=CONNECT_TIMEOUT_S,
        redis_socket_timeout=SOCKET_TIMEOUT_S,
        redis_backend_health_check_interval=25,
        broker_connection_timeout=CONNECT_TIMEOUT_S,
        broker_connection_retry_on_startup=True,
        task_create_missing_queues=True,
        task_default_queue="rebuild.default",
        worker_send_task_events=False,
        worker_enable_remote_control=True,
        broker_channel_error_retry=True,
    )
    return app


def check_broker(app: Celery, *, retries: int = 2) -> None:
    """Return once the broker answers; else a DistributedError within a few seconds."""
    shown = keep_secret_of(str(app.conf.broker_url))
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(
                max_retries=retries,
                interval_start=0.5,
                interval_step=0.5,
                timeout=CONNECT_TIMEOUT_S,
            )
            # The result backend is the same server, reached by its own client: ask it too
            # (a wrong password shows here, not in the connection above).
            app.backend.client.ping()
    except BROKER_FAILURES as e:
        if _refused(e):
            raise DistributedError(
                f"the broker {shown} refused the credentials: {redact(str(e))}",
                hint="is the password in the URL right (redis://:PASSWORD@HOST:6379/0)?",
            ) from e
        raise DistributedError(
            f"the broker {shown} does not answer: {redact(str(e))}",
            hint="is redis-server running there and reachable from here (host, port, firewall)? "
            "is the password in the URL right?",
        ) from e


def _refused(error: BaseException | None) -> bool:
    """Whether a failure (kombu wraps redis-py's) is the server refusing the credentials."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, redis.exceptions.AuthenticationError):
            return True
        if isinstance(error, redis.exceptions.ResponseError) and str(error).startswith(
            ("NOAUTH", "WRONGPASS")
        ):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def close(app: Celery) -> None:
    """Close the application's connections (a coordinator that is done)."""
    with contextlib.suppress(*BROKER_FAILURES):
        app.close()
