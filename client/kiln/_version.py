"""Generated from include/kiln/version.h by make: do not edit."""

__version__ = "0.1.0"
