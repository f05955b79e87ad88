"""Steps and long-running counts on the terminal, or one line per step elsewhere."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class Progress:
    """Steps and long-running counts on the terminal (``tqdm``), or silence (``enabled=False``)."""

    def __init__(self, total_steps: int, *, enabled: bool = True) -> None:
        # Bars redraw in place only on a terminal; elsewhere (CI logs) each step is one line.
        self.enabled = enabled and sys.stderr.isatty()
        self._bar: Any = None
        if self.enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total_steps, unit="step", bar_format="{n_fmt}/{total_fmt} {desc} [{elapsed}]"
            )

    def step(self, description: str) -> None:
        if self._bar is not None:
            if self._bar.desc:
                self._bar.update(1)
            self._bar.set_description_str(description)
        else:
            print(f"== {description}", file=sys.stderr, flush=True)

    def note(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text)
        else:
            print(text, file=sys.stderr)

    @contextmanager
    def counting(self, description: str, total: int, count: Callable[[], int]) -> Iterator[None]:
        """A second bar that follows ``count()`` (polled) up to ``total`` while the block runs."""
        if self._bar is None:
            yield
            return
        from tqdm import tqdm

        stop = threading.Event()
        bar = tqdm(total=total, desc=description, unit="photo", position=1, leave=False)

        def poll() -> None:
            while not stop.wait(0.25):
                bar.n = min(count(), total)
                bar.refresh()

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            bar.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.update(1)
            self._bar.close()
