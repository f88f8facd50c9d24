"""The job every executor runs: `python -m experiments.cli resume RUN_DIR` in a child
process, watched by a picklable, checkpointable callable that submitit executes.

Preemption and time limits (submitit's protocol, submitit.helpers.Checkpointable): before
the time limit (launch.signal_delay_s) or on preemption, submitit's signal handler in
the job process calls `RunJob.checkpoint()`. It forwards SIGTERM to the child, whose
stop flag (experiments.runner) writes the run's own checkpoint at the current step and
exits with 130; then it returns a `DelayedSubmission` of a fresh `RunJob` on the same
run directory, which submitit requeues (SLURM: `scontrol requeue`; local: the controller
restarts it). The requeued job resumes the run directory from that checkpoint, so the
draws are those of an uninterrupted run (bit for bit on CPU). The child also stops
cleanly when SLURM signals it directly (SIGTERM or USR2 to every process of the job).

The child is reaped with `os.waitpid`, never `Popen.wait`: the signal handler runs
while the main loop may be inside a wait, and Popen's wait lock is not reentrant.

Standard library only at import (the job process never imports torch; submitit is
imported by `checkpoint`, which runs only under submitit).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from experiments.launch import records

POLL_SECONDS = 0.2
INTERRUPTED_EXIT_CODE = 130  # experiments.runner: checkpointed and stopped on a signal


class RunFailed(RuntimeError):
    """The run exited with an error; the message is its last error line."""


class RunJob:
    """Sample (or resume) the run in `run_dir` in a child process.

    `report`: write the run's own report at the end (False for a shard, whose posterior
    is reported merged). `threads`: OMP_NUM_THREADS of the child (0: inherit).
    """

    def __init__(self, run_dir: str, report: bool = True, threads: int = 0):
        self.run_dir = str(run_dir)
        self.report = bool(report)
        self.threads = int(threads)
        self._child: subprocess.Popen | None = None
        self._exit_code: int | None = None

    def __getstate__(self) -> dict:
        return {"run_dir": self.run_dir, "report": self.report, "threads": self.threads}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "experiments.cli", "resume", self.run_dir,
                "--executor", "inline", *([] if self.report else ["--no-report"])]

    def _environment(self) -> dict:
        env = dict(os.environ)
        env["TQDM_DISABLE"] = "1"  # no progress bar in job.log (status gives the rate)
        if self.threads > 0:
            env["OMP_NUM_THREADS"] = str(self.threads)
        return env

    def _reap(self, block: bool) -> int | None:
        if self._exit_code is not None or self._child is None:
            return self._exit_code
        try:
            pid, status = os.waitpid(self._child.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:  # reaped by the other caller (main loop or handler)
            return self._exit_code
        if pid == 0:
            return None
        self._exit_code = os.waitstatus_to_exitcode(status)
        self._child.returncode = self._exit_code  # keep Popen's bookkeeping consistent
        return self._exit_code

    def _stop_child(self) -> int | None:
        """SIGTERM to the child (it checkpoints and exits); wait for it."""
        if self._child is None:
            return None
        if self._reap(block=False) is None:
            try:
                self._child.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        return self._reap(block=True)

    def __call__(self) -> dict:
        run_dir = Path(self.run_dir)
        directory = records.launch_dir(run_dir)
        progress = records.checkpoint_progress(run_dir)
        records.append_event(run_dir, "start", pid=os.getpid(), host=os.uname().nodename,
                             job_id=_submitit_job_id(),
                             cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
                             step=None if progress is None else progress[0])
        with open(directory / records.LOG_FILE, "a") as log:
            log.write(f"=== attempt {time.strftime('%Y-%m-%dT%H:%M:%S')} on "
                      f"{os.uname().nodename}: {' '.join(self.command())}\n")
            log.flush()
            self._child = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                           env=self._environment())
            try:
                code = self._reap(block=False)
                while code is None:
                    time.sleep(POLL_SECONDS)
                    code = self._reap(block=False)
            except BaseException:  # KeyboardInterrupt or submitit's exit: stop the run cleanly
                self._stop_child()
                raise
        error = None
        if code not in (0, INTERRUPTED_EXIT_CODE):
            error = records.last_error_line(run_dir) or (
                f"killed by signal {-code}" if code < 0 else f"exit code {code}")
        records.append_event(run_dir, "end", exit_code=code, error=error)
        if error is not None:
            raise RunFailed(f"{run_dir}: exit code {code}: {error}")
        return {"run_dir": self.run_dir, "exit_code": code,
                "status": "completed" if code == 0 else "interrupted"}

    def checkpoint(self, *args, **kwargs):
        """submitit's hook on timeout/preemption: checkpoint the run, requeue a fresh job."""
        import submitit

        code = self._stop_child()
        progress = records.checkpoint_progress(Path(self.run_dir))
        records.append_event(Path(self.run_dir), "requeue", exit_code=code,
                             step=None if progress is None else progress[0])
        return submitit.helpers.DelayedSubmission(
            RunJob(self.run_dir, report=self.report, threads=self.threads))


def _submitit_job_id() -> str | None:
    """The submitit job id of this process (SLURM array ids as JOB_TASK), if any."""
    for variable in ("SLURM_ARRAY_JOB_ID", "SLURM_JOB_ID", "SUBMITIT_LOCAL_JOB_ID"):
        if variable in os.environ:
            if variable == "SLURM_ARRAY_JOB_ID":
                return f"{os.environ[variable]}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
            return os.environ[variable]
    return None
