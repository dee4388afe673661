"""The pure core of osfs: no I/O, no event loop, no nats, no pyfuse3.

Everything here is deterministic and tested exhaustively: name and subject encoding, the meta
document, digests, chunk offsets, bucket configuration, and the error hierarchy.
"""
