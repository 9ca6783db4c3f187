"""The application layer: the use cases (intake, pairing, calls, the review loop, deliveries,
and the capabilities built on them), over the domain's interfaces and a notifier.

The transports (signaling/: Socket.IO and REST) are thin mappers onto this package; the unit
tests drive it with in-memory fakes and no server. Nothing here imports aiohttp or socketio.
"""
