"""Bounded forms of tests/stress/stress_load.py for make test (the long forms
run under make stress, with KILN_STRESS=long)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "stress"))

from stress_load import ConcurrentLoadTest, MaxConnectionsTest, SlowClientTest  # noqa: E402,F401
