import contextlib
import logging
import os
import threading

from celery import Celery, Task, bootsteps, signals

from . import broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webpop.settings")


class WebpopTask(Task):
    """Every webpop task: publishing one that would wait in the broker too long fails (webpop/broker.py).

    Publishing while the broker is unreachable logs and goes on (None instead of a result): the broker
    only wakes workers, the work is on a row that a beat sweep finds again once Redis is back. A page
    that changed something must not fail after its change has been committed.
    """

    def apply_async(self, args=None, kwargs=None, task_id=None, producer=None, link=None, link_error=None, **options):
        from kombu.exceptions import OperationalError as BrokerUnreachable

        broker.check_delay(options, self.app.conf.broker_transport_options)
        try:
            return super().apply_async(args, kwargs, task_id, producer, link, link_error, **options)
        except BrokerUnreachable as exc:
            from .cache import report_unavailable

            report_unavailable(log, "broker", exc)
            return None


app = Celery("webpop", task_cls=WebpopTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

log = logging.getLogger(__name__)


class Heartbeat(bootsteps.StartStopStep):
    """Record ``node name -> last seen`` in the database every WEBPOP_HEARTBEAT_SECONDS (ops/heartbeats.py).

    Runs on the worker's own timer in the main process, so a worker that is busy
    with long syncs in its pool still shows up as alive.
    """

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.tref = None
        # Beats run on the timer's thread, the stop on the worker's: a beat under way when the worker
        # stops must not write "alive" over "stopped", so the two take turns and no beat follows a stop.
        self.lock = threading.Lock()
        self.stopped = False

    def _beat(self, worker, starting: bool = False) -> None:
        from django import db

        from ops import heartbeats

        with self.lock:
            if self.stopped:
                return
            try:
                db.close_old_connections()
                heartbeats.record(
                    worker.hostname, pid=os.getpid(), concurrency=worker.concurrency or 0, starting=starting
                )
            except Exception:  # a missed beat must never stop the worker
                log.exception("could not record the heartbeat of %s", worker.hostname)
                db.close_old_connections()

    def start(self, worker) -> None:
        from ops import heartbeats

        with self.lock:
            self.stopped = False
        self._beat(worker, starting=True)
        self.tref = worker.timer.call_repeatedly(heartbeats.interval(), self._beat, (worker,), priority=10)

    def stop(self, worker) -> None:
        from django import db

        from ops import heartbeats

        with self.lock:
            self.stopped = True
            if self.tref is not None:
                self.tref.cancel()
                self.tref = None
            try:
                heartbeats.record_stopped(worker.hostname, pid=os.getpid())
            except Exception:
                log.exception("could not record that %s stopped", worker.hostname)
            finally:
                db.connections.close_all()

    def terminate(self, worker) -> None:  # a cold shutdown stops the heartbeat the same way
        self.stop(worker)


app.steps["worker"].add(Heartbeat)


class ShutdownNotice(bootsteps.StartStopStep):
    """On a warm shutdown (SIGTERM), tell the pool processes to end their syncs and checks soon.

    Celery's warm shutdown waits for running tasks however long they take; the pool processes get
    ``shutdown.NOTICE`` and stop at a safe point, or are cut off after WEBPOP_SHUTDOWN_GRACE
    (webpop/lib/shutdown.py). The main process takes the request too, for pools without processes.
    """

    requires = {"celery.worker.components:Pool"}

    def start(self, worker) -> None:
        from webpop.lib import shutdown  # imported here: the handler below runs inside a signal handler

        def notify(how: str = "", **_kwargs) -> None:
            if how == "Cold":
                return  # Celery ends the pool processes itself
            shutdown.request()  # in a signal handler: no logging here (its lock may be held)
            for pid in (worker.pool.info or {}).get("processes", []):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, shutdown.NOTICE)

        self.notify = notify  # connected weakly: the step keeps it alive
        signals.worker_shutting_down.connect(notify)


@signals.worker_process_init.connect
def _pool_process_takes_the_stop_notice(**_kwargs) -> None:
    from webpop.lib import shutdown

    shutdown.install()


app.steps["worker"].add(ShutdownNotice)
