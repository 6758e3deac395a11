"""The store as a service: an HTTP API per tenant (``app``), what it computes (``engine``), requests batched
through F and G (``batching``), and tenants with their keys, API keys and audit log (``tenants``)."""
