"""HLS: the pure parts (segment cutting, playlists, names, keys, blocking reloads).

``segmenter`` decides where segments and low-latency parts start and end, for any
container; ``playlist`` writes the m3u8 text, expands SRS's file name templates and
answers ``_HLS_msn``/``_HLS_part`` requests; ``crypto`` encrypts AES-128 segments. Nothing
here touches a socket, a file or the clock: ``now`` is passed in.
"""
