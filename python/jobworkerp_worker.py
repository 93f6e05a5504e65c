"""Child side of jobworkerp-ts's SUPERVISED_PROCESS runner (one file, standard library only, Python 3.8+).

Load what is expensive once, at import time, then hand a handler to ``run``::

    import jobworkerp_worker as jw

    model = load_model()              # runs once per child process

    def handle(args, ctx):            # args: the job's JSON payload (dict, list, str, ... or None)
        if "text" not in args:
            raise jw.NoRetry("text is required")   # failed, and never retried
        return {"label": model(args["text"])}      # any JSON-serialisable value

    jw.run(handle)

``run`` prints the ready line, then reads one job per line on stdin and writes one answer per line on stdout
(protocol: worker-container/src/runners/supervised/protocol.ts). While it runs, ``sys.stdout`` is redirected
to stderr, so a stray ``print`` ends up in the worker's log instead of corrupting the protocol. An exception
fails the job as retryable (per the worker's retry policy); ``NoRetry`` fails it for good. The loop ends when
stdin closes (the worker stops the child, or ONE_SHOT mode after its one job).

The runner's python mode puts this file's directory on PYTHONPATH; elsewhere, copy the file next to your script.
"""

import json
import sys

__all__ = ["run", "NoRetry", "Context"]


class NoRetry(Exception):
    """Fail the job with no retry, whatever the worker's retry policy."""


class Context(object):
    """What the job carries besides its args."""

    __slots__ = ("job_id", "retried", "max_retry", "channel", "using", "_send")

    def __init__(self, job, send):
        self.job_id = job.get("job_id")
        self.retried = job.get("retried", 0)
        self.max_retry = job.get("max_retry", 0)
        self.channel = job.get("channel", "")
        self.using = job.get("using", "run")
        self._send = send

    def no_retry(self):
        """Declare now that this job must not be retried even if this process dies before answering
        (call it before a side effect that must not happen twice)."""
        self._send({"job_id": self.job_id, "retry": False})


def run(handler, ready=None):
    """Serve jobs with ``handler(args, ctx)`` until stdin closes. ``ready``: the ready line to print, when the
    worker's settings name one (default ``{"ready": true}``)."""
    out = sys.stdout.buffer
    sys.stdout = sys.stderr
    stdin = sys.stdin.buffer

    def write_line(text):
        out.write(text.encode("utf-8") + b"\n")
        out.flush()

    def send(obj):
        write_line(json.dumps(obj))

    write_line(ready if ready is not None else json.dumps({"ready": True}))
    while True:
        raw = stdin.readline()
        if not raw:
            return
        raw = raw.strip()
        if not raw:
            continue
        try:
            job = json.loads(raw.decode("utf-8"))
        except ValueError as e:
            print("jobworkerp_worker: ignored a line that is not JSON: %s" % e, file=sys.stderr)
            continue
        ctx = Context(job, send)
        try:
            result = handler(job.get("args"), ctx)
        except NoRetry as e:
            send({"job_id": ctx.job_id, "error": str(e) or "NoRetry", "retry": False})
            continue
        except Exception as e:  # noqa: BLE001 - every failure of user code becomes the job's error
            import traceback  # only when needed: a ONE_SHOT process pays every import on every job

            traceback.print_exc(file=sys.stderr)
            send({"job_id": ctx.job_id, "error": "%s: %s" % (type(e).__name__, e), "retry": True})
            continue
        try:
            text = json.dumps({"job_id": ctx.job_id, "result": result}, allow_nan=False)
        except (TypeError, ValueError) as e:
            # the same result would fail again: no retry
            send({"job_id": ctx.job_id, "error": "result is not JSON-serialisable: %s" % e, "retry": False})
            continue
        write_line(text)
