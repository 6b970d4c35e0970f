"""A FAKE upstream program for the adapter tests (no model, no weights); see fake_worker.py."""
