"""``python -m srspy``: same as the ``srspy`` command."""

from gevent import monkey

monkey.patch_all()

from srspy.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
