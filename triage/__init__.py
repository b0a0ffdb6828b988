"""triage: drafts polite refusals for the inquiries a freelancer should say no to."""

__version__ = "0.1.0"
