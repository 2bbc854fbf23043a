"""Active learning: which unlabelled texts to label next (rnnclf suggest)."""
