"""A small AMQP 1.0 server-side implementation (codec, framing, connection/session/link)."""
