"""Contact Hub: models."""
