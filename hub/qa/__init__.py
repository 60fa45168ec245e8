"""QA: redaction, search, categories, scorecards over transcripts and text conversations."""
