"""Read models: pure folds from events to row changes, PostgreSQL views that apply
them with their tracking record in one transaction, and the readers the API uses."""
