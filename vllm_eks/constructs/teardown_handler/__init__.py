"""The teardown guard's Lambda handler (index.py); a package so that it ships in the wheel
and tests import it."""
