"""Contact Hub: ivr_dialogs."""
