"""Local Azure Event Hubs emulator (AMQP 1.0) for offerloop development and tests."""
