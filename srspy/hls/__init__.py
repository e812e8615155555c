"""HLS: the pure parts (segment cutting, playlists, names, keys, blocking reloads).

``segmenter`` decides where segments and low-latency parts start and end, for any
container (and ``hls_ts_floor``'s name index); ``playlist`` writes the m3u8 text, expands
SRS's file name templates and answers ``_HLS_msn``/``_HLS_part`` requests; ``crypto``
encrypts AES-128 segments; ``tracks`` says what ``hls_acodec``/``hls_vcodec`` carry,
``timing`` counts ``hls_dts_directly off``'s audio decode times, ``onerror`` finds the
frames HLS cannot decode and what ``hls_on_error`` makes of an error. Nothing here
touches a socket, a file or the clock: ``now`` is passed in.
"""
