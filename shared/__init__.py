"""offerloop's domain (plain Python) and its adapters (one module per Azure service)."""
