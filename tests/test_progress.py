"""The progress line's arithmetic and layout, and when it prints (terminal vs log), without Ray: the
callback is driven by hand with stand-ins for Tune's trials and a fake clock."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness import metrics as M
from harness.progress import Progress, duration, eta_s, fit, status_parts


def test_durations_read_as_a_person_would_say_them():
    assert [duration(s) for s in (0, 44.6, 60, 190, 3599, 3600, 7500)] == \
        ["0s", "45s", "1m00s", "3m10s", "59m59s", "1h00m", "2h05m"]


def test_time_left_is_unknown_until_a_trial_finished():
    assert eta_s(None, [5.0], 10, 2) is None


def test_time_left_shares_the_work_among_the_slots():
    # 10 s per trial; two running for 4 s (6 s left each), 4 pending: (6 + 6 + 40) / 2 slots = 26 s
    assert eta_s(10.0, [4.0, 4.0], 4, 2) == pytest.approx(26.0)
    # more slots than trials left: only the 3 trials left run at once
    assert eta_s(10.0, [], 3, 8) == pytest.approx(10.0)
    # a running trial past the mean counts as nearly done; the longest rest is a floor
    assert eta_s(10.0, [15.0, 1.0], 0, 2) == pytest.approx(9.0)
    # so is one whole trial while one is pending: 4 slots do not run one trial 4 times faster
    assert eta_s(10.0, [15.0, 15.0, 15.0], 1, 4) == pytest.approx(10.0)
    # every trial left already past the mean: no basis for a guess
    assert eta_s(10.0, [15.0, 12.0], 0, 2) is None
    assert eta_s(10.0, [], 0, 2) == 0.0


def test_the_line_names_trials_time_and_stages():
    parts = status_parts(12, 3, 2, 0, 4, 6, 62, 190)
    assert fit(parts) == ("trials 3/12 done, 2 running, 7 pending | 1m02s elapsed, ~3m10s left "
                          "| stages 4 computed, 6 reused")
    assert "? left" in fit(status_parts(12, 0, 2, 0, 0, 0, 5, None))
    assert "~1s left" in fit(status_parts(12, 3, 2, 0, 0, 0, 5, 0.2))  # never "~0s" while trials are left
    failed = fit(status_parts(4, 2, 0, 2, 1, 1, 30, None))  # all ended: no time left shown
    assert failed.startswith("trials 2/4 done, 0 running, 0 pending, 2 failed | 30s elapsed |")


def test_a_narrow_terminal_loses_whole_parts_from_the_end():
    parts = status_parts(12, 3, 2, 0, 4, 6, 62, 190)
    assert fit(parts, 80) == "trials 3/12 done, 2 running, 7 pending | 1m02s elapsed, ~3m10s left"
    assert fit(parts, 20) == "trials 3/12 done, 2 "


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _trial(trial_id, status, computed=0, reused=0):
    return SimpleNamespace(trial_id=trial_id, status=status,
                           last_result={M.STAGES_COMPUTED: computed, M.STAGES_REUSED: reused})


def _ends(*trials):
    """As Tune marks a trial that ran to its end: TERMINATED, ``done`` in its last result."""
    for t in trials:
        t.status = "TERMINATED"
        t.last_result = {**t.last_result, "done": True}


def test_in_a_log_a_line_comes_every_30_s_and_on_each_trial_end(capsys):
    clock = Clock()
    progress = Progress(total=3, slots=2, clock=clock)
    progress.setup(total_num_samples=3)  # capsys's stdout is not a TTY
    a, b, c = _trial("a", "RUNNING", 1), _trial("b", "RUNNING"), _trial("c", "PENDING")
    progress.on_trial_start(0, [a, b, c], a)
    progress.on_trial_start(0, [a, b, c], b)
    progress.on_step_end(1, [a, b, c])  # the first line at once
    clock.now += 10
    progress.on_step_end(2, [a, b, c])  # 10 s later: nothing
    clock.now += 10
    progress.on_trial_complete(3, [a, b, c], a)
    _ends(a)
    progress.on_step_end(3, [a, b, c])  # a trial ended, its slot not given to c yet: no line ("1 running")
    clock.now += 0.5
    progress.on_trial_start(4, [a, b, c], c)
    c.status = "RUNNING"
    progress.on_step_end(4, [a, b, c])  # c took the slot: the line for a's end
    clock.now += 31
    progress.on_step_end(5, [a, b, c])  # 31 s since the last: a line
    _ends(b, c)
    progress.on_experiment_end([a, b, c])
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "trials 0/3 done, 2 running, 1 pending | 0s elapsed, ? left | stages 1 computed, 0 reused",
        # a took 20 s; b has run 20.5 s (0 left); c has just started and needs a whole 20 s
        "trials 1/3 done, 2 running, 0 pending | 20s elapsed, ~20s left | stages 1 computed, 0 reused",
        # both running trials are past the mean: no estimate
        "trials 1/3 done, 2 running, 0 pending | 52s elapsed, ? left | stages 1 computed, 0 reused",
        "trials 3/3 done, 0 running, 0 pending | 52s elapsed | stages 1 computed, 0 reused"]
    # the last line is not printed twice when nothing changed
    progress.on_experiment_end([a, b, c])
    assert capsys.readouterr().out == ""


def test_a_trial_end_whose_slot_stays_empty_is_shown_after_a_moment(capsys):
    """No pending trial takes the freed slot (e.g. one waits for a resource): the line comes SETTLE_S later."""
    from harness.progress import SETTLE_S

    clock = Clock()
    progress = Progress(total=3, slots=2, clock=clock)
    progress.setup(total_num_samples=3)
    a, b, c = _trial("a", "RUNNING"), _trial("b", "RUNNING"), _trial("c", "PENDING")
    progress.on_step_end(1, [a, b, c])
    capsys.readouterr()
    clock.now += 5
    progress.on_trial_complete(2, [a, b, c], a)
    _ends(a)
    progress.on_step_end(2, [a, b, c])
    clock.now += SETTLE_S / 2
    progress.on_step_end(3, [a, b, c])
    assert capsys.readouterr().out == ""
    clock.now += SETTLE_S / 2
    progress.on_step_end(4, [a, b, c])
    assert capsys.readouterr().out.startswith("trials 1/3 done, 1 running, 1 pending | 7s elapsed")


def test_on_a_terminal_the_line_is_rewritten_in_place(capsys):
    clock = Clock()
    progress = Progress(total=2, slots=1, clock=clock)
    progress.setup(total_num_samples=2)
    progress.tty = True
    a, b = _trial("a", "RUNNING"), _trial("b", "PENDING")
    progress.on_step_end(1, [a, b])
    clock.now += 0.5
    progress.on_step_end(2, [a, b])  # within a second: not redrawn
    clock.now += 1
    a.status = "ERROR"
    progress.on_trial_error(3, [a, b], a)
    progress.on_step_end(3, [a, b])
    progress.on_experiment_end([a, b])
    out = capsys.readouterr().out
    assert out.count("\r") == 3 and out.endswith("\n") and out.count("\n") == 1
    assert out.split("\r")[2].startswith("trials 0/2 done, 0 running, 1 pending, 1 failed | 2s elapsed, ? left")


def test_trials_stopped_by_ctrl_c_are_not_counted_done(capsys):
    """On Ctrl-C Tune's clean-up marks the running trials TERMINATED without ``done`` (Ray 2.60); the last line
    must still say they are not done (it read "3/3 done" above an exit line naming two unfinished trials)."""
    clock = Clock()
    progress = Progress(total=3, slots=2, clock=clock)
    progress.setup(total_num_samples=3)
    a, b, c = _trial("a", "RUNNING"), _trial("b", "RUNNING"), _trial("c", "PENDING")
    progress.on_trial_start(0, [a, b, c], a)
    progress.on_trial_start(0, [a, b, c], b)
    clock.now += 10
    progress.on_trial_complete(1, [a, b, c], a)
    _ends(a)
    b.status = "TERMINATED"  # stopped by the clean-up: its last result is a mid-run epoch's
    c.status, c.last_result = "TERMINATED", None  # never started
    progress.on_experiment_end([a, b, c])
    assert capsys.readouterr().out.startswith("trials 1/3 done, 0 running, 2 pending | 10s elapsed")
