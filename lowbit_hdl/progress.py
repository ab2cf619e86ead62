"""Progress of long steps (simulation, Verilator/Icarus builds, Yosys, deploy-sim batches) on
stderr.

On a terminal a :class:`Reporter` keeps one live line (``\\r``-rewritten, at most every
``live_every`` seconds); otherwise (a log file, CI) it writes a plain line when a step starts,
then at most one every ``every`` seconds, and one when it ends. :meth:`Reporter.ticking` wraps
a blocking call (a compiler, a simulator) in a background thread that reports the elapsed time
and, optionally, a detail read from the running tool (e.g. Yosys's current pass). Standard
library only.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TextIO

__all__ = ["EVERY_S", "Reporter"]

#: seconds between two plain progress lines when stderr is not a terminal
EVERY_S = 10.0


class Reporter:
    """One progress line per step, written to ``out`` (default: stderr).

    Parameters
    ----------
    prefix : str
        Put in front of every line, e.g. ``"[sim]"``.
    out : TextIO, optional
        The stream; ``sys.stderr`` (looked up at each write) when ``None``.
    every : float
        Seconds between plain lines when ``out`` is not a terminal.
    live : bool, optional
        Rewrite one line with ``\\r``; by default when ``out`` is a terminal.
    clock : callable
        Seconds (monotonic); a fake clock in tests.
    live_every : float
        Seconds between two rewrites of the live line.
    """

    def __init__(self, prefix: str, out: TextIO | None = None, every: float = EVERY_S,
                 live: bool | None = None, clock: Callable[[], float] = time.monotonic,
                 live_every: float = 0.2) -> None:
        if every <= 0 or live_every < 0:
            raise ValueError(f"every={every} must be > 0 and live_every={live_every} ≥ 0")
        self.prefix = prefix
        self._out = out
        self.every = every
        self.clock = clock
        self.live_every = live_every
        stream = self.out
        self.live = bool(live) if live is not None else bool(
            getattr(stream, "isatty", lambda: False)())
        self._last: float | None = None
        self._width = 0  # length of the live line on screen
        self._lock = threading.Lock()

    @property
    def out(self) -> TextIO:
        return self._out if self._out is not None else sys.stderr

    def update(self, text: str, force: bool = False) -> bool:
        """Show ``text`` as the current state; returns whether it was written. Throttled:
        at most every ``live_every`` s on a terminal, ``every`` s otherwise (``force``: now)."""
        with self._lock:
            now = self.clock()
            wait = self.live_every if self.live else self.every
            if not force and self._last is not None and now - self._last < wait:
                return False
            self._last = now
            self._write(text, end=False)
            return True

    def finish(self, text: str) -> None:
        """End the current step with ``text`` (always written; ends the live line)."""
        with self._lock:
            self._last = None
            self._write(text, end=True)

    def _write(self, text: str, end: bool) -> None:
        line = f"{self.prefix} {text}" if self.prefix else text
        out = self.out
        if self.live:
            pad = " " * max(0, self._width - len(line))
            out.write("\r" + line + pad + ("\n" if end else ""))
            self._width = 0 if end else len(line)
        else:
            out.write(line + "\n")
        out.flush()

    @contextlib.contextmanager
    def ticking(self, text: str, detail: Callable[[], str] | None = None,
                interval: float = 1.0) -> Iterator[None]:
        """Report ``text`` with the elapsed time (and ``detail()``, when it says something)
        while the body runs, from a background thread; a closing line with the total time.
        """
        t0 = self.clock()
        stop = threading.Event()

        def state() -> str:
            extra = ""
            if detail is not None:
                with contextlib.suppress(Exception):  # a detail is best effort
                    extra = detail()
            return f"{text} ({self.clock() - t0:.0f} s{', ' + extra if extra else ''})"

        def tick() -> None:
            while not stop.wait(interval):
                self.update(state())

        self.update(f"{text}…", force=True)
        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        ok = False
        try:
            yield
            ok = True
        finally:
            stop.set()
            thread.join()
            took = self.clock() - t0
            self.finish(f"{text}: {'done' if ok else 'stopped'} after {took:.1f} s")
