"""fvtui: deep active learning improved with formal verification, in the terminal."""

__version__ = "0.1.0"
