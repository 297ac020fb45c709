"""utrace: SystemTap for the processes you own — the front end and the session driver."""

__version__ = "0.1.0"
