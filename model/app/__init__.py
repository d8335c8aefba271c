"""The application level: request arrivals, servers with worker pools, per-request records."""
