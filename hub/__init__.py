"""Contact Hub: hub."""
