"""Port of srs_main_server: the ``srspy`` command.

    srspy -c FILE        run with FILE (SRS syntax) in the foreground (unless ``daemon on``)
    srspy -t -c FILE     check FILE, exit 0 or 1 with the error
    srspy -v             print the version
    srspy -e             run from SRS_* environment variables only
    srspy                run the embedded default, srspy/conf/srs.conf
"""

from __future__ import annotations

import argparse
import gc
import os
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="srspy", description="SRS, the live-streaming server, in Python.")
    p.add_argument("-c", dest="conf", metavar="FILE", help="the config file (SRS syntax)")
    p.add_argument("-t", dest="test", action="store_true", help="test the config and exit")
    p.add_argument("-v", "-V", dest="version", action="store_true", help="print the version and exit")
    p.add_argument("-g", "-G", dest="signature", action="store_true", help="print the server signature and exit")
    p.add_argument("-e", dest="env_only", action="store_true", help="use SRS_* environment variables only, no file")
    p.add_argument("-p", "--plugin", dest="plugins", action="append", default=[], metavar="MODULE[:FUNC]",
                   help="load a plugin: FUNC(server), default 'setup', is called before the server starts")
    return p


def default_conf() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "conf", "srs.conf")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from . import SERVER, __version__

    if args.version:
        print(__version__)
        return 0
    if args.signature:
        print(SERVER)
        return 0

    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        monkey.patch_all()
    from loguru import logger

    from . import log
    from .config import load_config
    from .errors import ConfigError

    env_only = args.env_only or os.environ.get("SRS_ENV_ONLY", "").lower() in ("on", "true", "1")
    path = None if env_only else (args.conf or default_conf())
    log.setup("console", "trace")
    try:
        cfg = load_config(path=path, env_only=env_only)
    except ConfigError as e:
        print(f"srspy: config error: {e}", file=sys.stderr)
        if args.test:
            print(f"srspy: the config file {path or '(env)'} test failed", file=sys.stderr)
        return 1
    if args.test:
        print(f"srspy: the config file {path or '(env)'} syntax is ok", file=sys.stderr)
        print(f"srspy: config file {path or '(env)'} test is successful", file=sys.stderr)
        return 0

    root = cfg.root
    if root["daemon"] and not root.get("in_docker") and os.environ.get("SRS_DAEMON_CHILD") != "1":
        _daemonize()
    log.setup(root["srs_log_tank"], root["srs_log_level"], root["srs_log_file"])
    if not args.conf and not env_only:
        logger.info("no -c given: running the embedded default config {}", path)
    logger.info("{} config={}", SERVER, path or "(env only)")

    from .server import Server

    try:
        server = Server(cfg)
        for spec in args.plugins:
            server.load_plugin(spec)
        server.install_signals()  # before the ports open: a SIGTERM right after start-up is handled
        _tune_gc()
        server.start()
    except ConfigError as e:
        logger.error("config error: {}", e)
        return 1
    except OSError as e:
        logger.error("cannot start: {}", e)
        return 1
    server.serve_forever()
    return 0


def _tune_gc():
    """What start-up made (modules, config, handlers) lives as long as the process: it is
    moved out of the cyclic collector's sight (``gc.freeze``). Full collections walk
    every live connection's objects (25 ms at a thousand players); with the default
    thresholds a ramp of joins triggers them in its middle, a pause every player that
    is joining waits through. They come 10 times less often here; the young
    generations, where short-lived cycles die, are collected as usual."""
    gc.collect()
    gc.freeze()
    young, middle, full = gc.get_threshold()
    gc.set_threshold(young, middle, max(full, 100))


def _daemonize():
    """``daemon on``: detach into the background as SRS does (fork, setsid, fork)."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.environ["SRS_DAEMON_CHILD"] = "1"
