"""Webhooks: subscriptions, the transactional outbox, signed delivery, the URL guard."""
