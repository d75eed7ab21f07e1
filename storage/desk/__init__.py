"""What the web desk keeps and reads beyond the journal: one-time sign-in links and the feed
of the journal's changes for open pages."""
