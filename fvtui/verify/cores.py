"""Cores the solver pool lends a long proof while its other workers have nothing left to do.

A round lasts at least its longest search, and at its end that is one branch-and-bound proof on one
core while the other workers wait (random+fv at 128 hidden units: proofs of 45-300 s). The pool
writes one byte into a pipe for each worker left idle with no job to give it; a proof that splits
into subtrees (bab.py) takes bytes to run more of them at once and writes them back when it is done.
The pool takes back what is left before it hands out work again. Which subtrees run where never
changes the answer, only how soon it comes.
"""

from __future__ import annotations

import os


class Cores:
    """The two ends of the pool's pipe, as a worker and its forks hold them."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd, self.write_fd = read_fd, write_fd

    @classmethod
    def new(cls) -> "Cores":
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)  # the flag lives in the pipe, so every process sharing it gets it
        return cls(read_fd, write_fd)

    def borrow(self) -> bool:
        """One more core, if one is lent now."""
        try:
            return os.read(self.read_fd, 1) == b"."
        except BlockingIOError:
            return False

    def give_back(self, count: int) -> None:
        if count > 0:
            os.write(self.write_fd, b"." * count)

    def take_back(self) -> None:
        """The pool's: every core lent and not borrowed (a borrowed one comes back when its proof ends)."""
        try:
            while os.read(self.read_fd, 4096):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        os.close(self.read_fd)
        os.close(self.write_fd)
