"""specc."""
