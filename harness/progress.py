"""One live status line for a Tune run (``gansweep run``, ``reproduce``, ``search``), instead of Ray's
status tables every 30 s, which scroll a grid of a hundred trials off the screen and say nothing about
the stage cache or the time left::

    trials 3/12 done, 2 running, 7 pending | 1m02s elapsed, ~3m10s left | stages 4 computed, 6 reused

On a terminal the line is rewritten in place; in a log (CI, nohup: stdout is not a TTY) a full line is
printed at most every 30 s and on each trial's end, so the log reads as a history, not as one line with
a thousand carriage returns. ``-v`` shows Ray's own tables instead (harness.launch).

The time left is "?" until a trial finished (before that there is no cost per trial to go on), and
while every trial left has run longer than the finished ones took.
"""

from __future__ import annotations

import math
import shutil
import sys
import time

from ray.tune import Callback

from harness import metrics as M

LOG_INTERVAL_S = 30.0  # a full line in a log at most this often (Ray's own reporter used 30 s too)
TTY_INTERVAL_S = 1.0  # redraws of the live line (Tune steps every ~0.1 s: no need to draw that often)
# A line for a trial's end waits (at most this long) for Tune to start a pending trial in its slot: printed at
# once, it read "1 running" while both cores ran trials (seen on 2 cores, 2026-12-02).
SETTLE_S = 2.0


def duration(seconds: float) -> str:
    """``45s``, ``3m10s``, ``2h05m``: short enough for one line, exact enough for a wait."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def eta_s(mean_s: float | None, running_ages: list[float], pending: int, slots: int) -> float | None:
    """Seconds until every trial is done; None while no trial has finished (no cost to go on), and when
    every trial left has run longer than the mean already (no basis either: "~0s left" for minutes).

    Each running trial needs what is left of the mean finished trial's wall time (none once it is past
    the mean), each pending trial the whole mean; the work is shared by the trials that can run at once:
    the slots, but no more than the trials left. No trial's part can be shared, so the longest running
    trial's rest, and a whole mean while some trial is pending, are floors."""
    if mean_s is None:
        return None
    rests = [max(mean_s - age, 0.0) for age in running_ages]
    left = len(running_ages) + pending
    if left == 0:
        return 0.0
    work = sum(rests) + pending * mean_s
    if work == 0:
        return None
    return max(work / max(1, min(slots, left)), max(rests, default=0.0), mean_s if pending else 0.0)


def status_parts(total: int, done: int, running: int, failed: int, computed: int, reused: int,
                 elapsed_s: float, eta: float | None) -> list[str]:
    """The status line's parts, most wanted first: trials, time, stages. ``failed`` only when some trial
    failed; the time left only while some trial is not done."""
    pending = max(0, total - done - running - failed)
    trials = f"trials {done}/{total} done, {running} running, {pending} pending"
    trials += f", {failed} failed" if failed else ""
    # rounded up: "~0s left" read as "done" while trials were still pending
    left = "" if done + failed >= total else ", ? left" if eta is None else f", ~{duration(math.ceil(eta))} left"
    return [trials, f"{duration(elapsed_s)} elapsed{left}", f"stages {computed} computed, {reused} reused"]


def fit(parts: list[str], width: int | None = None) -> str:
    """The parts joined by `` | ``; within ``width`` (a terminal's: a wrapped line cannot be rewritten in
    place), the parts that do not fit are left out whole, last first."""
    text = " | ".join(parts)
    while width is not None and len(text) > width and len(parts) > 1:
        parts = parts[:-1]
        text = " | ".join(parts)
    return text if width is None else text[:width]


def finished(trial) -> bool:
    """Whether a trial ran to its end. Not Tune's TERMINATED alone: on Ctrl-C Tune's clean-up marks the
    running trials TERMINATED too, and the last line read "trials 117/117 done, 0 running, 0 pending" above
    gansweep's exit line naming 69 unfinished ones (seen 2026-12-02). A trial that ended (or that a scheduler
    stopped) has ``done`` set in its last result, also when it was restored from an earlier run; a stopped one
    does not (checked with Ray 2.60: ``done`` False, or no result at all)."""
    return trial.status == "TERMINATED" and bool((trial.last_result or {}).get("done"))


def slots(cpus_per_trial: float, gpus_per_trial: float) -> int:
    """How many trials the connected Ray cluster runs at once (by CPUs, and by GPUs when trials use them)."""
    import ray

    have = ray.cluster_resources()
    fits = [have.get("CPU", 0) / cpus_per_trial]
    if gpus_per_trial > 0:
        fits.append(have.get("GPU", 0) / gpus_per_trial)
    return max(1, math.floor(min(fits) + 1e-9))


class Progress(Callback):
    """Tune callback printing the status line (see the module docstring for when).

    ``total``: the trials this experiment will run (a search creates its trials one by one, so Tune's
    list is short of it until the end); None: what Tune says (a restored experiment's own count).

    NOTE: Tune pickles its callbacks with the experiment (tuner.pkl), so this holds no stream: it
    writes to whatever ``sys.stdout`` is when it prints."""

    def __init__(self, total: int | None, slots: int, clock=time.monotonic):
        self.total = total or 0
        self.slots = slots
        self.clock = clock
        self.tty = None
        self.start = None
        self.started: dict[str, float] = {}  # trial id -> when it started here
        self.took: dict[str, float] = {}  # trial id -> its wall time, start to end, seen here
        self.last_print = -math.inf
        self.width = 0  # of the last line drawn on a TTY, to blank what a shorter one leaves
        self.ended: float | None = None  # when the first trial ended since the last print
        self.shown = None  # the trial counts of the last line printed

    def setup(self, stop=None, num_samples=None, total_num_samples=None, **info):
        self.total = max(self.total, total_num_samples or 0)
        self.tty = sys.stdout.isatty()
        self.start = self.clock()

    def on_trial_start(self, iteration, trials, trial, **info):
        self.started[trial.trial_id] = self.clock()

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._end(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._end(trial)

    def on_step_end(self, iteration, trials, **info):
        now = self.clock()
        if self.ended is not None and (self._refilled(trials) or now - self.ended >= SETTLE_S):
            self._print(trials, now)  # a trial's end, once its slot went to a pending trial (or none came)
        elif now - self.last_print >= (TTY_INTERVAL_S if self.tty else LOG_INTERVAL_S):
            self._print(trials, now)

    def _refilled(self, trials) -> bool:
        """Every slot runs a trial, or no trial waits for one."""
        done, running, failed = self._counts(trials)
        return running >= min(self.slots, max(self.total, len(trials)) - done - failed)

    def on_experiment_end(self, trials, **info):
        if self.tty or self._counts(trials) != self.shown:  # a log has the last line already
            self._print(trials, self.clock())
        if self.tty:
            sys.stdout.write("\n")
            sys.stdout.flush()

    def _end(self, trial) -> None:
        if trial.trial_id in self.started:
            self.took[trial.trial_id] = self.clock() - self.started.pop(trial.trial_id)
        if self.ended is None:
            self.ended = self.clock()

    def _counts(self, trials) -> tuple[int, int, int]:
        status = [t.status for t in trials]
        return sum(map(finished, trials)), status.count("RUNNING"), status.count("ERROR")

    def parts(self, trials, now: float) -> list[str]:
        done, running, failed = self._counts(trials)
        total = max(self.total, len(trials))
        took = [self._took(t) for t in trials if finished(t)]
        took = [s for s in took if s is not None]
        mean = sum(took) / len(took) if took else None
        ages = [now - self.started.get(t.trial_id, now) for t in trials if t.status == "RUNNING"]
        eta = eta_s(mean, ages, max(0, total - done - running - failed), self.slots)
        results = [t.last_result or {} for t in trials]
        computed = sum(int(r.get(M.STAGES_COMPUTED) or 0) for r in results)
        reused = sum(int(r.get(M.STAGES_REUSED) or 0) for r in results)
        return status_parts(total, done, running, failed, computed, reused, now - (self.start or now), eta)

    def _took(self, trial) -> float | None:
        """Its wall time seen here; for a trial that finished before a resume, what Tune recorded."""
        if trial.trial_id in self.took:
            return self.took[trial.trial_id]
        return (trial.last_result or {}).get("time_total_s")

    def _print(self, trials, now: float) -> None:
        parts = self.parts(trials, now)
        if self.tty:
            text = fit(parts, max(20, shutil.get_terminal_size().columns - 1))
            sys.stdout.write("\r" + text.ljust(self.width))
            self.width = len(text)
        else:
            sys.stdout.write(fit(parts) + "\n")
        sys.stdout.flush()
        self.last_print, self.ended, self.shown = now, None, self._counts(trials)
