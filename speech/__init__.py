"""Contact Hub: speech."""
