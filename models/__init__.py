"""The shipped model, its metadata and its training corpus."""
