"""DVR: the pure parts. ``plan`` decides when files open and close and what they are
called; ``recorder`` turns messages into the bytes of an FLV or MP4 file (and the
in-place patches to apply on close). The file I/O itself is the caller's."""
