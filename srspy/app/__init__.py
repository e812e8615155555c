"""Application connections and outputs: the RTMP connection, the HTTP stream players, relays
(edge and forward). See docs/architecture.md."""
