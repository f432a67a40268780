"""provtui: identity lifecycle management and provisioning in the terminal."""

__version__ = "0.1.0"
