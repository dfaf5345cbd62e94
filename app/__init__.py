"""The application layer: accept -> apply -> act -> relay, over the ports it declares.

It imports only the domain and the standard library: storage comes in as a unit of work
(app/stores.py declares what it needs), the world as the ports of domain/ports.py.
"""
