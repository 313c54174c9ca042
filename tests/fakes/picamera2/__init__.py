"""FAKE `picamera2` package: Veil's stand-in for the Raspberry Pi camera library on machines with
no Pi camera (CI, laptops). Not the real library, and not a port of it: a small model shaped
after its public API (raspberrypi/picamera2: `Picamera2`, `CompletedRequest`, `MappedArray`), for
tests to put on sys.path (or PYTHONPATH=tests/fakes) in place of the real one.

See tests/fakes/README.md for what it fakes and picamera2/picamera2.py for its switches.
"""

from concurrent.futures import TimeoutError

from picamera2.picamera2 import FAKE_OPENED, Picamera2
from picamera2.request import CompletedRequest, MappedArray

FAKE = True  # lets a test tell this package from the real one

__all__ = ["FAKE", "FAKE_OPENED", "CompletedRequest", "MappedArray", "Picamera2", "TimeoutError"]
