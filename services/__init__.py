"""Services beside the engine: storage, metrics, jobs, batch, orchestration, keys, webhooks.

They import the engine and subscribe to its events; the engine imports none of them.
:class:`services.composition.Services` builds them for one engine.
"""
