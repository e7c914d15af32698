"""Progress of long runs, on stderr (data goes to stdout): what runs now and about how long is
left. On a terminal, one line rewritten in place and cleared at the end; when stderr is not a
terminal (a log, CI), plain lines, at most one every ``every`` seconds, so a run shorter than
that writes nothing and a long one leaves a readable trail."""
from __future__ import annotations

import sys
import time

__all__ = ["Progress", "PLAIN_EVERY_S"]

PLAIN_EVERY_S = 5.0  # seconds between two plain lines (stderr not a terminal)
WIDTH = 79


class Progress:
    """Two ways to drive it:

    - ``step(detail)`` after each of ``total`` steps: "what 3/8 ~12 s left: detail", the time
      left estimated from the steps so far (the probes: one step per cell);
    - ``update(text)`` with ``seconds=True`` and ``total`` the expected run time in seconds:
      "text (about 40 s left)" (the inference driver: one call per phase and poll).

    ``enabled``: None (the default) shows progress, in place on a terminal and as plain lines
    otherwise; False shows nothing (``--quiet``)."""

    def __init__(self, total: float, what: str = "", enabled: bool | None = None, *,
                 seconds: bool = False, every: float = PLAIN_EVERY_S):
        self.total, self.what, self.done = total, what, 0
        self.seconds, self.every = seconds, every
        self.enabled = enabled is not False
        self.t0 = time.monotonic()
        self._last = self.t0      # when the last plain line was written (the start at first)
        self._live = False        # a line on the terminal that close() must clear

    def step(self, detail: str = "") -> None:
        """One more of ``total`` steps is done."""
        self.done += 1
        if not self.enabled:
            return
        left = (time.monotonic() - self.t0) / self.done * (self.total - self.done)
        eta = f" ~{left:.0f} s left" if self.done < self.total else ""
        detail = f": {detail}" if detail else ""
        self._show(f"{self.what} {self.done}/{self.total}{eta}{detail}")

    def update(self, text: str, frac: float | None = None) -> None:
        """What runs now (``frac``, the part of it done, is accepted and not shown)."""
        if not self.enabled:
            return
        if self.seconds:
            left = max(0.0, self.total - (time.monotonic() - self.t0))
            text = f"{text} (about {left:.0f} s left)"
        self._show(text)

    __call__ = update

    def close(self) -> None:
        if self._live:
            print("\r" + " " * WIDTH + "\r", end="", file=sys.stderr, flush=True)
            self._live = False

    def _show(self, line: str) -> None:
        stream = sys.stderr  # looked up each time: a redirected stderr is honoured
        if _is_terminal(stream):
            print(f"\r{line}"[:WIDTH + 1].ljust(WIDTH + 1), end="", file=stream, flush=True)
            self._live = True
            return
        now = time.monotonic()
        if now - self._last >= self.every:
            print(line, file=stream, flush=True)
            self._last = now


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False
