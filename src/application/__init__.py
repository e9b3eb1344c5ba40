"""Application layer: the only writers (eventsourcing Applications), the services the
API calls, and the ports (ABCs) that adapters and projections implement."""
