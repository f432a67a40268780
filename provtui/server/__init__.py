"""The provtui server: one trusted process owns the store and serves its admins over a Unix socket.

``run`` starts it (the lock, the store made private, the socket, the worker); ``app`` is its ASGI
application; ``hub`` runs each call as the peer the kernel named (``peer``), through the service.
"""
