"""Contact Hub: web."""
