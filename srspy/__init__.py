"""srspy: SRS, the live-streaming server, rebuilt in Python on gevent."""

__version__ = "0.1.0"
SIGNATURE = "srspy"
SERVER = f"{SIGNATURE}/{__version__}"
