"""jpegbench._progress: the one policy for progress bars (terminal or not, JPEGBENCH_PROGRESS, progress=False)."""

from __future__ import annotations

import io
import sys

import pytest

from jpegbench._progress import ENV_VAR, progress_bar, show_progress


class Stream(io.StringIO):
    """A stderr stand-in that says whether it is a terminal."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    "tty,env,progress,shown",
    [
        (True, None, True, True),  # a terminal: a bar
        (False, None, True, False),  # redirected: none
        (False, "1", True, True),  # redirected, asked for
        (True, "0", True, False),  # a terminal, turned off
        (True, None, False, False),  # progress=False (--quiet) always wins...
        (False, "1", False, False),  # ...even over the environment
        (True, "yes", True, True),  # other values count as unset
        (False, "yes", True, False),
    ],
)
def test_policy(monkeypatch, tty, env, progress, shown):
    if env is None:
        monkeypatch.delenv(ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(ENV_VAR, env)
    assert show_progress(progress, stream=Stream(tty)) is shown
    monkeypatch.setattr(sys, "stderr", Stream(tty))
    assert show_progress(progress) is shown  # the default stream is the current stderr
    bar = progress_bar(range(3), progress=progress, desc="policy-test", unit="img")
    assert list(bar) == [0, 1, 2]
    bar.close()
    written = sys.stderr.getvalue()
    assert ("policy-test" in written and "3/3" in written) if shown else written == ""


def test_a_stream_without_isatty_or_closed_gets_no_bar(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert show_progress(stream=object()) is False
    closed = io.StringIO()
    closed.close()
    assert show_progress(stream=closed) is False


def test_manual_updates_with_total_and_initial(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "1")
    monkeypatch.setattr(sys, "stderr", Stream(False))
    with progress_bar(total=5, initial=2, desc="resume", unit="img") as bar:
        bar.update(3)
    assert "5/5" in sys.stderr.getvalue()
