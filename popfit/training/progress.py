"""Progress line for long training, and the device jax trains on (no dependency)."""

import sys
import time

from .._optional import import_optional

jax = import_optional("jax", "popfit.finetune")


def device():
    """The device jax computes on, e.g. ``"cpu:0"`` or ``"cuda:0"`` (its default backend)."""
    d = jax.devices()[0]
    return f"{d.platform}:{d.id}"


class Progress:
    """One stderr line, rewritten every epoch (no dependency)."""

    def __init__(self, epochs, what=""):
        self.epochs, self.what, self.start = epochs, what, time.perf_counter()

    def update(self, epoch, train_loss, held_loss, done=False):
        held = "" if held_loss is None else f", held-out {held_loss:.4g}"
        what = f" ({self.what})" if self.what else ""
        sys.stderr.write(f"\rfinetune{what}: epoch {epoch}/{self.epochs}, loss {train_loss:.4g}"
                         f"{held}, {time.perf_counter() - self.start:.1f} s"
                         + ("\n" if done else ""))
        sys.stderr.flush()
