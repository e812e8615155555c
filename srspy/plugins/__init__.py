"""Plug-ins shipped with srspy: each is a module whose ``setup(server)`` the server calls
before it starts (``plugin module;`` in the config, ``-p module``, or its own config block)."""
